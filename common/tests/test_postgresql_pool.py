"""Pooled connections (the web workers: `OPTIONS["pool"]`, config/settings.py) keep the health
check of common/postgresql: a healthy connection is handed out without a query, a dead one is
swapped for the next at once, without psycopg_pool's check and the backoff it sleeps after a
failure.

Each test builds a pool of its own (an alias of its own on the test database), never the test's
connection; the settings are read in a fresh process, as a deployment would read them."""

from __future__ import annotations

import copy
import select
import time
from collections.abc import Iterator
from typing import Any

import psycopg_pool.pool
import pytest
from django.contrib.postgres.signals import register_type_handlers
from django.db import connections
from django.db.backends.signals import connection_created

from common.postgresql.base import DatabaseWrapper
from common.tests.test_deploy import settings_probe
from common.tests.test_postgresql_backend import admin_execute

pytestmark = pytest.mark.django_db

ALIAS = "pool_test"
POOL_SIZE = 3


def _backend_pid(wrapper: Any) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.fixture
def pooled(monkeypatch) -> Iterator[Any]:
    """A wrapper on a full pool of POOL_SIZE connections; psycopg_pool may not sleep."""
    settings = copy.deepcopy(connections["default"].settings_dict)
    settings.update(
        CONN_MAX_AGE=0,
        CONN_HEALTH_CHECKS=True,
        OPTIONS={
            **settings["OPTIONS"],
            "pool": {"min_size": POOL_SIZE, "max_size": POOL_SIZE, "timeout": 10},
        },
    )
    # An alias `connections` does not know, which the test case lets connect; the hstore and
    # citext types django.contrib.postgres registers on each new connection would look it up.
    connection_created.disconnect(register_type_handlers)
    wrapper = DatabaseWrapper(settings, alias=ALIAS)

    def no_backoff(seconds: float) -> None:
        raise AssertionError(f"psycopg_pool backed off for {seconds:.2f} s")

    monkeypatch.setattr(psycopg_pool.pool, "sleep", no_backoff)
    wrapper.pool.open(wait=True)
    try:
        yield wrapper
    finally:
        wrapper.close()
        wrapper.close_pool()
        connection_created.connect(register_type_handlers)


def _pool_pids(wrapper: Any) -> set[int]:
    """The backends of every connection in the pool (all taken at once, then handed back)."""
    taken = [wrapper.pool.getconn() for _ in range(POOL_SIZE)]
    try:
        return {conn.info.backend_pid for conn in taken}
    finally:
        for conn in taken:
            wrapper.pool.putconn(conn)


def _take(wrapper: Any, pid: int) -> int:
    """Start requests (taking a connection) until the one to `pid` is handed out; the pool hands
    its connections out in turn. Returns the pid of the connection taken last."""
    for _ in range(POOL_SIZE):
        wrapper.ensure_connection()
        taken = int(wrapper.connection.info.backend_pid)
        if taken == pid:
            break
        wrapper.close()
    return taken


def _last_query(pid: int) -> str:
    ((query,),) = admin_execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    return str(query)


def test_a_healthy_pooled_connection_is_handed_out_without_a_query(pooled):
    pooled.ensure_connection()
    pid = _backend_pid(pooled)
    pooled.close()  # the end of a request: back to the pool

    assert _take(pooled, pid) == pid
    # The server's record of the session's last statement is still ours: no check was sent
    # (psycopg_pool's would be an empty query, the stock fallback a SELECT 1).
    assert _last_query(pid) == "SELECT pg_backend_pid()"


def test_dead_pooled_connections_are_replaced_at_once(pooled):
    """A restart or failover ended every connection in the pool: the next request gets a new
    one, with no error and without sleeping (the fixture fails any backoff)."""
    dead = _pool_pids(pooled)
    assert len(dead) == POOL_SIZE
    admin_execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(dead)])
    deadline = time.monotonic() + 10
    # Each backend exits a moment after it was told to, its FATAL message then on the socket.
    while admin_execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [list(dead)]):
        assert time.monotonic() < deadline, "the terminated backends did not exit"
        time.sleep(0.02)

    pooled.ensure_connection()
    pid = _backend_pid(pooled)

    assert pid not in dead


def test_a_notice_on_a_pooled_connection_falls_back_to_the_real_check(pooled):
    pooled.ensure_connection()
    pid = _backend_pid(pooled)
    with pooled.cursor() as cursor:
        cursor.execute("LISTEN shop_pool_test")
    socket = pooled.connection.fileno()
    pooled.close()
    admin_execute("SELECT pg_notify('shop_pool_test', 'hello') IS NULL", [])
    poller = select.poll()  # the notification reaches the socket a moment after the commit
    poller.register(socket, select.POLLIN)
    assert poller.poll(5_000), "the notification never arrived"

    # Readable, yet alive: SELECT 1 said so, and the same connection serves the request.
    assert _take(pooled, pid) == pid
    assert _last_query(pid) == "SELECT 1"
    pooled.connection.execute("UNLISTEN *")


# --- the settings -------------------------------------------------------------------------------

DATABASES_PROBE = """
import json
import environ
environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)
import django
django.setup()
from django.conf import settings
print(json.dumps({
    alias: {key: entry[key] for key in ("ENGINE", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    | {"pool": entry["OPTIONS"].get("pool")}
    for alias, entry in settings.DATABASES.items()
}))
"""


def databases(**variables: str) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = settings_probe(DATABASES_PROBE, **variables)
    return values


def test_without_a_pool_size_connections_are_persistent():
    """Celery, manage.py, runserver and the tests: gunicorn is what sets a size."""
    for unset in (databases(), databases(DATABASE_POOL_MAX_SIZE=""), databases(CONN_MAX_AGE="30")):
        default = unset["default"]
        assert default["pool"] is None
        assert default["CONN_HEALTH_CHECKS"] is True
        assert default["ENGINE"] == "common.postgresql"
    assert databases()["default"]["CONN_MAX_AGE"] == 60
    assert databases(CONN_MAX_AGE="30")["default"]["CONN_MAX_AGE"] == 30


def test_a_pool_size_pools_every_database_with_the_checks_kept():
    pooled = databases(
        DATABASE_POOL_MAX_SIZE="4",
        DATABASE_REPLICA_URL="postgres://unused@127.0.0.1:5432/replica",
    )
    for alias in ("default", "replica"):
        assert pooled[alias]["pool"] == {
            "min_size": 1,
            "max_size": 4,
            "timeout": 5,
            "reconnect_timeout": 5,
        }
        # Django refuses a pool with persistent connections; the health check stays on.
        assert (pooled[alias]["CONN_MAX_AGE"], pooled[alias]["CONN_HEALTH_CHECKS"]) == (0, True)


def test_the_embedded_postgresql_pools_like_any_other():
    """`make run` without DATABASE_URL: gunicorn's workers pool their embedded connections."""
    embedded = databases(DATABASE_URL="", DATABASE_POOL_MAX_SIZE="4")["default"]
    assert embedded["ENGINE"] == "common.embedded_postgres"
    assert embedded["pool"]["max_size"] == 4
