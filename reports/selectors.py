"""Staff reports: sales by period, top products, the inventory at a glance.

Each report is one aggregate statement in PostgreSQL (`reports.sql`): nothing loads orders or
payments into Python. Days are cut in the store's `TIME_ZONE`, read at call time. Finished days
come from the daily rollup (`reports.models`) when it has them in this time zone; today, and any
day it lacks, are computed live by the same SQL the rollup is written with, so where the seam
falls never changes a figure. Reads go to the reports database (`reports.routers`): the replica
when one is configured.

The staff dashboard calls these functions too; the API adds validation (`reports.api`) and the
cache (`reports.cache`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from . import sql
from .exceptions import InvalidReportRange
from .routers import reports_reads

# Period units of the sales report; weeks start on Monday (PostgreSQL's `date_trunc('week')`).
INTERVALS = ("day", "week", "month")
DEFAULT_INTERVAL = "day"
DEFAULT_RANGE_DAYS = 30  # today and the 29 days before it
MAX_RANGE_YEARS = 3
TOP_PRODUCTS_DEFAULT_LIMIT = 10
TOP_PRODUCTS_MAX_LIMIT = 100


@dataclass(frozen=True)
class SalesRow:
    period: dt.date
    orders: int
    items_sold: int
    revenue_cents: int
    refunded_cents: int


@dataclass(frozen=True)
class TopProductRow:
    product: int
    sku: str
    name: str
    quantity: int
    revenue_cents: int


@dataclass(frozen=True)
class InventoryRow:
    products: int
    units_on_hand: int
    stock_value_cents: int
    low_stock: int
    out_of_stock: int


# --- dates -----------------------------------------------------------------------------------


def store_time_zone() -> str:
    """The store's time zone name (`settings.TIME_ZONE`), read each time so an override applies."""
    return str(settings.TIME_ZONE)


def store_today() -> dt.date:
    """Today in the store's time zone."""
    return timezone.now().astimezone(ZoneInfo(store_time_zone())).date()


def default_range(
    *, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """Fill in what the caller left out: `date_to` is today, `date_from` the 30-day window that
    ends on `date_to`."""
    date_to = date_to or store_today()
    if date_from is None:
        window = dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
        date_from = date_to - window if date_to - dt.date.min >= window else dt.date.min
    return date_from, date_to


def _years_later(day: dt.date, years: int) -> dt.date | None:
    """The same calendar day `years` later (29 February → 1 March); None past year 9999."""
    if day.year + years > dt.MAXYEAR:
        return None
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, month=3, day=1)


def range_error(*, date_from: dt.date, date_to: dt.date) -> tuple[str, str] | None:
    """Why the range cannot be reported, as `(code, message)`, or None when it can: the dates
    in order, and at most `MAX_RANGE_YEARS` years (from 1 January to 31 December three years
    on, not a day more). The limit bounds what one request may ask of the database."""
    if date_from > date_to:
        return "date_from_after_date_to", "date_from must not be after date_to."
    limit = _years_later(date_from, MAX_RANGE_YEARS)
    if limit is not None and date_to >= limit:
        return (
            "range_too_long",
            f"The range may span at most {MAX_RANGE_YEARS} years (date_to before {limit}).",
        )
    return None


def _check_range(date_from: dt.date, date_to: dt.date) -> None:
    error = range_error(date_from=date_from, date_to=date_to)
    if error is not None:
        raise InvalidReportRange(error[1])


def _params(date_from: dt.date, date_to: dt.date, **extra: Any) -> dict[str, Any]:
    return {
        "tz": store_time_zone(),
        "date_from": date_from,
        "date_to": date_to,
        "today": store_today(),
        **extra,
    }


def _rows(statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement on the reports database."""
    with reports_reads() as alias, connections[alias].cursor() as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall())


def _report_rows(statement: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run a sales or top-products statement, without JIT.

    PostgreSQL cannot know how many days the rollup lacks (usually one, today), so it prices the
    per-day index probes as if there were hundreds, which crosses `jit_above_cost`; compiling
    the plan then costs more (about 35 ms) than running it (a few ms). `SET LOCAL` keeps the
    setting to this statement's transaction, never to the pooled connection.
    """
    with (
        reports_reads() as alias,
        transaction.atomic(using=alias),
        connections[alias].cursor() as cursor,
    ):
        cursor.execute(sql.JIT_OFF)
        cursor.execute(statement, params)
        return list(cursor.fetchall())


# --- reports ---------------------------------------------------------------------------------


def sales_report(
    *, date_from: dt.date, date_to: dt.date, interval: str = DEFAULT_INTERVAL
) -> list[SalesRow]:
    """One row per period of `interval` from the one holding `date_from` to the one holding
    `date_to` (both inclusive), empty periods as zeros; `period` is the period's first day,
    which for the first week or month may fall before `date_from` (the figures never do).

    `orders` and `items_sold`: orders whose first succeeded charge settled in the period, and
    their units; `revenue_cents`: succeeded charges settled in it; `refunded_cents`: succeeded
    refunds settled in it, whichever period their order was paid in.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
    _check_range(date_from, date_to)
    rows = _report_rows(sql.SALES, _params(date_from, date_to, unit=interval, step=f"1 {interval}"))
    return [
        SalesRow(
            period=period,
            orders=orders,
            items_sold=items_sold,
            revenue_cents=revenue_cents,
            refunded_cents=refunded_cents,
        )
        for period, orders, items_sold, revenue_cents, refunded_cents in rows
    ]


def top_products_report(
    *, date_from: dt.date, date_to: dt.date, limit: int = TOP_PRODUCTS_DEFAULT_LIMIT
) -> list[TopProductRow]:
    """The best-selling products of the orders paid in the range (as `sales_report` counts
    them): units, then line revenue (price at checkout x quantity, before any refund), then
    product id. `sku` and `name` are the product's current ones."""
    if not 1 <= limit <= TOP_PRODUCTS_MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {TOP_PRODUCTS_MAX_LIMIT}, not {limit}")
    _check_range(date_from, date_to)
    rows = _report_rows(sql.TOP_PRODUCTS, _params(date_from, date_to, limit=limit))
    return [
        TopProductRow(product=product, sku=sku, name=name, quantity=quantity, revenue_cents=revenue)
        for product, sku, name, quantity, revenue in rows
    ]


def inventory_report() -> InventoryRow:
    """Active products now: how many, units on hand, their value at current prices, and how many
    are low (available at or below the threshold, but not zero) or out of stock (available 0)."""
    ((products, units, value, low, out),) = _rows(sql.INVENTORY, {})
    return InventoryRow(
        products=products,
        units_on_hand=units,
        stock_value_cents=value,
        low_stock=low,
        out_of_stock=out,
    )


def sales_data_version() -> str:
    """A token that changes whenever a payment succeeds (or is refunded) and whenever the
    rollup is rewritten: what cached sales and top-products responses are keyed on. Read from
    the same database as the reports, so a token never runs ahead of the data it stands for."""
    ((settled, computed),) = _rows(sql.DATA_VERSION, {})
    return f"{settled.isoformat() if settled else '-'}/{computed.isoformat() if computed else '-'}"
