"""Gunicorn settings, from the same environment the app reads: the environment, else `.env`, an
empty variable counting as unset (HOST, PORT, WEB_CONCURRENCY, WEB_THREADS).

Workers: `gthread`, WEB_CONCURRENCY processes (default 2) of WEB_THREADS threads (default 4), so
8 requests are served at once by default. A request here mostly waits: on the payment gateway (up
to PAYMENT_GATEWAY_TIMEOUT_SECONDS, 10 s), on PostgreSQL, on Redis. With sync workers (one
request per process) two slow payments took both processes and every other request, `/readyz`
included, waited behind them. A waiting thread releases the GIL, so the threads of one process
overlap their waits; the GIL still runs one thread's Python at a time, so processes, not threads,
are what use more cores (WEB_CONCURRENCY about one per core, more to take a CPU-heavy request
such as a login's Argon2 hash off the others). Threads are nearly free in memory (a stack), where
each process holds its own copy of Django and the app; 4 threads per process is enough to keep a
core busy between waits without queueing much Python behind the GIL.

A worker accepts a connection only when one of its threads is free (`worker_connections` =
threads): with all of them busy (four slow payments, say) the next connection waits in the listen
queue for another worker, instead of being accepted by this one and waiting behind the slow
requests. Every response closes its connection (`keepalive` 0), as the sync workers did: a kept
connection would tie its client to its worker. Put a proxy in front for keep-alive to clients.
The arbiter's `timeout` watches each worker's main loop, not its threads: a thread stuck in a
request is bounded by the timeouts of what it waits on (gateway, database, Redis), not by it.
Measured here: a gthread worker's memory is about that of a sync worker (110 MB against 109 MB
resident after the same load), and 2 workers of 4 threads served about 1.9 times the uncached
product reads of 2 sync workers (bench/bench_pool.py, `BENCH_SYNC=1`).

Thread safety, checked for this change: Django gives each thread its own database connections,
and a request's state lives on the request; the request id is a context variable
(common/logging.py), so each thread has its own; prometheus_client's multiprocess values take a
lock around every write (common/metrics.py needs no change). Module-level state is filled at
import, before the threads start (URLs, settings, handlers, `functools.cache`), or races only
harmlessly: whether pg_trgm exists (inventory/selectors.py: the
same answer twice), the outbox's broker backoff (common/outbox.py: one number), the
once-a-minute log filter (common/logging.py: at worst a second line in a minute, or a count of
held lines off by one).

Database connections: each thread holds one per database for the length of its request (a slow
gateway call included), so each worker pools exactly WEB_THREADS of them (psycopg_pool, through
DATABASE_POOL_MAX_SIZE, set here for the workers when unset; config/settings.py): at most
WEB_CONCURRENCY x WEB_THREADS connections per web server (8 by default), to count against
PostgreSQL's `max_connections` with the Celery workers'. Persistent connections (one per thread,
Django's CONN_MAX_AGE) would hold as many under load; the pool opens them off the request path
(a persistent connection is reopened by a request every CONN_MAX_AGE) and closes what a burst
opened once it has been idle for 10 minutes (a thread keeps its persistent connection until it
serves again). It costs about 0.1 ms a request (taking and returning a connection), lost in the
noise of bench/bench_pool.py (pool / persistent 0.94, 1.07 and 0.91 in three runs); and while
PostgreSQL refuses connections a request waits for the pool's timeout (5 s) before its 503 instead
of failing at once. `DATABASE_POOL_MAX_SIZE=0` in the environment turns the pool off.

Metrics are exact across workers through prometheus_client's multiprocess mode: every worker
writes its values to files in `PROMETHEUS_MULTIPROC_DIR`, and whichever worker answers /metrics
adds them all up (common/metrics.py). The variable must be in a worker's environment before it
imports prometheus_client, so the master sets it in `on_starting`, before the first fork:

- unset: a new directory for this server (under /dev/shm, like the heartbeat files), removed
  when the server exits; one left by a server that was killed (no `on_exit`) is removed when
  the next one starts;
- set (to share it with Celery workers on this host, which then need the same value): created
  if missing, and emptied of the files whose process is no longer running (what an earlier
  server left); the files of running processes (such a Celery worker) are kept, or their counts
  would vanish from /metrics until they restart.

A worker that exits keeps its counts (its files stay); `child_exit` only drops its live gauges.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import environ


class _DotEnv(environ.Env):  # type: ignore[misc]
    """`.env` beside manage.py, read as config/settings.py reads it, into a dict of its own:
    the master's environment is left as it was (its workers' settings read the file again)."""

    ENVIRON: dict[str, str] = {}


_DotEnv.read_env(Path(__file__).resolve().parent.parent / ".env")


def _setting(name: str, default: str) -> str:
    """The environment's value, else `.env`'s, else `default`: an empty value counts as unset, as
    everywhere (config/env.py). `HOST=""` binds loopback, not every interface; `PORT=""`,
    `WEB_CONCURRENCY=""` and `WEB_THREADS=""` take their defaults instead of failing."""
    return os.environ.get(name) or _DotEnv.ENVIRON.get(name) or default


bind = f"{_setting('HOST', '127.0.0.1')}:{_setting('PORT', '8000')}"
workers = int(_setting("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(_setting("WEB_THREADS", "4"))
worker_connections = threads
keepalive = 0
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
timeout = 30
graceful_timeout = 20
accesslog = None  # the app writes one JSON access line per request itself
errorlog = "-"
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), shared by
# every gunicorn that user runs (a second server, the benchmarks, the tests' live stack): off.
control_socket_disable = True

_POOL_SIZE = "DATABASE_POOL_MAX_SIZE"
_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_METRICS_FILE = re.compile(r".*_(\d+)\.db")  # counter_<pid>.db, gauge_<mode>_<pid>.db, …
_OWN_DIR = re.compile(r"shop-metrics-(\d+)-.+")  # shop-metrics-<master pid>-<random>


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: not ours to judge, and its file stays
    return True


def _forget_finished_processes(directory: str) -> None:
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        match = _METRICS_FILE.fullmatch(name)
        if os.path.isfile(path) and not (match and _running(int(match.group(1)))):
            os.remove(path)


def _forget_killed_servers(parent: str) -> None:
    for name in os.listdir(parent):
        match = _OWN_DIR.fullmatch(name)
        if match and not _running(int(match.group(1))):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def on_starting(server: Any) -> None:
    # Before the first fork, so every worker's settings see it; an explicit value (0: no pool)
    # wins. The threads in effect: a `--threads` on the command line overrides this file.
    if not os.environ.get(_POOL_SIZE):
        os.environ[_POOL_SIZE] = str(server.cfg.threads)
    directory = os.environ.get(_METRICS_DIR, "")  # empty counts as unset, as in settings
    if directory:
        os.makedirs(directory, exist_ok=True)
        _forget_finished_processes(directory)
    else:
        parent = worker_tmp_dir or tempfile.gettempdir()
        _forget_killed_servers(parent)
        directory = tempfile.mkdtemp(prefix=f"shop-metrics-{os.getpid()}-", dir=parent)
        server.shop_metrics_tmp_dir = directory
    os.environ[_METRICS_DIR] = directory
    server.log.info("Prometheus multiprocess directory: %s", directory)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    directory = getattr(server, "shop_metrics_tmp_dir", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
