"""Money in the admin: shown as the store currency, typed as a decimal, stored as cents."""

import pytest

from common.money import MoneyField, format_money_display, store_money


def test_display_uses_the_symbol_and_thousands():
    assert format_money_display(cents=197995, currency="USD") == "$1,979.95"
    assert format_money_display(cents=-50, currency="EUR") == "-€0.50"
    assert format_money_display(cents=123456, currency="CHF") == "1,234.56 CHF"
    assert store_money(None) == "—"


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("1979.95", 197995), ("1,979.95", 197995), ("$5", 500), (" 0.01 ", 1), ("19.9", 1990)],
)
def test_a_decimal_amount_becomes_cents(typed, cents):
    assert MoneyField().clean(typed) == cents


@pytest.mark.parametrize("typed", ["1.999", "abc", "-1.00", "1e3x"])
def test_bad_amounts_are_refused(typed):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        MoneyField().clean(typed)


def test_cents_show_as_a_decimal_and_limits_hold():
    from django.core.exceptions import ValidationError

    field = MoneyField(max_cents=1000)
    assert str(field.prepare_value(197995)) == "1979.95"
    assert field.has_changed(500, "5.00") is False
    assert field.has_changed(500, "5.01") is True
    with pytest.raises(ValidationError):
        field.clean("10.01")
    assert MoneyField(required=False).clean("") is None
