"""Real processes on the test database, each set started at most once per test session:

- `live_stack`, for the fault tests: a private Redis, gunicorn and a Celery worker (with beat);
  tests stop and start its parts (Redis, the worker) to inject the failures a deployment meets.
- `two_nodes`, for tests/test_two_nodes.py: two gunicorn servers on different ports sharing
  one private Redis and the test database, as two nodes behind a load balancer, with small
  throttle rates and the catalog cache on.

Everything listens on 127.0.0.1 and every wait is bounded; the processes are stopped when the
session ends, before the test database is dropped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_fault_tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
        except Exception as error:  # noqa: BLE001 (not there yet (a refused connection, a missing row))
            last_error = error
        else:
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what} (last error: {last_error!r})"
            )
        time.sleep(every)


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    offset: int = 0
    handle: Any = None

    def start(self) -> None:
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its children too
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        self.process = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def output(self) -> str:
        """What this run of the process wrote (not earlier runs)."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


def http_request(
    base_url: str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int, dict[str, str], bytes]:
    """One JSON request to a server of ours: (status, headers, body), 4xx and 5xx included."""
    request = urllib.request.Request(base_url + path, data=body, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def redis_process(port: int, env: dict[str, str], log: Path) -> Process:
    """A redis-server on 127.0.0.1:`port` that keeps nothing on disk."""
    return Process(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        env,
        log,
    )


def web_process(name: str, env: dict[str, str], log: Path) -> Process:
    """gunicorn with the project's config (it binds to `HOST`:`PORT` of `env`)."""
    return Process(
        name,
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
        env,
        log,
    )


@dataclass
class LiveStack:
    redis_port: int
    web_port: int
    env: dict[str, str]
    logs: Path
    redis: Process = field(init=False)
    web: Process = field(init=False)
    worker: Process = field(init=False)
    worker_runs: int = 0

    def __post_init__(self) -> None:
        self.redis = redis_process(self.redis_port, self.env, self.logs / "redis.log")
        self.web = web_process("web", self.env, self.logs / "web.log")
        self.worker = Process(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--beat",
                "--schedule",
                str(self.logs / "beat-schedule"),
                "-Q",
                "critical,default,bulk",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--hostname",
                f"fault-tests-{self.redis_port}@%h",
            ],
            self.env,
            self.logs / "worker.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> None:
        self.redis.start()
        wait_for(self.redis_answers, timeout=15, what="redis-server to answer")

    def stop_redis(self) -> None:
        self.redis.kill(signal.SIGTERM)
        wait_for(lambda: not self.redis_answers(), timeout=10, what="redis-server to stop")

    def redis_answers(self) -> bool:
        return redis_answers(self.redis_port)

    def start_worker(self) -> None:
        self.worker_runs += 1
        schedule = self.logs / f"beat-schedule-{self.worker_runs}"  # a killed beat may spoil one
        self.worker.command[self.worker.command.index("--schedule") + 1] = str(schedule)
        self.worker.start()
        wait_for(
            lambda: "ready." in self.worker.output(),
            timeout=60,
            what=f"the Celery worker\n{self.worker.tail()}",
        )

    def start_web(self) -> None:
        self.web.start()
        wait_for(
            lambda: self.get("/healthz")[0] == 200,
            timeout=60,
            what=f"gunicorn\n{self.web.tail()}",
        )

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        """See `http_request` (body, token, headers, timeout)."""
        return http_request(self.url, method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, **kwargs)

    def stop(self) -> None:
        for process in (self.worker, self.web, self.redis):
            process.kill()


@dataclass
class Node:
    """One gunicorn server of `TwoNodes`."""

    name: str
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        """Until /healthz answers; at once when gunicorn has exited (the app failed to load)."""

        def answered() -> str | bool:
            running = self.process.process
            if running is not None and running.poll() is not None:
                return "exited"
            return self.get("/healthz")[0] == 200

        if wait_for(answered, timeout=60, what=f"gunicorn {self.name}") == "exited":
            raise AssertionError(f"gunicorn {self.name} exited\n{self.process.tail()}")

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        """See `http_request` (body, token, headers, timeout)."""
        return http_request(self.url, method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, **kwargs)


@dataclass
class TwoNodes:
    """Two gunicorn servers (`a`, `b`) over one private Redis and the test database: what two
    nodes behind a load balancer share (throttle counters, the catalog cache and its version,
    the broker) and what they do not (process memory)."""

    redis_port: int
    ports: tuple[int, int]
    env: dict[str, str]
    logs: Path
    redis: Process = field(init=False)
    a: Node = field(init=False)
    b: Node = field(init=False)

    def __post_init__(self) -> None:
        self.redis = redis_process(self.redis_port, self.env, self.logs / "redis.log")
        self.a, self.b = (
            Node(
                name,
                port,
                web_process(name, {**self.env, "PORT": str(port)}, self.logs / f"{name}.log"),
            )
            for name, port in zip(("a", "b"), self.ports, strict=True)
        )

    @property
    def nodes(self) -> tuple[Node, Node]:
        return self.a, self.b

    def start(self) -> None:
        self.redis.start()
        wait_for(lambda: redis_answers(self.redis_port), timeout=15, what="redis-server to answer")
        for node in self.nodes:  # both boot at once
            node.process.start()
        for node in self.nodes:
            node.wait_ready()

    def forget_shared_state(self) -> None:
        """Empty the shared Redis (throttle counters, cached reads, queued tasks): each test
        starts from nothing shared, as the suite's `_clear_cache` does in the test process."""
        import redis

        redis.Redis(port=self.redis_port).flushall()

    def stop(self) -> None:
        for process in (self.a.process, self.b.process, self.redis):
            process.kill()


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def _server_env(*, database_url: str, redis_port: int, web_port: int) -> dict[str, str]:
    """The environment of a server process of ours: this one's, less the test process's own
    Django, Redis, Celery and coverage settings, on the test database and a private Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "CACHE_", "CELERY_", "PYTEST", "COV_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SECRET_KEY": settings.SECRET_KEY,  # the tests' JWTs must validate there
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "HOST": "127.0.0.1",
            "PORT": str(web_port),
            "WEB_CONCURRENCY": "2",
            "LOG_LEVEL": "WARNING",
            "EMAIL_URL": "consolemail://",
            "PAYMENT_GATEWAY": "test",
            "PAYMENT_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _needs_servers(what: str) -> None:
    if not os.environ.get("DATABASE_URL") or not shutil.which("redis-server"):
        pytest.skip(f"{what} need DATABASE_URL and a redis-server binary (CI has both)")


def _terminate_other_backends(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # A killed process can leave a backend behind; the test database must be droppable.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def live_stack(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """Start Redis, gunicorn and a worker (with beat) against the test database, once."""
    _needs_servers("fault tests")
    logs = tmp_path_factory.mktemp("live-stack")
    redis_port, web_port = free_port(), free_port()
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = _server_env(database_url=database_url, redis_port=redis_port, web_port=web_port)
    env.update(
        {
            "OUTBOX_RELAY_INTERVAL_SECONDS": "1",
            # Short, so a crashed payment's settlement is seen within a test's patience.
            "PAYMENT_RECONCILE_INTERVAL_SECONDS": "2",
            "PAYMENT_RECONCILE_AFTER_SECONDS": "3",
            "THROTTLE_ANON": "100000/min",
            "THROTTLE_USER": "100000/min",
        }
    )
    stack = LiveStack(redis_port=redis_port, web_port=web_port, env=env, logs=logs)
    try:
        stack.start_redis()
        stack.start_web()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()
        _terminate_other_backends(django_db_blocker)


# The rates of the two nodes (tests/test_two_nodes.py counts against them). Per hour, so that
# a fixed-window counter cannot roll over in the middle of a test unless it starts in the last
# seconds of an hour, which the tests wait out.
TWO_NODES_ANON_RATE = (10, 3600)
TWO_NODES_USER_RATE = (20, 3600)


@pytest.fixture(scope="session")
def two_nodes(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwoNodes]:
    """Start one Redis and two gunicorn servers sharing it and the test database, once: small
    anon and user rates (`TWO_NODES_*_RATE`) and the catalog response cache on. No Celery
    worker: tasks the requests queue wait in the broker."""
    _needs_servers("the two-node tests")
    logs = tmp_path_factory.mktemp("two-nodes")
    redis_port, port_a, port_b = free_port(), free_port(), free_port()
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = _server_env(database_url=database_url, redis_port=redis_port, web_port=port_a)
    env.update(
        {
            "THROTTLE_ANON": f"{TWO_NODES_ANON_RATE[0]}/hour",
            "THROTTLE_USER": f"{TWO_NODES_USER_RATE[0]}/hour",
            "CATALOG_CACHE_SECONDS": "300",
        }
    )
    nodes = TwoNodes(redis_port=redis_port, ports=(port_a, port_b), env=env, logs=logs)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()
        _terminate_other_backends(django_db_blocker)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for every browser test of the session (tests/browser.py)."""
    from tests.browser import CHROMIUM

    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop on this thread; Django's ORM would take the test's
    # own queries for async code (Playwright's and Django's documented way round it).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
