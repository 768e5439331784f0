"""Fixtures for the reports tests: orders paid, refunded and declined through the services, then
placed in time by setting their payments' `settled_at` (the one column the reports cut by)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.models import User
from inventory.models import Product
from orders.models import Order
from orders.services import order_pay, order_refund
from orders.tests import conftest as orders_fixtures
from orders.tests.helpers import mark_paid
from payments.exceptions import PaymentDeclined
from payments.gateways.base import CardDetails
from payments.models import Payment
from payments.services import payment_method_create

# The orders tests' fixtures: products made through the inventory services, orders checked out.
category = orders_fixtures.category
make_product = orders_fixtures.make_product
place_order = orders_fixtures.place_order

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
DECLINED_CARD = CardDetails(number="4000000000000002", exp_month=12, exp_year=2040, cvc="123")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def berlin(settings: Any) -> str:
    """The store in Europe/Berlin (CET/CEST), read by the reports at query time."""
    settings.TIME_ZONE = "Europe/Berlin"
    return "Europe/Berlin"


@pytest.fixture
def buyer(make_user: Callable[..., User]) -> User:
    return make_user(User.Role.CUSTOMER, email="buyer@example.com")


def _settle_at(payment: Payment, when: dt.datetime) -> None:
    Payment.objects.filter(pk=payment.pk).update(settled_at=when)


@pytest.fixture
def sell(buyer: User, staff: User, place_order: Callable[..., Order]) -> Callable[..., Order]:
    """Check out `lines`, pay (a real succeeded test-gateway charge) settled at `paid_at`, then
    refund `(amount_cents or None for the rest, at)` pairs through `order_refund`."""

    def sell(
        lines: list[tuple[Product, int]],
        *,
        paid_at: dt.datetime,
        refunds: list[tuple[int | None, dt.datetime]] = (),  # type: ignore[assignment]
    ) -> Order:
        order = place_order(buyer, lines)
        mark_paid(order_id=order.pk, actor=buyer)
        charge = Payment.objects.get(order_id=order.pk, kind="charge", status="succeeded")
        _settle_at(charge, paid_at)
        for amount, at in refunds:
            before = set(Payment.objects.filter(order_id=order.pk, kind="refund").values_list("pk"))
            order_refund(order_id=order.pk, actor=staff, amount_cents=amount)
            (refund,) = Payment.objects.filter(order_id=order.pk, kind="refund").exclude(
                pk__in=[pk for (pk,) in before]
            )
            _settle_at(refund, at)
        order.refresh_from_db()
        return order

    return sell


@pytest.fixture
def decline(
    make_user: Callable[..., User], place_order: Callable[..., Order]
) -> Callable[..., Order]:
    """An order whose pay was declined (a failed charge, the order stays pending), the failed
    charge settled at `at`: no report counts it. (Another customer: `mark_paid` pays with the
    buyer's first saved card.)"""

    def decline(lines: list[tuple[Product, int]], *, at: dt.datetime) -> Order:
        user = make_user(User.Role.CUSTOMER)
        order = place_order(user, lines)
        method = payment_method_create(user=user, card=DECLINED_CARD)
        with pytest.raises(PaymentDeclined):
            order_pay(order_id=order.pk, user=user, payment_method_id=method.pk)
        Payment.objects.filter(order_id=order.pk).update(settled_at=at)
        return order

    return decline


@dataclass(frozen=True)
class Catalog:
    a: Product  # 10.00
    b: Product  # 25.00
    c: Product  # 4.00


@pytest.fixture
def catalog(make_product: Callable[..., Product]) -> Catalog:
    return Catalog(
        a=make_product(sku="A-1", name="Alpha", price_cents=1000, on_hand=50),
        b=make_product(sku="B-1", name="Bravo", price_cents=2500, on_hand=50),
        c=make_product(sku="C-1", name="Charlie", price_cents=400, on_hand=50),
    )


@pytest.fixture
def spring(
    berlin: str,
    catalog: Catalog,
    sell: Callable[..., Order],
    decline: Callable[..., Order],
    place_order: Callable[..., Order],
    buyer: User,
) -> Catalog:
    """Sales of spring 2025 in Berlin, around the switch to summer time (Sunday 30 March, 01:00
    UTC) and across week and month ends:

    | order | lines | charged (UTC) | Berlin day | refunds (UTC → Berlin day) |
    |---|---|---|---|---|
    | 1 | 2 A | Mon 3 Mar 10:00 | Mon 3 Mar | |
    | 2 | 1 B + 3 C | Sat 29 Mar 23:30 | **Sun 30 Mar** (CET, +1) | |
    | 3 | 1 A | Sun 30 Mar 22:30 | **Mon 31 Mar** (CEST, +2) | |
    | 4 | 4 C | Wed 2 Apr 09:00 | Wed 2 Apr | 5.00 on 15 Apr 12:00 → 15 Apr |
    | 5 | 1 B | Wed 30 Apr 21:59 | Wed 30 Apr | all on 1 May 22:30 → **Fri 2 May** |

    plus a declined charge "settled" on 3 March and an order never paid: neither counts.
    """
    sell([(catalog.a, 2)], paid_at=utc(2025, 3, 3, 10, 0))
    sell([(catalog.b, 1), (catalog.c, 3)], paid_at=utc(2025, 3, 29, 23, 30))
    sell([(catalog.a, 1)], paid_at=utc(2025, 3, 30, 22, 30))
    sell([(catalog.c, 4)], paid_at=utc(2025, 4, 2, 9, 0), refunds=[(500, utc(2025, 4, 15, 12))])
    sell(
        [(catalog.b, 1)],
        paid_at=utc(2025, 4, 30, 21, 59),
        refunds=[(None, utc(2025, 5, 1, 22, 30))],
    )
    decline([(catalog.a, 5)], at=utc(2025, 3, 3, 11, 0))
    place_order(buyer, [(catalog.c, 1)])
    return catalog
