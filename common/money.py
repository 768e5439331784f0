"""Money as staff read and type it: cents are stored everywhere, and the admin shows "$1,979.95"
and takes "1979.95". Integer arithmetic only (no float ever touches an amount)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def format_money_display(*, cents: int, currency: str) -> str:
    """For staff screens: "$1,979.95" (the currency's symbol where it has a common one, else
    "1,234.56 CHF"), in integer arithmetic like everything else here."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    symbol = _SYMBOLS.get(currency)
    amount = f"{whole:,}.{part:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def store_money(cents: int | None) -> str:
    """An amount in the store currency for the admin ("—" for none)."""
    if cents is None:
        return "—"
    return format_money_display(cents=cents, currency=settings.STORE_CURRENCY)


def cents_from_decimal(value: Decimal) -> int:
    """Exact: 19.99 → 1999; more than two decimals is refused by the form before this."""
    return int(value.scaleb(2).to_integral_value())


class MoneyField(forms.DecimalField):
    """A form field that shows and takes a decimal amount ("1979.95") and cleans to cents (an int).

    `initial` and model values are cents; the widget shows them as decimals. Negative amounts are
    refused unless `min_cents` allows them."""

    def __init__(
        self, *, min_cents: int | None = 0, max_cents: int | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("help_text", f"In {settings.STORE_CURRENCY}, e.g. 19.99")
        self.min_cents = min_cents
        self.max_cents = max_cents
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("step", "0.01")
        self.widget.attrs.setdefault("inputmode", "decimal")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value).scaleb(-2).quantize(Decimal("0.01"))
        return super().prepare_value(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().replace(",", "").lstrip(_SYMBOLS.get(settings.STORE_CURRENCY, ""))
        return super().to_python(value)

    def clean(self, value: Any) -> int | None:
        amount = super().clean(value)
        if amount is None:
            return None
        cents = cents_from_decimal(amount)
        if self.min_cents is not None and cents < self.min_cents:
            raise ValidationError(
                f"The amount cannot be less than {store_money(self.min_cents)}.", code="min_value"
            )
        if self.max_cents is not None and cents > self.max_cents:
            raise ValidationError(
                f"The amount cannot be more than {store_money(self.max_cents)}.", code="max_value"
            )
        return cents

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(self.clean(data) != initial)
        except ValidationError:
            return True
