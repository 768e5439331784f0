"""Gunicorn settings, from the same environment the app reads.

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
from typing import Any

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
timeout = 30
graceful_timeout = 20
accesslog = None  # the app writes one JSON access line per request itself
errorlog = "-"
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), shared by
# every gunicorn that user runs (a second server, the benchmarks, the tests' live stack): off.
control_socket_disable = True

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
