"""The daily rollup and its seam with live figures: wherever the seam falls, the numbers are the
ones computed all live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from orders.models import Order
from reports.models import DailyProductSales, DailySales
from reports.selectors import sales_report, store_today, top_products_report
from reports.services import GAP_WINDOW_DAYS, RECENT_DAYS, rollup_days, rollup_recent
from reports.tasks import rollup_recent_days
from reports.tests.conftest import BERLIN, Catalog

D = dt.date
DAY = dt.timedelta(days=1)


def everything(date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    """Every report over the range: by day, week and month, and the top products."""
    return {
        **{
            interval: sales_report(date_from=date_from, date_to=date_to, interval=interval)
            for interval in ("day", "week", "month")
        },
        "top": top_products_report(date_from=date_from, date_to=date_to, limit=100),
    }


def local_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=BERLIN)


def test_rolled_up_days_give_the_live_figures(spring: Catalog) -> None:
    live = everything(D(2025, 2, 20), D(2025, 6, 10))
    assert rollup_days(date_from=D(2025, 3, 1), date_to=D(2025, 5, 31)) == 92
    assert everything(D(2025, 2, 20), D(2025, 6, 10)) == live

    # The rows are what was sold each Berlin day, products included.
    assert list(
        DailySales.objects.filter(day__in=[D(2025, 3, 30), D(2025, 4, 15), D(2025, 5, 2)])
        .order_by("day")
        .values_list("day", "time_zone", "orders", "items_sold", "revenue_cents", "refunded_cents")
    ) == [
        (D(2025, 3, 30), "Europe/Berlin", 1, 4, 3700, 0),
        (D(2025, 4, 15), "Europe/Berlin", 0, 0, 0, 500),
        (D(2025, 5, 2), "Europe/Berlin", 0, 0, 0, 2500),
    ]
    assert list(
        DailyProductSales.objects.filter(day=D(2025, 3, 30))
        .order_by("product_id")
        .values_list("product__sku", "quantity", "revenue_cents")
    ) == [("B-1", 1, 2500), ("C-1", 3, 1200)]
    assert DailyProductSales.objects.count() == 6  # 3 Mar, 30 Mar (2), 31 Mar, 2 Apr, 30 Apr

    # ... and the reports read them (a figure changed by hand shows).
    DailySales.objects.filter(day=D(2025, 3, 30)).update(orders=99)
    DailyProductSales.objects.filter(day=D(2025, 3, 30), product=spring.b).update(quantity=50)
    assert sales_report(date_from=D(2025, 3, 30), date_to=D(2025, 3, 30))[0].orders == 99
    assert top_products_report(date_from=D(2025, 3, 30), date_to=D(2025, 3, 30))[0].quantity == 50


@pytest.mark.parametrize(
    ("rolled_from", "rolled_to"),
    [
        (D(2025, 3, 30), D(2025, 3, 30)),  # one day in the middle
        (D(2025, 3, 25), D(2025, 4, 10)),  # a run across the clock change and a month end
        (D(2025, 4, 30), D(2025, 5, 1)),  # the payment's day, not its refund's
        (D(2025, 1, 1), D(2025, 3, 2)),  # only days without sales
    ],
)
def test_any_seam_gives_the_live_figures(
    spring: Catalog, rolled_from: dt.date, rolled_to: dt.date
) -> None:
    live = everything(D(2025, 3, 1), D(2025, 5, 31))
    rollup_days(date_from=rolled_from, date_to=rolled_to)
    assert everything(D(2025, 3, 1), D(2025, 5, 31)) == live


def test_rollup_is_idempotent_and_replaces_its_days(spring: Catalog) -> None:
    rollup_days(date_from=D(2025, 3, 1), date_to=D(2025, 5, 31))
    first = list(DailySales.objects.values_list("day", "orders", "revenue_cents"))
    assert rollup_days(date_from=D(2025, 3, 15), date_to=D(2025, 4, 15)) == 32
    assert list(DailySales.objects.values_list("day", "orders", "revenue_cents")) == first
    assert DailySales.objects.count() == 92
    assert DailyProductSales.objects.count() == 6


def test_another_time_zone_ignores_the_rollup_until_it_is_rewritten(
    spring: Catalog, settings: Any
) -> None:
    settings.TIME_ZONE = "UTC"
    utc_live = everything(D(2025, 3, 1), D(2025, 5, 31))
    assert [(r.orders, r.revenue_cents) for r in utc_live["day"][28:30]] == [(1, 3700), (1, 1000)]
    settings.TIME_ZONE = "Europe/Berlin"
    rollup_days(date_from=D(2025, 3, 1), date_to=D(2025, 5, 31))

    settings.TIME_ZONE = "UTC"
    DailySales.objects.all().update(orders=99)  # cut in Berlin: never read in UTC
    assert everything(D(2025, 3, 1), D(2025, 5, 31)) == utc_live
    rollup_days(date_from=D(2025, 3, 1), date_to=D(2025, 5, 31))
    assert set(DailySales.objects.values_list("time_zone", flat=True)) == {"UTC"}
    assert everything(D(2025, 3, 1), D(2025, 5, 31)) == utc_live


def test_today_is_never_rolled_up_and_stays_live(
    berlin: str, catalog: Catalog, sell: Callable[..., Order]
) -> None:
    today = store_today()
    sell([(catalog.a, 1)], paid_at=local_noon(today - 2 * DAY))
    sell([(catalog.b, 2)], paid_at=local_noon(today - DAY), refunds=[(700, timezone.now())])
    sell([(catalog.c, 3)], paid_at=timezone.now())
    live = everything(today - 40 * DAY, today)

    # Recent days recomputed, holes of the window filled, today and later left out.
    assert rollup_recent() == GAP_WINDOW_DAYS
    assert rollup_days(date_from=today - DAY, date_to=today + 5 * DAY) == 1
    assert DailySales.objects.filter(day__gte=today).count() == 0
    assert DailySales.objects.count() == GAP_WINDOW_DAYS
    assert DailySales.objects.order_by("day").last().day == today - DAY  # type: ignore[union-attr]
    assert everything(today - 40 * DAY, today) == live

    # A sale and a refund today show at once, beside the rolled-up days.
    sell([(catalog.a, 4)], paid_at=timezone.now())
    assert [
        (r.period, r.orders, r.items_sold, r.revenue_cents, r.refunded_cents)
        for r in sales_report(date_from=today - 2 * DAY, date_to=today)
    ] == [
        (today - 2 * DAY, 1, 1, 1000, 0),
        (today - DAY, 1, 2, 5000, 0),
        (today, 2, 7, 3 * 400 + 4 * 1000, 700),
    ]
    assert [
        (r.sku, r.quantity) for r in top_products_report(date_from=today - 2 * DAY, date_to=today)
    ] == [("A-1", 5), ("C-1", 3), ("B-1", 2)]


def test_the_nightly_run_recomputes_recent_days_and_fills_holes(
    berlin: str, catalog: Catalog, sell: Callable[..., Order]
) -> None:
    today = store_today()
    rollup_days(date_from=today - 30 * DAY, date_to=today - DAY)
    # A payment settled late into yesterday (a commit across midnight): the nightly run
    # corrects yesterday. A day lost from the rollup is filled again.
    sell([(catalog.b, 1)], paid_at=local_noon(today - DAY))
    DailySales.objects.filter(day=today - 20 * DAY).delete()
    assert rollup_recent_days.delay().get() == RECENT_DAYS + (GAP_WINDOW_DAYS - 30) + 1
    yesterday = DailySales.objects.get(day=today - DAY)
    assert (yesterday.orders, yesterday.revenue_cents) == (1, 2500)
    assert DailySales.objects.filter(day=today - 20 * DAY).exists()
    assert DailySales.objects.count() == GAP_WINDOW_DAYS


def test_backfill_command(spring: Catalog) -> None:
    from io import StringIO

    out = StringIO()
    call_command("rollup_reports", "--from", "2025-03-01", "--to", "2025-05-31", stdout=out)
    assert "Rolled up 92 day(s)." in out.getvalue()
    assert DailySales.objects.count() == 92

    out = StringIO()
    today = store_today()
    call_command("rollup_reports", "--from", str(today - 3 * DAY), stdout=out, verbosity=2)
    assert "Rolled up 3 day(s)." in out.getvalue()  # up to yesterday
    assert not DailySales.objects.filter(day__gte=today).exists()

    with pytest.raises(CommandError, match="not a date"):
        call_command("rollup_reports", "--from", "2025-02-30")
    with pytest.raises(CommandError, match="not be after"):
        call_command("rollup_reports", "--from", "2025-03-02", "--to", "2025-03-01")


def test_nothing_to_roll_up(db: None, berlin: str) -> None:
    from reports.services import rollup_missing_days

    today = store_today()
    assert rollup_days(date_from=today, date_to=today + 3 * DAY) == 0
    assert rollup_missing_days(date_from=today, date_to=today) == []
    assert rollup_missing_days(date_from=today - 2 * DAY, date_to=today) == [
        today - 2 * DAY,
        today - DAY,
    ]
    assert not DailySales.objects.exists()


def test_rows_say_what_they_hold(spring: Catalog) -> None:
    rollup_days(date_from=D(2025, 3, 30), date_to=D(2025, 3, 30))
    assert str(DailySales.objects.get()) == "2025-03-30: 1 orders, 3700 cents"
    assert str(DailyProductSales.objects.get(product=spring.b)) == (
        f"2025-03-30: product {spring.b.pk} x 1"
    )
