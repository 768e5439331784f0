"""Security events: one structured log record and one count per event.

`security_event("login_failed", request=request, email_hash=...)` writes a JSON record on the
`shop.security` logger (fields `event`, `user_id`, `client_ip`, `request_id` and the keyword
fields given) and adds one to `shop_security_events_total{event}` in /metrics. It never raises.

- `client_ip` is the address the throttles use (`REMOTE_ADDR`, or the `X-Forwarded-For` entry
  `NUM_PROXIES` says to trust): from `request`, else from the `client_context` the accounts views
  open around each request (services log without a request at hand).
- `request_id` is the `X-Request-ID` of the request (common/logging.py stamps it on every record).
- A password, token or other secret is never logged: a field whose name says it is one is written
  as `[redacted]`. An email address typed at the login is a pseudonym (`email_hash`), since people
  type passwords into the email field too.
- `on_commit=True` is for a change made in a transaction (a suspension, a password change): the
  event is written once that transaction commits, and not at all if it rolls back. A refusal
  (a failed login) is a fact at once.

Event names come from code (the constants below; other apps add their own, e.g. the admin login),
lowercase with underscores; they are the metric's label values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils.crypto import salted_hmac
from rest_framework.throttling import BaseThrottle

from common import metrics
from common.logging import rate_limited_logger, request_id_var

logger = logging.getLogger("shop.security")
_failures = rate_limited_logger("shop.security.errors")

LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_throttled"
ACCOUNT_SUSPENDED = "account_suspended"
ACCOUNT_REACTIVATED = "account_reactivated"
ROLE_CHANGED = "role_changed"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name)
PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 (an event name)
PASSWORD_RESET_COMPLETED = "password_reset_completed"  # noqa: S105 (an event name)
REGISTRATION_EXISTING_EMAIL = "registration_existing_email"
REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 (an event name)
TWO_FACTOR_ENROLLED = "two_factor_enrolled"
TWO_FACTOR_FAILED = "two_factor_failed"
TWO_FACTOR_REMOVED = "two_factor_removed"

EVENTS = (
    LOGIN_FAILED,
    LOGIN_THROTTLED,
    ACCOUNT_SUSPENDED,
    ACCOUNT_REACTIVATED,
    ROLE_CHANGED,
    PASSWORD_CHANGED,
    PASSWORD_RESET_REQUESTED,
    PASSWORD_RESET_COMPLETED,
    REGISTRATION_EXISTING_EMAIL,
    REFRESH_TOKEN_REUSED,
    TWO_FACTOR_ENROLLED,
    TWO_FACTOR_FAILED,
    TWO_FACTOR_REMOVED,
)
# Logged at WARNING (worth a look on their own); the others at INFO.
WARNING_EVENTS = frozenset(
    {
        LOGIN_THROTTLED,
        REFRESH_TOKEN_REUSED,
        ACCOUNT_SUSPENDED,
        TWO_FACTOR_FAILED,
        TWO_FACTOR_REMOVED,
    }
)

_SECRET_NAME = re.compile(
    r"password|passwd|token|secret|refresh|access|jwt|otp|totp|authorization|cookie|card|cvc",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
# Attributes every LogRecord has: a field of one of these names would clash (makeRecord raises).
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
}

_client_ip_var: ContextVar[str | None] = ContextVar("security_client_ip", default=None)
_ident = BaseThrottle()


def client_ip(request: Any) -> str | None:
    """The client's address as the throttles see it (NUM_PROXIES decides how far to trust
    `X-Forwarded-For`). Works with Django's request and DRF's."""
    try:
        return _ident.get_ident(request) or None
    except Exception:  # noqa: BLE001 (fail open: logged, never raised)
        return None


@contextmanager
def client_context(request: HttpRequest | Any) -> Iterator[None]:
    """Within it, events logged without a `request` (by the services) carry this client's ip."""
    token = _client_ip_var.set(client_ip(request))
    try:
        yield
    finally:
        _client_ip_var.reset(token)


def email_hash(email: str) -> str:
    """A keyed pseudonym of an address (case and surrounding blanks ignored): equal addresses
    give equal hashes, and nobody without SECRET_KEY can tell which address it is."""
    digest = salted_hmac("accounts.security.email", email.strip().lower()).hexdigest()
    return digest[:16]


def security_event(
    event: str,
    *,
    request: Any = None,
    user: Any = None,
    on_commit: bool = False,
    **fields: Any,
) -> None:
    """Log `event` on `shop.security` and count it in `shop_security_events_total{event}`.

    `user` is the account concerned (its id is logged), `request` gives the client's address,
    `fields` any further detail (ids, roles, counts; never a secret). Never raises."""
    try:
        record = _record_fields(event, request=request, user=user, fields=fields)
        request_id = request_id_var.get() or _request_id_of(request)
    except Exception:  # noqa: BLE001 (fail open: logged, never raised)
        _failures.warning("security event not recorded", exc_info=True)
        return

    def emit() -> None:
        _emit(event, record, request_id)

    if on_commit:
        try:
            transaction.on_commit(emit, robust=True)
        except Exception:  # noqa: BLE001 (fail open: logged, never raised)
            _failures.warning("security event not recorded", exc_info=True)
    else:
        emit()


def _record_fields(
    event: str, *, request: Any, user: Any, fields: dict[str, Any]
) -> dict[str, Any]:
    user_id = getattr(user, "pk", None)
    if user_id is None and request is not None:
        request_user = getattr(request, "user", None)
        if request_user is not None and getattr(request_user, "is_authenticated", False):
            user_id = request_user.pk
    address = client_ip(request) if request is not None else _client_ip_var.get()
    record: dict[str, Any] = {"event": event, "user_id": user_id, "client_ip": address}
    for name, value in fields.items():
        key = f"{name}_" if name in _RECORD_ATTRIBUTES or name in record else name
        record[key] = REDACTED if _SECRET_NAME.search(name) else value
    return record


def _request_id_of(request: Any) -> str | None:
    value = getattr(request, "request_id", None) if request is not None else None
    if value is None and request is not None:  # DRF's Request wraps Django's
        value = getattr(getattr(request, "_request", None), "request_id", None)
    return value if isinstance(value, str) else None


def _emit(event: str, record: dict[str, Any], request_id: str | None) -> None:
    token = request_id_var.set(request_id) if request_id is not None else None
    try:
        level = logging.WARNING if event in WARNING_EVENTS else logging.INFO
        logger.log(level, event, extra=record)
    except Exception:  # noqa: BLE001 (fail open: logged, never raised)
        _failures.warning("security event not logged", exc_info=True)
    finally:
        if token is not None:
            request_id_var.reset(token)
    metrics.security_event_recorded(event=event)


def _zero_known_events() -> None:
    """Every known event is in /metrics from the start (at 0), so a rate() has a series."""
    for event in EVENTS:
        try:
            metrics.SECURITY_EVENTS.labels(event=event)
        except Exception:  # noqa: BLE001 (a metrics directory that cannot be written: counted later, or never)
            _failures.warning("metric update failed", exc_info=True)


_zero_known_events()
