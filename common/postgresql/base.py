"""Django's PostgreSQL backend with a health check that costs no round trip, for persistent and
for pooled connections alike.

`CONN_HEALTH_CHECKS` (config/settings.py) keeps connections across requests yet survives a
restart or failover: before a reused connection serves a request, Django asks `is_usable()`,
which in the stock backend is a `SELECT 1` to the server: one more round trip on every request,
a fifth of a cached catalog read's SQL.

Here the socket is asked first. A server that ends a connection (restart, failover,
`pg_terminate_backend`, idle timeouts) sends its FATAL message and closes the socket, which makes
the idle connection readable; an idle, healthy connection has nothing to read. So: nothing to
read → usable, with no query; something to read (a termination, or an asynchronous notice) → the
stock `SELECT 1` decides. A peer that vanished without a word (a cable cut) looks usable either
way until TCP gives up; the first query then fails, the request answers 503 and the connection
is replaced (common/exceptions.py), as it would with the stock check.

Pooled connections (the web processes: `OPTIONS["pool"]`, sized by gunicorn) get the same check,
here rather than in the pool. With `CONN_HEALTH_CHECKS` Django hands psycopg_pool its own check,
which is a round trip on every checkout; and after a connection fails it, the pool tries the next
at once but sleeps before each one after that (1 s, then 2 s, …): after a restart the first request
of a process waited a second or more while it went through the dead connections. So the pool is
built without a check, and `get_new_connection` checks what the pool hands out, socket first,
handing a dead connection back (the pool discards it and opens a new one in the background) and
taking the next at once. Django skips its own start-of-request check for a pool
(`close_if_health_check_failed`): a pooled connection is checked once, when a request takes it.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base


def _quiet(connection: Any) -> bool | None:
    """True: an open, idle connection with nothing to read (usable, no query sent). False: closed,
    broken or its socket unusable. None: something waits on the socket; a query must decide."""
    if connection is None or connection.closed or connection.broken:
        return False
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        if not poller.poll(0):
            return True
    except (OSError, ValueError):
        return False
    return None


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        quiet = _quiet(self.connection)
        if quiet is not None:
            return quiet
        return bool(super().is_usable())

    @property
    def pool(self) -> Any:
        pool = super().pool
        if pool is not None and pool._check is not None:
            # Checked in get_new_connection instead (module docstring); psycopg_pool takes the
            # check only as a constructor argument, which Django fills from CONN_HEALTH_CHECKS.
            # Before any use: every caller, Django's own included, comes through here.
            pool._check = None
        return pool

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None or not self.settings_dict["CONN_HEALTH_CHECKS"]:
            return connection
        # Each dead connection handed back is discarded, so at most every connection the pool
        # holds can be dead; the next one is one the pool has just opened.
        for _ in range(pool.max_size):
            if self._pooled_usable(connection):
                return connection
            pool.putconn(connection)
            connection = super().get_new_connection(conn_params)
        return connection

    def _pooled_usable(self, connection: Any) -> bool:
        quiet = _quiet(connection)
        if quiet is None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
            except self.Database.Error:
                quiet = False
            else:
                return True
        if not quiet and not connection.closed:
            connection.close()  # so the pool sees it is dead and replaces it
        return bool(quiet)
