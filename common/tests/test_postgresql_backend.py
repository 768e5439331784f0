"""The health check that keeps reused connections honest without a round trip (common/postgresql).

Each test opens a connection of its own (never the test's), ends it from another session the way
a restart or failover does, and asks the backend whether it is still usable."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_connection() -> Iterator[Any]:
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def admin_execute(sql: str, params: list[Any]) -> Any:
    """Another session, outside Django, as an operator would run it."""
    settings = connections["default"].get_connection_params()
    settings.pop("cursor_factory", None)
    settings.pop("context", None)
    with psycopg.connect(**settings, autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _backend_pid(wrapper: Any) -> int:
    with wrapper.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_the_backend_is_ours():
    assert connections["default"].__class__.__module__ in {
        "common.postgresql.base",
        "common.embedded_postgres.base",
    }


def test_an_idle_healthy_connection_is_usable_without_a_query(own_connection):
    pid = _backend_pid(own_connection)
    assert own_connection.is_usable() is True
    # The server's record of this session's last statement is still ours: no SELECT 1 was sent.
    ((last,),) = admin_execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    assert last == "SELECT pg_backend_pid()"


def test_a_connection_the_server_ended_is_not_usable(own_connection):
    pid = _backend_pid(own_connection)
    assert admin_execute("SELECT pg_terminate_backend(%s)", [pid]) == [(True,)]
    deadline = time.monotonic() + 5
    while own_connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.02)  # the FATAL message and the close reach the socket a moment later
    assert own_connection.is_usable() is False


def test_a_notice_waiting_on_the_socket_falls_back_to_the_real_check(own_connection):
    pid = _backend_pid(own_connection)
    with own_connection.connection.cursor() as cursor:
        cursor.execute("LISTEN shop_backend_test")
    admin_execute("SELECT pg_notify('shop_backend_test', 'hello') IS NULL", [])
    poller = select.poll()  # the notification reaches our socket a moment after the commit
    poller.register(own_connection.connection.fileno(), select.POLLIN)
    assert poller.poll(5_000), "the notification never arrived"
    assert own_connection.is_usable() is True  # readable, yet alive: SELECT 1 said so
    ((last,),) = admin_execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    assert last == "SELECT 1"


def test_a_closed_connection_is_not_usable(own_connection):
    own_connection.connection.close()
    assert own_connection.is_usable() is False
