"""The reports, and nothing else, read from the replica; writes and migrations stay on the
primary.

The replica here is `test_replica` (config/settings_test.py), a Django *test mirror* of
`default`: the test runner gives it no database of its own but points it at the test database,
through a second connection. So it sees only committed rows (these tests run with
`transaction=True`), and a test may query it only when it lists it in `databases`; the rest of
the suite never does, and keeps `reports_database()` on the primary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import connections, router
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from inventory.models import Product
from orders.models import Order
from payments.models import Payment
from reports import routers
from reports.models import DailySales
from reports.routers import reports_database, reports_reads
from reports.services import rollup_days
from reports.tests.conftest import Catalog, utc

MIRROR = "test_replica"


@pytest.fixture
def replica(monkeypatch: pytest.MonkeyPatch) -> str:
    """The reports' replica alias is the test mirror for this test."""
    monkeypatch.setattr(routers, "REPLICA", MIRROR)
    return MIRROR


def _sql(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def test_without_a_replica_reports_read_the_primary(db: None) -> None:
    assert "replica" not in connections.settings
    assert reports_database() == "default"
    with reports_reads() as alias:
        assert alias == "default"
        assert Order.objects.all().db == "default"
    assert DailySales.objects.all().db == "default"


def test_routing_decisions(replica: str) -> None:
    # Other apps read and write the primary, unless a report is reading.
    assert Order.objects.all().db == "default"
    assert router.db_for_read(Payment) == "default"
    assert router.db_for_write(Order) == "default"
    with reports_reads() as alias:
        assert alias == MIRROR
        assert Order.objects.all().db == MIRROR
        assert router.db_for_write(Order) == "default"
    assert Product.objects.all().db == "default"
    # The rollup is read from the replica, written to the primary.
    assert DailySales.objects.all().db == MIRROR
    assert router.db_for_write(DailySales) == "default"
    # Only the primary is migrated; rows of both are the same data.
    assert router.allow_migrate("default", "reports") is True
    assert router.allow_migrate(MIRROR, "reports") is False
    assert router.allow_migrate(MIRROR, "orders") is False
    primary_row = DailySales(day=dt.date(2025, 1, 1))
    replica_row = DailySales(day=dt.date(2025, 1, 2))
    primary_row._state.db, replica_row._state.db = "default", MIRROR
    assert router.allow_relation(primary_row, replica_row) is True
    replica_row._state.db = "elsewhere"
    assert routers.ReportsRouter().allow_relation(primary_row, replica_row) is None


@pytest.mark.django_db(transaction=True, databases=["default", MIRROR])
def test_reports_are_served_by_the_replica(
    replica: str,
    berlin: str,
    catalog: Catalog,
    sell: Callable[..., Order],
    staff_client: APIClient,
    settings: object,
) -> None:
    sell([(catalog.a, 2)], paid_at=utc(2025, 3, 3, 10))
    sell([(catalog.b, 1)], paid_at=utc(2025, 3, 4, 10))
    query = {"date_from": "2025-03-01", "date_to": "2025-03-31", "interval": "month"}

    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[MIRROR]) as mirror,
    ):
        sales = staff_client.get("/api/v1/reports/sales/", query)
        top = staff_client.get("/api/v1/reports/top-products/", query)
        inventory = staff_client.get("/api/v1/reports/inventory/")
    assert sales.json()[0]["revenue_cents"] == 2000 + 2500  # committed rows, read by the mirror
    assert [row["sku"] for row in top.json()] == ["A-1", "B-1"]
    assert inventory.json()["products"] == 3

    # Every report statement, and the cache's version lookup, ran on the replica ...
    assert sum("reports_dailysales" in sql for sql in _sql(mirror)) == 4  # 2 reports + 2 versions
    assert sum("inventory_stocklevel" in sql for sql in _sql(mirror)) == 1
    # ... and none on the primary, which served only the authentication (the user row).
    assert not [sql for sql in _sql(primary) if "payments_payment" in sql or "inventory" in sql]
    assert all("accounts_user" in sql for sql in _sql(primary)), _sql(primary)

    # The rollup is computed on and written to the primary, never the replica.
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[MIRROR]) as mirror,
    ):
        assert rollup_days(date_from=dt.date(2025, 3, 1), date_to=dt.date(2025, 3, 31)) == 31
    assert _sql(mirror) == []
    assert sum("INSERT INTO reports_daily" in sql for sql in _sql(primary)) == 2
    assert DailySales.objects.using("default").count() == 31

    # Other apps' reads stay on the primary, inside a request too.
    with CaptureQueriesContext(connections[MIRROR]) as mirror:
        assert staff_client.get("/api/v1/orders/").status_code == 200
        assert Order.objects.count() == 2
    assert _sql(mirror) == []
