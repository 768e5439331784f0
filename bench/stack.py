"""Processes for a benchmark's own stack on 127.0.0.1: gunicorn with the project's config, a
Celery worker, any other command; each in its own process group with its output in a log file,
stopped (the whole group) when the benchmark ends, and on Linux also when the benchmark process
dies without cleaning up (the parent-death signal), so nothing outlives a run.

Used by bench/load.py (`make load`).
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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


def gunicorn(
    env: Mapping[str, str],
    log: Path,
    *,
    port: int,
    timeout: float = 60,
    flags: Sequence[str] = (),
) -> Process:
    """The app under gunicorn with config/gunicorn.conf.py (and `flags` over it) on
    127.0.0.1:`port`; returns once /healthz answers."""
    process = Process(
        "gunicorn",
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", *flags, "config.wsgi"],
        {**env, "HOST": "127.0.0.1", "PORT": str(port)},
        log,
    )
    try:
        wait_for(
            lambda: http_status(port, "/healthz") == 200 or not process.running,
            timeout=timeout,
            what="gunicorn to answer /healthz",
        )
        if not process.running:
            raise RuntimeError(f"gunicorn exited:\n{process.tail()}")
    except BaseException:
        process.stop()
        raise
    return process


def celery_worker(env: Mapping[str, str], log: Path, *, timeout: float = 60) -> Process:
    """`celery -A config worker -Q critical,default,bulk` (as `make worker`); returns once it is
    ready."""
    process = Process(
        "celery",
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
    try:
        wait_for(
            lambda: " ready." in process.output() or not process.running,
            timeout=timeout,
            what="the Celery worker to be ready",
        )
        if not process.running:
            raise RuntimeError(f"the Celery worker exited:\n{process.tail()}")
    except BaseException:
        process.stop()
        raise
    return process


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
