"""Reports read from the replica when `DATABASE_REPLICA_URL` is set; everything else, always the
primary.

A router sees a model, not a caller, and the reports read other apps' tables (payments, orders,
the catalog). So the reports mark their reads instead: inside `reports_reads()`, every ORM read
goes to the reports database, and the raw SQL of `reports.selectors` runs on the alias it
yields. Outside it, only the reports' own tables (the rollup) are read from there; every other
app keeps reading its own writes from the primary. Writes always go to the primary (the rollup
is written there, from data read there, so a lagging replica never freezes stale figures), and
only the primary is migrated: a replica follows it by replication.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

# The alias settings define when `DATABASE_REPLICA_URL` is set. (A test points this at a test
# mirror of the primary, so the rest of the suite never sees a second alias.)
REPLICA = "replica"

_reports_reading: ContextVar[bool] = ContextVar("reports_reading", default=False)


def reports_database() -> str:
    """The alias reports read from: the replica when configured, else the primary."""
    return REPLICA if REPLICA in connections.settings else DEFAULT_DB_ALIAS


@contextmanager
def reports_reads() -> Iterator[str]:
    """Route every read inside to the reports database; yields its alias (for raw SQL)."""
    token = _reports_reading.set(True)
    try:
        yield reports_database()
    finally:
        _reports_reading.reset(token)


class ReportsRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if _reports_reading.get() or model._meta.app_label == "reports":
            return reports_database()
        return None

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        """A row read from the replica is the primary's row: relations between them are fine."""
        same_data = {DEFAULT_DB_ALIAS, reports_database()}
        if obj1._state.db in same_data and obj2._state.db in same_data:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return None if db == DEFAULT_DB_ALIAS else False
