"""Liveness (/healthz) and readiness (/readyz): plain Django views, no auth, no throttling."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2


def check_database() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", [CHECK_TIMEOUT_SECONDS * 1000])
        cursor.execute("SELECT 1")


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")
    cache.delete(key)


def check_broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # tasks run in-process: there is no broker to reach
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_SECONDS) as conn:
        # One quick retry: a refused connection answers in milliseconds, not after a backoff.
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=1, timeout=CHECK_TIMEOUT_SECONDS
        )


def _service(check: str) -> str:
    """What stands behind a check, for the operator reading a 503 (Redis, PostgreSQL, …)."""
    if check == "database":
        return "PostgreSQL"
    if check == "cache":
        backend = str(settings.CACHES["default"]["BACKEND"])
        return "Redis" if "redis" in backend.lower() else str(backend.rsplit(".", 1)[-1])
    scheme = str(settings.CELERY_BROKER_URL).split("://", 1)[0]
    names = {"redis": "Redis", "rediss": "Redis", "amqp": "RabbitMQ"}
    return names.get(scheme, scheme)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            logger.exception("readiness check failed", extra={"check": name})
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    failed = sorted(name for name, result in results.items() if result != "ok")
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": results}
    if failed:
        body["failed"] = failed
        body["detail"] = ", ".join(f"{name} ({_service(name)})" for name in failed) + (
            " did not answer"
        )
    return JsonResponse(body, status=503 if failed else 200)
