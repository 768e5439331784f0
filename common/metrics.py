"""Business metrics an operator alerts on, and the /metrics view that exports them behind a door.

The metrics (every name starts with `shop_`; counters are exported with `_total`):

- `shop_orders_placed`, `shop_order_value_cents` (histogram), `shop_checkout_duration_seconds`
  (histogram): checkouts that committed;
- `shop_checkout_conflicts`: checkouts refused with 409 because stock ran short;
- `shop_orders_paid`, `shop_revenue_cents`: orders that became paid, and their totals;
- `shop_payment_declines{code}`: charges the gateway declined, by its code;
- `shop_refunds`, `shop_refunds_cents`, `shop_refunds_failed`: refunds the gateway settled;
- `shop_low_stock_crossings`: products that fell to their low-stock threshold;
- `shop_emails_sent{template}`, `shop_emails_failed{template}`: what the mail server answered;
- `shop_task_failures{task}`: background tasks that raised (each failed attempt);
- `shop_security_events{event}`: security events (failed and throttled logins, suspensions, role
  and password changes, refresh-token reuse...), as logged by `accounts.security`.

Labels are short fixed sets (gateway codes, template and task names), never ids. A fact that a
transaction makes true is recorded after that transaction commits (`_after_commit`), so a
checkout that rolls back counts nothing; a refusal (a 409) or an answer from the outside world
(the mail server, a task's exception) is a fact when it happens and is recorded at once.
Recording never raises into a request or a task: a failure is logged, at most once a minute.

Exact across processes: with `PROMETHEUS_MULTIPROC_DIR` set (config/gunicorn.conf.py sets it for
its workers) each process writes its values to its own files there, and whichever worker answers
/metrics adds them all up (prometheus_client's multiprocess mode). The outbox gauges are read from
PostgreSQL at scrape time, so they are exact already and are added to that registry once. Without
the variable (runserver, tests, one process) the default registry is exported as it is.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Callable
from typing import Any

from celery.signals import task_failure
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from .exceptions import error_body
from .logging import rate_limited_logger

logger = rate_limited_logger("shop.metrics")

# --- the metrics -------------------------------------------------------------------------------

ORDERS_PLACED = Counter("shop_orders_placed", "Orders placed (checkouts committed)")
ORDER_VALUE_CENTS = Histogram(
    "shop_order_value_cents",
    "Total of each order placed, in cents of the store currency",
    buckets=(500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000),
)
CHECKOUT_SECONDS = Histogram(
    "shop_checkout_duration_seconds",
    "Time a committed checkout spent in its transaction (locks, inserts, stock), before commit",
)
CHECKOUT_CONFLICTS = Counter(
    "shop_checkout_conflicts", "Checkouts refused with 409 because a product's stock ran short"
)
ORDERS_PAID = Counter("shop_orders_paid", "Orders that became paid")
REVENUE_CENTS = Counter(
    "shop_revenue_cents", "Totals of the orders that became paid, in cents of the store currency"
)
PAYMENT_DECLINES = Counter(
    "shop_payment_declines", "Charges the gateway declined, by its code", ["code"]
)
REFUNDS = Counter("shop_refunds", "Refunds the gateway settled as succeeded")
REFUNDS_CENTS = Counter("shop_refunds_cents", "Cents refunded (succeeded refunds)")
REFUNDS_FAILED = Counter("shop_refunds_failed", "Refunds the gateway refused")
LOW_STOCK_CROSSINGS = Counter(
    "shop_low_stock_crossings", "Products whose available stock fell to their low-stock threshold"
)
EMAILS_SENT = Counter("shop_emails_sent", "Emails the mail server accepted", ["template"])
EMAILS_FAILED = Counter("shop_emails_failed", "Emails the mail server refused", ["template"])
TASK_FAILURES = Counter(
    "shop_task_failures", "Background task runs that raised (each failed attempt)", ["task"]
)
SECURITY_EVENTS = Counter(
    "shop_security_events", "Security events (accounts.security), by event name", ["event"]
)

# A gateway's codes are a short fixed list; anything else is one label value, not a new series.
_CODE = re.compile(r"[a-z0-9_]{1,40}")
OTHER_CODE = "other"


# --- recording ---------------------------------------------------------------------------------


def _record(update: Callable[[], object]) -> None:
    """Run one metric update. A failure (a full disk under the metrics directory) is logged and
    swallowed: a metric is never worth a failed checkout."""
    try:
        update()
    except Exception:
        logger.warning("metric update failed", exc_info=True)


def _after_commit(update: Callable[[], object]) -> None:
    """Record once the current transaction commits (at once outside one); a rollback records
    nothing. Registering itself is guarded too: outside a transaction it touches the database."""
    _record(lambda: transaction.on_commit(lambda: _record(update), robust=True))


def _code(value: str) -> str:
    return value if _CODE.fullmatch(value) else OTHER_CODE


def order_placed(*, total_cents: int, started: float) -> None:
    """In the checkout's transaction, at its end; `started` is its `time.perf_counter()`."""
    seconds = time.perf_counter() - started

    def update() -> None:
        ORDERS_PLACED.inc()
        ORDER_VALUE_CENTS.observe(total_cents)
        CHECKOUT_SECONDS.observe(seconds)

    _after_commit(update)


def checkout_conflict() -> None:
    """A checkout refused for short stock (its transaction rolls back: recorded at once)."""
    _record(CHECKOUT_CONFLICTS.inc)


def order_paid(*, total_cents: int) -> None:
    def update() -> None:
        ORDERS_PAID.inc()
        REVENUE_CENTS.inc(total_cents)

    _after_commit(update)


def payment_declined(*, code: str) -> None:
    _after_commit(lambda: PAYMENT_DECLINES.labels(code=_code(code)).inc())


def refund_settled(*, amount_cents: int, succeeded: bool) -> None:
    def update() -> None:
        if succeeded:
            REFUNDS.inc()
            REFUNDS_CENTS.inc(amount_cents)
        else:
            REFUNDS_FAILED.inc()

    _after_commit(update)


def low_stock_crossed(*, products: int) -> None:
    _after_commit(lambda: LOW_STOCK_CROSSINGS.inc(products))


def email_delivered(*, template: str, sent: bool) -> None:
    """After the mail server answered (in whichever process sends: a worker, or eager Celery)."""
    _record(lambda: (EMAILS_SENT if sent else EMAILS_FAILED).labels(template=template).inc())


def task_failed(*, task: str) -> None:
    _record(lambda: TASK_FAILURES.labels(task=task).inc())


def security_event_recorded(*, event: str) -> None:
    """A security event, when it happens (a refusal is a fact at once; the caller of a change
    records it after its transaction commits). Event names come from code, never from a request;
    anything not shaped like one is counted as `other`."""
    _record(lambda: SECURITY_EVENTS.labels(event=_code(event)).inc())


@task_failure.connect(dispatch_uid="shop.metrics.task_failure")
def _count_task_failure(sender: Any = None, **_: Any) -> None:
    """Plain Celery runs (beat, `.delay()`) that raised. A run through the outbox never gets here:
    `OutboxTask` keeps the exception and counts it itself (common/outbox.py `_record_failure`)."""
    task_failed(task=str(getattr(sender, "name", None) or "unknown"))


# --- exporting ---------------------------------------------------------------------------------

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})  # the last: IPv4 on a dual stack
FORBIDDEN = (
    "Metrics need `Authorization: Bearer <METRICS_TOKEN>`, or, while no token is set, a request "
    "from this host."
)


def metrics_allowed(request: HttpRequest) -> bool:
    """With `METRICS_TOKEN` set, only its bearer (compared in constant time); without it, only
    loopback. REMOTE_ADDR is the peer that connected; X-Forwarded-For is anyone's to write."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )
    return request.META.get("REMOTE_ADDR") in LOOPBACK


def metrics_registry() -> CollectorRegistry:
    """Every process's files in multiprocess mode (plus the outbox gauges, once); otherwise the
    default registry, where common.apps registered the outbox gauges."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    from .outbox import OutboxCollector  # the outbox imports this module

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    registry.register(OutboxCollector())
    return registry


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """/metrics in Prometheus' text format; 403 in the one error shape for anyone else."""
    if not metrics_allowed(request):
        return JsonResponse(error_body("permission_denied", FORBIDDEN), status=403)
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


# --- HTTP requests -----------------------------------------------------------------------------


# A middleware that answers before URL resolution names the view here (the catalog cache).
VIEW_NAME_ATTRIBUTE = "metrics_view_name"


def _view_name(request: HttpRequest) -> str:
    named: str | None = getattr(request, VIEW_NAME_ATTRIBUTE, None)
    if named:
        return named
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None and match.view_name else "<unnamed view>"


class RequestMetricsMiddleware:
    """Three of django-prometheus's request series, under their usual names, in one middleware:
    `django_http_requests_total_by_method`, `django_http_responses_total_by_status_view_method`
    and the `django_http_requests_latency_seconds_by_view_method` histogram (its `_count` is the
    request rate per view). django-prometheus's own pair of middlewares updates about fifteen
    series per request, each a locked write to a shared file in multiprocess mode; these three
    answer what an operator asks (rate, errors and latency per view) at a fifth of the cost.

    It is the outermost middleware, so it also counts the 503s the database middleware answers
    and the requests the host check refuses."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        from django_prometheus.middleware import Metrics

        self.get_response = get_response
        metrics = Metrics.get_instance()
        self.by_method = metrics.requests_by_method
        self.by_status_view_method = metrics.responses_by_status_view_method
        self.latency_by_view_method = metrics.requests_latency_by_view_method

    def __call__(self, request: HttpRequest) -> Any:
        started = time.perf_counter()
        method = request.method if request.method in _METHODS else "<invalid method>"
        response = self.get_response(request)
        view = _view_name(request)
        _record(lambda: self._count(method, view, response.status_code, started))
        return response

    def _count(self, method: str, view: str, status: int, started: float) -> None:
        self.by_method.labels(method=method).inc()
        self.by_status_view_method.labels(status=str(status), view=view, method=method).inc()
        self.latency_by_view_method.labels(view=view, method=method).observe(
            time.perf_counter() - started
        )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
