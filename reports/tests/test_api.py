"""The reports over HTTP: who may read them, their exact JSON, every 400, and the cache."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from inventory.services import stock_adjust
from orders.models import Order, OrderItem
from reports.selectors import store_today
from reports.tests.conftest import Catalog, utc

SALES = "/api/v1/reports/sales/"
TOP = "/api/v1/reports/top-products/"
INVENTORY = "/api/v1/reports/inventory/"
ENDPOINTS = [SALES, TOP, INVENTORY]
DAY = dt.timedelta(days=1)


def report_statements(context: CaptureQueriesContext) -> list[str]:
    """The reports' own statements among the captured queries."""
    return [
        query["sql"]
        for query in context.captured_queries
        if "generate_series" in query["sql"] or "inventory_stocklevel AS s" in query["sql"]
    ]


# --- who may read ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_401(db: None, api_client: APIClient, path: str) -> None:
    response = api_client.get(path)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_customer_403(customer_client: APIClient, path: str) -> None:
    response = customer_client.get(path)
    assert response.status_code == 403
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {"code": "permission_denied", "detail": "Only staff may do this.", "attr": None}
        ],
    }


@pytest.mark.parametrize("path", ENDPOINTS)
def test_staff_and_admins_200(
    staff_client: APIClient, admin_client_api: APIClient, path: str
) -> None:
    assert staff_client.get(path).status_code == 200
    assert admin_client_api.get(path).status_code == 200


# --- figures ---------------------------------------------------------------------------------


def test_sales_json(spring: Catalog, staff_client: APIClient) -> None:
    response = staff_client.get(
        SALES, {"date_from": "2025-03-01", "date_to": "2025-05-31", "interval": "month"}
    )
    assert response.status_code == 200
    assert response.json() == [
        {
            "period": "2025-03-01",
            "orders": 3,
            "items_sold": 7,
            "revenue_cents": 6700,
            "refunded_cents": 0,
        },
        {
            "period": "2025-04-01",
            "orders": 2,
            "items_sold": 5,
            "revenue_cents": 4100,
            "refunded_cents": 500,
        },
        {
            "period": "2025-05-01",
            "orders": 0,
            "items_sold": 0,
            "revenue_cents": 0,
            "refunded_cents": 2500,
        },
    ]


def test_sales_defaults_to_the_last_30_days_by_day(berlin: str, staff_client: APIClient) -> None:
    today = store_today()
    rows = staff_client.get(SALES).json()
    assert [row["period"] for row in rows] == [str(today - n * DAY) for n in range(29, -1, -1)]
    assert {(r["orders"], r["revenue_cents"]) for r in rows} == {(0, 0)}
    # Given only one end, the other follows; an empty parameter counts as not given.
    rows = staff_client.get(SALES, {"date_to": "2025-03-31", "date_from": ""}).json()
    assert (rows[0]["period"], rows[-1]["period"], len(rows)) == ("2025-03-02", "2025-03-31", 30)
    rows = staff_client.get(SALES, {"date_from": str(today - 2 * DAY)}).json()
    assert [row["period"] for row in rows] == [str(today - 2 * DAY), str(today - DAY), str(today)]


def test_the_first_and_last_days_of_the_calendar(db: None, staff_client: APIClient) -> None:
    rows = staff_client.get(SALES, {"date_to": "0001-01-05", "interval": "week"}).json()
    assert [row["period"] for row in rows] == ["0001-01-01"]
    rows = staff_client.get(TOP, {"date_from": "9999-12-31", "date_to": "9999-12-31"}).json()
    assert rows == []
    rows = staff_client.get(SALES, {"date_from": "9999-12-01", "date_to": "9999-12-31"}).json()
    assert len(rows) == 31


def test_a_range_of_exactly_three_years_is_allowed(db: None, staff_client: APIClient) -> None:
    response = staff_client.get(
        SALES, {"date_from": "2022-01-01", "date_to": "2024-12-31", "interval": "month"}
    )
    assert response.status_code == 200
    assert len(response.json()) == 36


def test_top_products_json(spring: Catalog, staff_client: APIClient) -> None:
    response = staff_client.get(
        TOP, {"date_from": "2025-03-01", "date_to": "2025-05-31", "limit": "2"}
    )
    assert response.status_code == 200
    assert response.json() == [
        {
            "product": spring.c.pk,
            "sku": "C-1",
            "name": "Charlie",
            "quantity": 7,
            "revenue_cents": 2800,
        },
        {
            "product": spring.a.pk,
            "sku": "A-1",
            "name": "Alpha",
            "quantity": 3,
            "revenue_cents": 3000,
        },
    ]
    # Default range: the last 30 days, when nothing was sold; default limit 10.
    assert staff_client.get(TOP).json() == []
    query = {"date_from": "2025-03-01", "date_to": "2025-12-31"}
    assert [row["sku"] for row in staff_client.get(TOP, query).json()] == ["C-1", "A-1", "B-1"]


def test_inventory_json(catalog: Catalog, staff_client: APIClient) -> None:
    assert staff_client.get(INVENTORY).json() == {
        "products": 3,
        "units_on_hand": 150,
        "stock_value_cents": 50 * (1000 + 2500 + 400),
        "low_stock": 0,
        "out_of_stock": 0,
    }


# --- 400s ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "attr", "code"),
    [
        (SALES, {"date_from": "2025-13-01"}, "date_from", "invalid"),
        (SALES, {"date_from": "2025-02-30"}, "date_from", "invalid"),
        (SALES, {"date_to": "2025/03/01"}, "date_to", "invalid"),
        (SALES, {"date_to": "20250301"}, "date_to", "invalid"),
        (SALES, {"date_to": "2025-W10-1"}, "date_to", "invalid"),
        (SALES, {"date_to": "2025-03-01T00:00"}, "date_to", "invalid"),
        (SALES, {"interval": "year"}, "interval", "invalid_choice"),
        (SALES, {"interval": "Day"}, "interval", "invalid_choice"),
        (
            SALES,
            {"date_from": "2025-03-02", "date_to": "2025-03-01"},
            "date_from",
            "date_from_after_date_to",
        ),
        (
            SALES,
            {"date_from": "2022-01-01", "date_to": "2025-01-01"},
            "date_from",
            "range_too_long",
        ),
        (SALES, {"date_from": "1999-01-01"}, "date_from", "range_too_long"),
        (TOP, {"date_from": "tomorrow"}, "date_from", "invalid"),
        (
            TOP,
            {"date_from": "2025-03-02", "date_to": "2025-03-01"},
            "date_from",
            "date_from_after_date_to",
        ),
        (TOP, {"date_from": "2020-01-01", "date_to": "2024-01-01"}, "date_from", "range_too_long"),
        (TOP, {"limit": "0"}, "limit", "min_value"),
        (TOP, {"limit": "101"}, "limit", "max_value"),
        (TOP, {"limit": "ten"}, "limit", "invalid"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    staff_client: APIClient, path: str, query: dict[str, str], attr: str, code: str
) -> None:
    response = staff_client.get(path, query)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert [(error["attr"], error["code"]) for error in body["errors"]] == [(attr, code)]
    assert body["errors"][0]["detail"]


def test_limit_bounds_are_inclusive(db: None, staff_client: APIClient) -> None:
    assert staff_client.get(TOP, {"limit": "1"}).status_code == 200
    assert staff_client.get(TOP, {"limit": "100"}).status_code == 200


# --- cache -----------------------------------------------------------------------------------


@pytest.mark.redis
def test_a_new_payment_refreshes_the_cached_reports(
    spring: Catalog, staff_client: APIClient, sell: Callable[..., Order], settings: Any
) -> None:
    settings.REPORTS_CACHE_SECONDS = 300
    query = {"date_from": "2025-03-01", "date_to": "2025-03-31", "interval": "month"}
    first = staff_client.get(SALES, query).json()
    first_top = staff_client.get(TOP, query).json()
    assert first[0]["items_sold"] == 7

    # A change that is not a payment (here behind the services' back) is not seen while cached:
    # the second requests ran no report statement, only the version lookup.
    OrderItem.objects.filter(product=spring.a).update(quantity=9)  # orders 1 and 3
    with CaptureQueriesContext(connection) as context:
        assert staff_client.get(SALES, query).json() == first
        assert staff_client.get(TOP, query).json() == first_top
    assert report_statements(context) == []
    versions = [q["sql"] for q in context.captured_queries if "max(settled_at)" in q["sql"]]
    assert len(versions) == 2

    # A new succeeded payment (settled after every other one, in another month) changes the
    # key: both reports are fresh.
    sell([(spring.c, 1)], paid_at=utc(2025, 6, 1, 12))
    assert staff_client.get(SALES, query).json()[0]["items_sold"] == 9 + 4 + 9
    assert staff_client.get(TOP, query).json()[0] == {
        "product": spring.a.pk,
        "sku": "A-1",
        "name": "Alpha",
        "quantity": 18,
        "revenue_cents": 18000,
    }


@pytest.mark.redis
def test_a_refund_refreshes_the_cached_sales(
    berlin: str,
    catalog: Catalog,
    sell: Callable[..., Order],
    staff_client: APIClient,
    settings: Any,
) -> None:
    from orders.services import order_refund

    settings.REPORTS_CACHE_SECONDS = 300
    order = sell([(catalog.a, 2)], paid_at=utc(2025, 3, 3, 10))
    assert sum(row["refunded_cents"] for row in staff_client.get(SALES).json()) == 0
    order_refund(order_id=order.pk, actor=None, amount_cents=300)  # settled now: today
    assert sum(row["refunded_cents"] for row in staff_client.get(SALES).json()) == 300


@pytest.mark.redis
def test_a_rollup_write_refreshes_the_cached_sales(
    spring: Catalog, staff_client: APIClient, settings: Any
) -> None:
    from reports.models import DailySales
    from reports.services import rollup_days

    settings.REPORTS_CACHE_SECONDS = 300
    query = {"date_from": "2025-03-01", "date_to": "2025-03-31", "interval": "month"}
    rollup_days(date_from=dt.date(2025, 3, 3), date_to=dt.date(2025, 3, 3))
    assert staff_client.get(SALES, query).json()[0]["revenue_cents"] == 6700
    DailySales.objects.filter(day=dt.date(2025, 3, 3)).update(revenue_cents=1)  # by hand
    assert staff_client.get(SALES, query).json()[0]["revenue_cents"] == 6700  # cached
    rollup_days(date_from=dt.date(2025, 3, 10), date_to=dt.date(2025, 3, 10))  # another day
    assert staff_client.get(SALES, query).json()[0]["revenue_cents"] == 1 + 3700 + 1000


@pytest.mark.redis
def test_inventory_cache_follows_the_catalog(
    catalog: Catalog,
    staff_client: APIClient,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.REPORTS_CACHE_SECONDS = 300
    assert staff_client.get(INVENTORY).json()["units_on_hand"] == 150
    with CaptureQueriesContext(connection) as context:
        staff_client.get(INVENTORY)
    assert report_statements(context) == []
    with django_capture_on_commit_callbacks(execute=True):  # the catalog version moves
        stock_adjust(product_id=catalog.a.pk, delta=-50, reason="damage", actor=None)
    body = staff_client.get(INVENTORY).json()
    assert (body["units_on_hand"], body["out_of_stock"]) == (100, 1)


def test_no_cache_when_reports_cache_seconds_is_0(
    spring: Catalog, staff_client: APIClient, settings: Any
) -> None:
    settings.REPORTS_CACHE_SECONDS = 0
    query = {"date_from": "2025-03-01", "date_to": "2025-03-31"}
    staff_client.get(SALES, query)
    with CaptureQueriesContext(connection) as context:
        staff_client.get(SALES, query)
    assert len(report_statements(context)) == 1
    assert not [q for q in context.captured_queries if "max(settled_at)" in q["sql"]]


def test_reports_work_with_the_cache_down(
    spring: Catalog, staff_client: APIClient, settings: Any
) -> None:
    """The cache fails open: with Redis unreachable every report is built from the database."""
    settings.REPORTS_CACHE_SECONDS = 300
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.2,
                "SOCKET_TIMEOUT": 0.2,
                "IGNORE_EXCEPTIONS": True,
            },
        },
    }
    query = {"date_from": "2025-03-01", "date_to": "2025-03-31", "interval": "month"}
    for path in (SALES, TOP):
        assert staff_client.get(path, query).status_code == 200
    assert staff_client.get(INVENTORY).json()["products"] == 3
    assert staff_client.get(SALES, query).json()[0]["orders"] == 3
