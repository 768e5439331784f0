"""A benchmark's own stack on 127.0.0.1, and the scratch databases it runs on.

Processes: gunicorn with the project's config (the app, or a raw baseline app), a Celery worker,
any other command; each in its own process group with its output in a log file, stopped (the
whole group) when the benchmark ends, and on Linux also when the benchmark process dies without
cleaning up (the parent-death signal), so nothing outlives a run.

Scratch databases, `<your database>_<suffix>` beside DATABASE_URL's, dropped at the end, so your
data is never touched: `scratch_database` through Django's connection once Django is set up
(it migrates in this process), `run_in_scratch_database` through psycopg before Django is set up
(for benchmarks that migrate with `migrate_and_setup` and set Django up on it).

Used by every benchmark and by bench/load.py (`make load`).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def http_status(port: int, path: str, *, timeout: float = 5) -> int:
    """The status of a GET to 127.0.0.1:`port`, or 0 when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Process:
    """One command of the stack, started at once: its own session (Ctrl-C in the terminal
    reaches only the benchmark, which stops the stack in order), its output appended to `log`."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._offset = log.stat().st_size if log.exists() else 0
        self._handle = log.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # the parent is single-threaded
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        """What this run of the process has written so far."""
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode(errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if it is still running after `timeout` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """`sig` to the process (gunicorn's and Celery's masters stop their workers gracefully),
        then SIGKILL to its whole group if it has not exited after `timeout` seconds."""
        if self.running:
            self.process.send_signal(sig)
            if self.wait(timeout) is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Whatever the group left behind (a worker whose master was killed).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._handle.close()


def _ready(process: Process, ready: Callable[[], bool], *, timeout: float, what: str) -> Process:
    """`process` once `ready()` holds; stopped, and the error raised, if it exits first or is
    not ready after `timeout` seconds (`what` names the wait in the error)."""
    try:
        wait_for(lambda: ready() or not process.running, timeout=timeout, what=what)
        if not process.running:
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
    except BaseException:
        process.stop()
        raise
    return process


def gunicorn(
    env: Mapping[str, str],
    log: Path,
    *,
    port: int,
    timeout: float = 60,
    flags: Sequence[str] = (),
    app: str = "config.wsgi",
    ready_path: str = "/healthz",
) -> Process:
    """`app` under gunicorn with config/gunicorn.conf.py (and `flags` over it) on
    127.0.0.1:`port`; returns once `ready_path` answers 200."""
    process = Process(
        "gunicorn",
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", *flags, app],
        {**env, "HOST": "127.0.0.1", "PORT": str(port)},
        log,
    )
    return _ready(
        process,
        lambda: http_status(port, ready_path) == 200,
        timeout=timeout,
        what=f"gunicorn to answer {ready_path}",
    )


def celery_worker(env: Mapping[str, str], log: Path, *, timeout: float = 60) -> Process:
    """`celery -A config worker -Q critical,default,bulk` (as `make worker`); returns once it is
    ready."""
    process = Process(
        "the Celery worker",
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "-Q",
            "critical,default,bulk",
            "--loglevel",
            "INFO",
            "--hostname",
            f"load-{os.getpid()}@%h",
        ],
        env,
        log,
    )
    return _ready(
        process,
        lambda: " ready." in process.output(),
        timeout=timeout,
        what="the Celery worker to be ready",
    )


def gunicorn_settings() -> dict[str, Any]:
    """What config/gunicorn.conf.py gives under the current environment: workers, worker class,
    threads (gunicorn's defaults where the file sets none)."""
    values = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    return {
        "workers": values.get("workers", 1),
        "worker_class": values.get("worker_class", "sync"),
        "threads": values.get("threads", 1),
        "timeout": values.get("timeout", 30),
    }


# =============================================================================
# Scratch databases
# =============================================================================
def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def setup_django_on_database_url() -> bool:
    """Django set up on DATABASE_URL, for the benchmarks that work in `scratch_database`; False
    (after saying what is missing) when DATABASE_URL is not set."""
    if not os.environ.get("DATABASE_URL"):
        print("set DATABASE_URL (the benchmark creates and drops <database>_bench beside it)")
        return False
    setup_django()
    return True


@contextlib.contextmanager
def scratch_database(suffix: str = "bench") -> Iterator[str]:
    """A fresh, migrated database beside the one Django is set up on, which Django uses
    meanwhile; dropped afterwards. Yields its URL."""
    from django.core.management import call_command
    from django.db import connection

    settings_dict = connection.settings_dict
    original = settings_dict["NAME"]
    name = f"{original}_{suffix}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    settings_dict["NAME"] = name
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name
    try:
        call_command("migrate", verbosity=0)
        yield url
    finally:
        connection.close()
        settings_dict["NAME"] = original
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def database_url(base_url: str, name: str, **query: str) -> str:
    """`base_url` pointed at the database `name`; with `query`, that replaces its parameters."""
    parts = urlsplit(base_url)._replace(path=f"/{name}")
    return urlunsplit(parts._replace(query=urlencode(query)) if query else parts)


def admin_sql(base_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@dataclass
class Scratch:
    """A scratch database of `run_in_scratch_database`, and the processes started on it (stopped,
    in order, before it is dropped)."""

    base_url: str
    name: str
    url: str
    processes: list[Process] = field(default_factory=list)


def run_in_scratch_database(
    bench: str, run: Callable[[Scratch], None], *, secret_key: bool = True
) -> None:
    """`run` on an empty database `<DATABASE_URL's database>_<bench>` (a leftover of that name
    dropped first), for a benchmark that sets Django up on it itself; afterwards its processes are
    stopped, Django's connections (if it was set up) closed and the database dropped. Skipped,
    saying so, without DATABASE_URL (or SECRET_KEY, with `secret_key`)."""
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url or (secret_key and not os.environ.get("SECRET_KEY")):
        needs = "DATABASE_URL (PostgreSQL)" + (" and SECRET_KEY" if secret_key else "")
        print(f"{bench} needs {needs}; skipped")
        return
    name = f"{urlsplit(base_url).path.lstrip('/') or 'postgres'}_{bench}"
    admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    scratch = Scratch(base_url, name, database_url(base_url, name))
    try:
        run(scratch)
    finally:
        try:
            for process in scratch.processes:
                process.stop()
        finally:
            with contextlib.suppress(Exception):  # Django may not be set up yet
                from django.db import connections

                connections.close_all()
            admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# What a benchmark's own process takes from its servers' environment before setting Django up.
IN_PROCESS_SETTINGS = (
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
    "EMAIL_URL",
    "LOG_LEVEL",
    "THROTTLE_USER",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "THROTTLE_CACHE_URL",
)


def migrate_and_setup(env: Mapping[str, str]) -> None:
    """`manage.py migrate` under `env` (in a subprocess, as the servers will see the database),
    then Django set up in this process with env's IN_PROCESS_SETTINGS (those env lacks removed)."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=dict(env),
        check=True,
        timeout=300,
    )
    for key in IN_PROCESS_SETTINGS:
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)
    sys.path.insert(0, str(ROOT))
    setup_django()


def bench_products(
    count: int, *, sku: str, name: str, price_cents: Callable[[int], int], **fields: Any
) -> list[int]:
    """The ids of `count` new products (SKU `<sku>-<n>`, named `<name> <n>`) in a new category
    "Bench"; `fields` go to `product_create` as they are."""
    from inventory.services import category_create, product_create

    category = category_create(name="Bench")
    return [
        product_create(
            sku=f"{sku}-{n}",
            name=f"{name} {n}",
            category=category,
            price_cents=price_cents(n),
            **fields,
        ).pk
        for n in range(count)
    ]
