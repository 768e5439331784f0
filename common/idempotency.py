"""`Idempotency-Key` for command endpoints (checkout, pay, refund): a client may retry safely.

Semantics (API.md, Conventions): keys are per user and kept `IDEMPOTENCY_KEY_TTL` (24 h).

- The same key with the same request (method, path and JSON body) replays the stored response
  with the header `Idempotent-Replayed: true`; the view does not run again.
- The same key with a different request → 422 `idempotency_key_reused`.
- While the first request is still running → 409 `idempotency_key_in_use`.
- A key longer than 255 characters (or empty) → 400 `idempotency_key_invalid`.

How it holds under concurrency: the key is *claimed* before the view runs, by inserting its row
in a short transaction of its own; the unique constraint on (user, key) lets exactly one request
win, whatever the timing. The winner runs the view and stores a successful (2xx) response on the
row (checkout: in the same transaction as the order, `idempotent_atomic`, so a committed order
always has its stored response and a retry replays it). Any other outcome (a 4xx, a 5xx, an
exception) deletes the claim: our services are atomic, so nothing was done and a retry with the
same key is safe and useful (the cart was fixed, the stock came back). A claim left behind by
a process that died mid-request can be taken over after
`ABANDONED_AFTER`; the domain state still protects (a re-run checkout finds the cart empty, a
re-run pay finds the order no longer pending).

Use it on a DRF view method (after authentication and permissions, so 401/403 never claim)::

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: ..., **domain_error_responses(*IDEMPOTENCY_ERRORS)},
    )
    @idempotent
    def create(self, request: Request) -> Response: ...

The request must not run inside `ATOMIC_REQUESTS` or an outer transaction: the claim has to be
visible to concurrent requests at once (the settings keep `ATOMIC_REQUESTS` off).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import ConflictError, DomainError
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Far longer than any request may run (gunicorn's timeout): an older claim with no response
# belongs to a process that died.
ABANDONED_AFTER = timedelta(minutes=5)
_CLAIM_ATTEMPTS = 3

P = ParamSpec("P")
V = TypeVar("V")

# The atomic block `idempotent_call(atomic=True)` opened around the view, while the view runs.
_VIEW_TRANSACTION: ContextVar[Any] = ContextVar("idempotent_view_transaction", default=None)


class IdempotencyKeyInvalid(DomainError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    code = "idempotency_key_invalid"
    status_code = status.HTTP_400_BAD_REQUEST
    message = f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} characters."


class IdempotencyKeyInUse(ConflictError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    code = "idempotency_key_in_use"
    message = f"A request with this {HEADER} is still being processed; retry in a moment."


class IdempotencyKeyReused(DomainError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    code = "idempotency_key_reused"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    message = f"This {HEADER} was already used for a different request."


IDEMPOTENCY_ERRORS: tuple[type[DomainError], ...] = (
    IdempotencyKeyInvalid,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
)

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 characters, unique per request you mean (a UUID). Retrying with the same key "
        "and body within 24 h replays the first successful response with "
        f"`{REPLAYED_HEADER}: true` instead of doing the work twice."
    ),
)


def request_fingerprint(*, method: str, path: str, data: object) -> str:
    """What makes two requests "the same": method, path and the parsed JSON body."""
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{method} {path}\n{body}".encode()).hexdigest()


def _replay(record: IdempotencyKey) -> Response:
    assert record.response_status is not None
    return Response(
        data=record.response_body,
        status=record.response_status,
        headers={REPLAYED_HEADER: "true"},
    )


def _claim(*, user_id: int, key: str, fingerprint: str) -> IdempotencyKey | Response:
    """Claim the key for this request, or answer from (or refuse because of) an earlier one."""
    for _ in range(_CLAIM_ATTEMPTS):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    user_id=user_id,
                    key=key,
                    request_fingerprint=fingerprint,
                    created_at=now,
                    locked_at=now,
                )
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(user_id=user_id, key=key).first()
        if existing is None:  # released or purged in between: claim again
            continue
        if existing.created_at <= now - settings.IDEMPOTENCY_KEY_TTL:
            # Expired but not purged yet: it no longer counts.
            IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            continue
        if existing.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused
        if existing.response_status is not None:
            return _replay(existing)
        if existing.locked_at > now - ABANDONED_AFTER:
            raise IdempotencyKeyInUse
        taken = IdempotencyKey.objects.filter(
            pk=existing.pk, response_status__isnull=True, locked_at=existing.locked_at
        ).update(locked_at=now)
        if not taken:
            raise IdempotencyKeyInUse
        existing.locked_at = now
        return existing
    raise IdempotencyKeyInUse


def _mine(record: IdempotencyKey) -> QuerySet[IdempotencyKey]:
    # `locked_at` guards against touching a claim another process has since taken over.
    return IdempotencyKey.objects.filter(pk=record.pk, locked_at=record.locked_at)


def _store(record: IdempotencyKey, response: Response) -> None:
    _mine(record).update(response_status=response.status_code, response_body=response.data)


def _release(record: IdempotencyKey) -> None:
    """Forget the claim, so a retry runs again. If the failure was the database connection
    itself (a restart, a terminated backend), try once more on a fresh connection: a claim left
    behind would answer the client's retry with 409 for `ABANDONED_AFTER`."""
    try:
        _mine(record).delete()
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        connection.close()
        _mine(record).delete()


def idempotent_call(
    request: Request, run: Callable[[], Response], *, atomic: bool = False
) -> Response:
    """Run `run()` at most once per (user, Idempotency-Key) and request; see the module doc.

    `atomic=True` runs the view and stores its successful response in one transaction: once
    the work is committed, so is its replay, and nothing after the commit can make the retry
    run it again (checkout). Views that call a network in the middle (pay, refund) cannot."""
    key = request.headers.get(HEADER)
    user = request.user
    if key is None or not user.is_authenticated:
        return run()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid
    claimed = _claim(
        user_id=user.pk,
        key=key,
        fingerprint=request_fingerprint(
            method=request.method or "", path=request.path, data=request.data
        ),
    )
    if isinstance(claimed, Response):
        return claimed
    try:
        if atomic:
            with transaction.atomic():
                token = _VIEW_TRANSACTION.set(connection.atomic_blocks[-1])
                try:
                    response = run()
                finally:
                    _VIEW_TRANSACTION.reset(token)
                if status.is_success(response.status_code):
                    _store(claimed, response)
        else:
            response = run()
            if status.is_success(response.status_code):
                _store(claimed, response)
    except BaseException:
        _release(claimed)
        raise
    if not status.is_success(response.status_code):
        _release(claimed)
    return response


def savepoint_needed() -> bool:
    """Whether a service's `transaction.atomic()` needs its own savepoint here (its `savepoint=`).

    False directly inside the transaction `idempotent_atomic` opened for the view (no other
    atomic block in between): an error in the service leaves the view, and that block rolls
    back the whole of it (the key's claim is released afterwards), so a savepoint would only
    cost two statements. True anywhere else, where a caller may catch the error and go on."""
    block = _VIEW_TRANSACTION.get()
    blocks = connection.atomic_blocks
    return block is None or not blocks or blocks[-1] is not block


def idempotent(
    view_method: Callable[Concatenate[V, Request, P], Response],
) -> Callable[Concatenate[V, Request, P], Response]:
    """Decorate a DRF view method (`post`, `create`, an `@action`) to honour `Idempotency-Key`."""

    @functools.wraps(view_method)
    def wrapper(self: V, request: Request, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        return idempotent_call(request, lambda: view_method(self, request, *args, **kwargs))

    return wrapper


def idempotent_atomic(
    view_method: Callable[Concatenate[V, Request, P], Response],
) -> Callable[Concatenate[V, Request, P], Response]:
    """`idempotent`, with the view's work and its stored response in one transaction (for a
    view whose service is one transaction, such as checkout)."""

    @functools.wraps(view_method)
    def wrapper(self: V, request: Request, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        return idempotent_call(
            request, lambda: view_method(self, request, *args, **kwargs), atomic=True
        )

    return wrapper


def idempotency_keys_purge_expired(*, now: datetime | None = None) -> int:
    """Delete keys older than the TTL; returns how many went."""
    cutoff = (now or timezone.now()) - settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created_at__lte=cutoff).delete()
    return deleted


@shared_task(name="common.idempotency.purge_expired_idempotency_keys")
def purge_expired_idempotency_keys() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE): expired keys are dead weight."""
    return idempotency_keys_purge_expired()
