"""Money arithmetic of carts and orders, in one place (integer cents, never floats).

No shipping, tax or discounts yet: when they come, they are added here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PricedLine:
    unit_price_cents: int
    quantity: int


@dataclass(frozen=True)
class Totals:
    subtotal_cents: int
    total_cents: int


def line_total_cents(*, unit_price_cents: int, quantity: int) -> int:
    return unit_price_cents * quantity


def totals_for(lines: Iterable[PricedLine]) -> Totals:
    subtotal = sum(
        line_total_cents(unit_price_cents=line.unit_price_cents, quantity=line.quantity)
        for line in lines
    )
    return Totals(subtotal_cents=subtotal, total_cents=subtotal)


def format_money(*, cents: int, currency: str) -> str:
    """For emails and the admin: "1234.50 USD" (two decimals; the store's currencies have two)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d} {currency}"
