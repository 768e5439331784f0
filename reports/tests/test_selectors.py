"""The three reports' figures, exactly, from orders and payments made through the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from inventory.models import Product
from inventory.services import ProductChanges, product_update, stock_adjust
from orders.models import Order
from reports.exceptions import InvalidReportRange
from reports.selectors import (
    InventoryRow,
    SalesRow,
    TopProductRow,
    inventory_report,
    range_error,
    sales_report,
    store_today,
    top_products_report,
)
from reports.tests.conftest import Catalog, utc

D = dt.date


def sales(date_from: dt.date, date_to: dt.date, interval: str = "day") -> list[tuple[Any, ...]]:
    return [
        (r.period, r.orders, r.items_sold, r.revenue_cents, r.refunded_cents)
        for r in sales_report(date_from=date_from, date_to=date_to, interval=interval)
    ]


def top(date_from: dt.date, date_to: dt.date, limit: int = 10) -> list[tuple[Any, ...]]:
    return [
        (r.sku, r.quantity, r.revenue_cents)
        for r in top_products_report(date_from=date_from, date_to=date_to, limit=limit)
    ]


# --- sales -----------------------------------------------------------------------------------


def test_sales_by_month_counts_each_order_and_refund_in_its_own_month(spring: Catalog) -> None:
    assert sales(D(2025, 3, 1), D(2025, 5, 31), "month") == [
        # orders 1, 2, 3 (3 lands on 31 March in Berlin): 2 + 4 + 1 units
        (D(2025, 3, 1), 3, 7, 2000 + 3700 + 1000, 0),
        # orders 4 and 5; order 4's partial refund on 15 April
        (D(2025, 4, 1), 2, 5, 1600 + 2500, 500),
        # order 5 was paid in April, refunded in full on 2 May (Berlin)
        (D(2025, 5, 1), 0, 0, 0, 2500),
    ]


def test_sales_by_day_around_the_switch_to_summer_time(spring: Catalog) -> None:
    # Saturday 23:30 UTC is Sunday 00:30 in Berlin (CET); Sunday 22:30 UTC is already Monday
    # 00:30 (CEST). Every day of the range is there, empty ones as zeros.
    assert sales(D(2025, 3, 28), D(2025, 4, 1)) == [
        (D(2025, 3, 28), 0, 0, 0, 0),
        (D(2025, 3, 29), 0, 0, 0, 0),
        (D(2025, 3, 30), 1, 4, 3700, 0),
        (D(2025, 3, 31), 1, 1, 1000, 0),
        (D(2025, 4, 1), 0, 0, 0, 0),
    ]


def test_the_same_payments_in_utc_fall_on_other_days(spring: Catalog, settings: Any) -> None:
    settings.TIME_ZONE = "UTC"  # read at query time
    assert sales(D(2025, 3, 28), D(2025, 4, 1)) == [
        (D(2025, 3, 28), 0, 0, 0, 0),
        (D(2025, 3, 29), 1, 4, 3700, 0),
        (D(2025, 3, 30), 1, 1, 1000, 0),
        (D(2025, 3, 31), 0, 0, 0, 0),
        (D(2025, 4, 1), 0, 0, 0, 0),
    ]
    assert sales(D(2025, 5, 1), D(2025, 5, 2)) == [
        (D(2025, 5, 1), 0, 0, 0, 2500),
        (D(2025, 5, 2), 0, 0, 0, 0),
    ]


def test_weeks_start_on_monday(spring: Catalog) -> None:
    # In Berlin order 3 is on Monday 31 March, the next week; in UTC it would be the 30th.
    assert sales(D(2025, 3, 24), D(2025, 4, 6), "week") == [
        (D(2025, 3, 24), 1, 4, 3700, 0),
        (D(2025, 3, 31), 2, 5, 1000 + 1600, 0),
    ]


def test_a_period_is_named_by_its_first_day_but_counts_only_days_in_the_range(
    spring: Catalog,
) -> None:
    # From Wednesday 2 April: the first week is "31 March" without order 3 (Monday 31st),
    # the second week is empty, the third has the refund.
    assert sales(D(2025, 4, 2), D(2025, 4, 16), "week") == [
        (D(2025, 3, 31), 1, 4, 1600, 0),
        (D(2025, 4, 7), 0, 0, 0, 0),
        (D(2025, 4, 14), 0, 0, 0, 500),
    ]
    assert sales(D(2025, 3, 31), D(2025, 4, 1), "month") == [
        (D(2025, 3, 1), 1, 1, 1000, 0),
        (D(2025, 4, 1), 0, 0, 0, 0),
    ]


def test_autumn_clock_change_and_a_single_day(
    berlin: str, catalog: Catalog, sell: Callable[..., Order]
) -> None:
    # Summer time ends Sunday 26 October 2025 at 01:00 UTC. 22:30 UTC on Saturday is Sunday
    # 00:30 (CEST, +2); 23:30 UTC on Sunday is Monday 00:30 (CET, +1): the next week.
    sell([(catalog.a, 1)], paid_at=utc(2025, 10, 25, 22, 30))
    sell([(catalog.b, 2)], paid_at=utc(2025, 10, 26, 23, 30))
    sell([(catalog.c, 1)], paid_at=utc(2025, 10, 26, 22, 59))  # Sunday 23:59 CET
    assert sales(D(2025, 10, 25), D(2025, 10, 27)) == [
        (D(2025, 10, 25), 0, 0, 0, 0),
        (D(2025, 10, 26), 2, 2, 1400, 0),
        (D(2025, 10, 27), 1, 2, 5000, 0),
    ]
    assert sales(D(2025, 10, 20), D(2025, 11, 2), "week") == [
        (D(2025, 10, 20), 2, 2, 1400, 0),
        (D(2025, 10, 27), 1, 2, 5000, 0),
    ]
    assert sales(D(2025, 10, 26), D(2025, 10, 26)) == [(D(2025, 10, 26), 2, 2, 1400, 0)]


def test_no_sales_at_all_gives_zero_rows(db: None, berlin: str) -> None:
    assert sales_report(date_from=D(2024, 2, 27), date_to=D(2024, 3, 1)) == [
        SalesRow(period=D(2024, 2, day), orders=0, items_sold=0, revenue_cents=0, refunded_cents=0)
        for day in (27, 28, 29)
    ] + [SalesRow(period=D(2024, 3, 1), orders=0, items_sold=0, revenue_cents=0, refunded_cents=0)]


def test_a_charge_refunded_at_once_still_counts_its_order(
    berlin: str, catalog: Catalog, sell: Callable[..., Order]
) -> None:
    """An order is counted when its charge succeeds; a refund is money back, not an unpaid
    order (it shows in `refunded_cents`)."""
    sell([(catalog.a, 3)], paid_at=utc(2025, 6, 2, 8), refunds=[(None, utc(2025, 6, 2, 9))])
    assert sales(D(2025, 6, 2), D(2025, 6, 2)) == [(D(2025, 6, 2), 1, 3, 3000, 3000)]


def test_today_is_in_the_store_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14
    ahead = store_today()
    settings.TIME_ZONE = "Pacific/Pago_Pago"  # UTC-11
    behind = store_today()
    assert (ahead - behind).days == 1


def test_unknown_interval_and_bad_ranges_are_refused(db: None) -> None:
    with pytest.raises(ValueError, match="interval"):
        sales_report(date_from=D(2025, 1, 1), date_to=D(2025, 1, 2), interval="year")
    with pytest.raises(InvalidReportRange):
        sales_report(date_from=D(2025, 1, 2), date_to=D(2025, 1, 1))
    with pytest.raises(InvalidReportRange):
        top_products_report(date_from=D(2022, 1, 1), date_to=D(2025, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        top_products_report(date_from=D(2025, 1, 1), date_to=D(2025, 1, 2), limit=101)


def test_range_limit_is_three_calendar_years() -> None:
    assert range_error(date_from=D(2022, 1, 1), date_to=D(2024, 12, 31)) is None
    assert range_error(date_from=D(2022, 1, 1), date_to=D(2025, 1, 1)) is not None
    assert range_error(date_from=D(2024, 2, 29), date_to=D(2027, 2, 28)) is None
    assert range_error(date_from=D(2024, 2, 29), date_to=D(2027, 3, 1)) is not None
    assert range_error(date_from=D(9998, 1, 1), date_to=D(9999, 12, 31)) is None
    assert range_error(date_from=D(2025, 1, 2), date_to=D(2025, 1, 1)) == (
        "date_from_after_date_to",
        "date_from must not be after date_to.",
    )


# --- top products ----------------------------------------------------------------------------


def test_top_products_by_quantity_then_revenue(spring: Catalog) -> None:
    assert top_products_report(date_from=D(2025, 3, 1), date_to=D(2025, 5, 31)) == [
        TopProductRow(spring.c.pk, "C-1", "Charlie", 3 + 4, 1200 + 1600),
        TopProductRow(spring.a.pk, "A-1", "Alpha", 2 + 1, 3000),
        TopProductRow(spring.b.pk, "B-1", "Bravo", 1 + 1, 5000),
    ]
    assert top(D(2025, 3, 1), D(2025, 5, 31), limit=2) == [("C-1", 7, 2800), ("A-1", 3, 3000)]
    # 30 and 31 March in Berlin: one B and one A, tied on units: B has the higher revenue.
    assert top(D(2025, 3, 30), D(2025, 3, 31)) == [
        ("C-1", 3, 1200),
        ("B-1", 1, 2500),
        ("A-1", 1, 1000),
    ]
    assert top(D(2025, 5, 1), D(2025, 5, 31)) == []  # a refund sells nothing


def test_top_products_show_the_current_sku_and_name(spring: Catalog) -> None:
    product_update(product=spring.a, changes=ProductChanges(name="Alpha II"))
    assert top_products_report(date_from=D(2025, 3, 3), date_to=D(2025, 3, 3)) == [
        TopProductRow(spring.a.pk, "A-1", "Alpha II", 2, 2000)
    ]


# --- inventory -------------------------------------------------------------------------------


def test_inventory_counts_active_products_and_their_stock(
    make_product: Callable[..., Product], place_order: Callable[..., Order], buyer: Any
) -> None:
    make_product(sku="OK", price_cents=1000, on_hand=10)  # plenty
    make_product(sku="LOW", price_cents=250, on_hand=3, low_stock_threshold=5)
    make_product(sku="EDGE", price_cents=100, on_hand=5, low_stock_threshold=5)  # low: 5 <= 5
    make_product(sku="NONE", price_cents=999, on_hand=0, low_stock_threshold=2)
    reserved = make_product(sku="HELD", price_cents=700, on_hand=4, low_stock_threshold=1)
    place_order(buyer, [(reserved, 4)])  # all 4 reserved: on hand 4, available 0
    make_product(sku="OFF", price_cents=5000, on_hand=7, is_active=False)
    gone = make_product(sku="GONE", price_cents=100, on_hand=2)
    stock_adjust(product_id=gone.pk, delta=-2, reason="damage", actor=None)

    assert inventory_report() == InventoryRow(
        products=6,
        units_on_hand=10 + 3 + 5 + 0 + 4 + 0,
        stock_value_cents=10 * 1000 + 3 * 250 + 5 * 100 + 4 * 700,
        low_stock=2,  # LOW and EDGE
        out_of_stock=3,  # NONE, HELD (all reserved) and GONE
    )


def test_inventory_of_an_empty_catalog(db: None) -> None:
    assert inventory_report() == InventoryRow(0, 0, 0, 0, 0)
