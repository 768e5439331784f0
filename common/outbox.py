"""The transactional outbox: work queued after a commit is never lost (README, "Failure behaviour").

`enqueue_after_commit(task, **kwargs)` writes an `OutboxMessage` row in the caller's transaction.
The work therefore exists exactly when the change that asked for it commits, and not otherwise.
After the commit the row is handed to the broker at once (the fast path). Whatever could not be
handed over (Redis down, a crash right after the commit) is handed over by `relay_outbox`, which
beat runs every `OUTBOX_RELAY_INTERVAL_SECONDS` on the `critical` queue, once the broker answers
again.

The fast path costs no transaction of its own: the row is written already marked as handed over
(`relayed_at`, the same mark `relay_outbox`'s claim sets), so no relay takes it while this process
publishes it right after the commit. A publish that fails un-marks the row (one small UPDATE), and
the relay sends it at its next run; a process that dies between the commit and the publish
leaves a marked row, which the relay sends again after `OUTBOX_REDELIVER_AFTER_SECONDS`, like
any message a broker lost. While this process is in broker backoff (below) rows are written
unmarked and left to the relay.

Each message travels with the task id `outbox:<row id>`, and `OutboxTask` (every task's base
class, config/celery.py) ties the run to the row:

- before running it takes a lease on the row; a message that is done, or that another worker is
  running right now, is skipped, so a message relayed twice runs once;
- success marks the row done;
- an exception is recorded on the row and the message is relayed again after a backoff
  (`OUTBOX_RETRY_BASE_SECONDS` doubling up to `OUTBOX_RETRY_MAX_SECONDS`), up to the task's
  `outbox_max_attempts` (None: until it succeeds). The retry state lives in PostgreSQL, not in
  an ETA message in Redis, so a Redis restart loses no retry either;
- a message handed to the broker but never run (Redis lost it) is relayed again after
  `OUTBOX_REDELIVER_AFTER_SECONDS`.

Nothing here can turn a committed request into an error: the fast path runs as a robust
`on_commit` callback and swallows (and logs) every failure; the row is still there.

Tasks run this way must be idempotent (a worker may die after the work and before the row is
marked done). The outbox knows task names, never domain rules.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from celery import Task, current_app, shared_task
from celery.exceptions import Retry
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from . import metrics
from .logging import rate_limited_logger
from .models import OutboxMessage

logger = logging.getLogger(__name__)
outage_logger = rate_limited_logger("shop.outbox.relay")

TASK_ID_PREFIX = "outbox:"
BROKER_BACKOFF_SECONDS = 5.0
_broker_backoff = {"until": 0.0}
TABLE = OutboxMessage._meta.db_table
DEFAULT_MAX_ATTEMPTS = 10


_INSERT = (
    f'INSERT INTO "{TABLE}" ("id", "task", "kwargs", "created_at", "available_at", "relayed_at", '  # noqa: S608
    '"attempts", "last_error") VALUES (%s, %s, %s::jsonb, %s, %s, %s, 0, \'\')'
)
_UNMARK = (
    f'UPDATE "{TABLE}" SET "relayed_at" = NULL '  # noqa: S608
    'WHERE "id" = %s AND "relayed_at" = %s AND "done_at" IS NULL'
)


def enqueue_after_commit(task: Task[Any, Any] | str, /, **kwargs: Any) -> OutboxMessage:
    """Run `task(**kwargs)` on a worker once the current transaction commits (at once outside
    one). `kwargs` must be JSON-serialisable: ids, names and amounts, never model instances and
    never secrets (they are stored in the table and travel through the broker).

    One INSERT in the caller's transaction; after the commit, the publish (see the module doc:
    no second transaction unless the publish fails)."""
    name = task if isinstance(task, str) else task.name
    text = json.dumps(kwargs, cls=DjangoJSONEncoder)
    now = timezone.now()
    handing_over = time.monotonic() >= _broker_backoff["until"]
    message = OutboxMessage(
        id=uuid4(),
        task=name,
        kwargs=json.loads(text),  # what the relay would read back: the same message either way
        created_at=now,
        available_at=now,
        relayed_at=now if handing_over else None,
    )
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [message.pk, name, text, now, now, message.relayed_at])
    message._state.adding = False
    message._state.db = connection.alias
    if handing_over:
        message_id, sent_kwargs = message.pk, message.kwargs
        transaction.on_commit(
            lambda: _hand_over(
                message_id=message_id, task_name=name, kwargs=sent_kwargs, marked_at=now
            ),
            robust=True,
        )
    return message


def _hand_over(
    *, message_id: UUID, task_name: str, kwargs: dict[str, Any], marked_at: datetime
) -> None:
    """After the commit: publish a row written as handed over, or give it back to the relay."""
    if time.monotonic() >= _broker_backoff["until"]:
        try:
            _publish(task_name=task_name, kwargs=kwargs, message_id=message_id)
            return
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            _broker_backoff["until"] = time.monotonic() + BROKER_BACKOFF_SECONDS
            outage_logger.warning(
                "broker unreachable; messages wait in the outbox",
                extra={"waiting": 1, "error": repr(error)},
            )
    # Not sent (a refused publish, or another message's failure just put this process in
    # backoff): un-mark the row, so the relay's next run sends it.
    try:
        with connection.cursor() as cursor:
            cursor.execute(_UNMARK, [message_id, marked_at])
    except Exception as error:  # noqa: BLE001 (the database is gone too: redelivered after the delay)
        outage_logger.warning(
            "could not give a message back to the relay; it is redelivered later",
            extra={"message_id": str(message_id), "error": repr(error)},
        )


# --- relaying: rows to the broker --------------------------------------------------------------


def relay_messages(*, ids: Sequence[UUID] | None = None, limit: int = 500) -> int:
    """Hand due messages to the broker (only `ids`, if given). Returns how many were handed over.

    Rows are claimed first (`relayed_at` set under `FOR UPDATE SKIP LOCKED`, so two relays never
    send the same row), then published outside any transaction. A publish that fails un-claims
    the rest; a crash between claim and publish is covered by the redelivery delay.

    After a failed publish this process leaves the fast path (`ids`) alone for
    `BROKER_BACKOFF_SECONDS`: during a Redis outage a request does not wait on a broker that just
    refused, and its message waits for the relay. That is a latency shortcut only; whether a
    message is sent is decided by its row, which every process sees."""
    if ids is not None and time.monotonic() < _broker_backoff["until"]:
        return 0
    now = timezone.now()
    claimed = _claim(ids=ids, limit=limit, now=now)
    sent = 0
    for position, (message_id, task_name, kwargs) in enumerate(claimed):
        try:
            _publish(task_name=task_name, kwargs=kwargs, message_id=message_id)
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            _broker_backoff["until"] = time.monotonic() + BROKER_BACKOFF_SECONDS
            unsent = [row[0] for row in claimed[position:]]
            OutboxMessage.objects.filter(pk__in=unsent, relayed_at=now).update(relayed_at=None)
            outage_logger.warning(
                "broker unreachable; messages wait in the outbox",
                extra={"waiting": len(unsent), "error": repr(error)},
            )
            break
        sent += 1
    return sent


def _claim(
    *, ids: Sequence[UUID] | None, limit: int, now: datetime
) -> list[tuple[UUID, str, dict[str, Any]]]:
    redeliver_before = now - timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS)
    only = "AND id = ANY(%(ids)s)" if ids is not None else ""
    sql = f"""
        UPDATE {TABLE} SET relayed_at = %(now)s
        WHERE id IN (
            SELECT id FROM {TABLE}
            WHERE done_at IS NULL AND failed_at IS NULL AND available_at <= %(now)s
              AND (relayed_at IS NULL OR relayed_at < %(redeliver_before)s)
              AND (lease_until IS NULL OR lease_until < %(now)s)
              {only}
            ORDER BY available_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id, task, kwargs, available_at
    """  # noqa: S608 (the table name is ours; values are parameters)
    params: dict[str, Any] = {
        "now": now,
        "redeliver_before": redeliver_before,
        "ids": list(ids or []),
        "limit": limit,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort(key=lambda row: row[3])
    return [(row[0], row[1], _json(row[2])) for row in rows]


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(loaded)


def _task(name: str) -> Task[Any, Any] | None:
    """The registered task, importing its module (named like the task) if need be."""
    task = current_app.tasks.get(name)
    if task is None and "." in name:
        with contextlib.suppress(ImportError):
            importlib.import_module(name.rsplit(".", 1)[0])
        task = current_app.tasks.get(name)
    return task


def _publish(*, task_name: str, kwargs: dict[str, Any], message_id: UUID) -> None:
    # `argsrepr`/`kwargsrepr` given: Celery would otherwise `saferepr` the arguments for its
    # logs (about a third of a publish's CPU), and the logs get the names, never the values.
    options: dict[str, Any] = {
        "task_id": f"{TASK_ID_PREFIX}{message_id}",
        "retry": False,
        "argsrepr": "()",
        "kwargsrepr": "{" + ", ".join(kwargs) + "}",
    }
    task = _task(task_name)
    if task is not None:
        task.apply_async(kwargs=kwargs, **options)  # eager mode runs it here
    else:
        current_app.send_task(task_name, kwargs=kwargs, **options)


@shared_task(name="common.outbox.relay_outbox")
def relay_outbox() -> int:
    """Beat, every `OUTBOX_RELAY_INTERVAL_SECONDS`: relay what is due (critical queue)."""
    relayed = 0
    while True:
        batch = relay_messages(limit=500)
        relayed += batch
        if batch < 500:
            return relayed


def outbox_purge_done(*, now: datetime | None = None) -> int:
    """Forget messages done more than `OUTBOX_KEEP_DONE_DAYS` ago; failed ones stay for a person."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.OUTBOX_KEEP_DONE_DAYS)
    deleted, _ = OutboxMessage.objects.filter(done_at__lt=cutoff).delete()
    return deleted


@shared_task(name="common.outbox.purge_done_outbox_messages")
def purge_done_outbox_messages() -> int:
    """Daily (beat, bulk queue)."""
    return outbox_purge_done()


def outbox_backlog() -> dict[str, int]:
    """How many messages wait (not done, not given up) and how many were given up."""
    from django.db.models import Count, Q

    counts = OutboxMessage.objects.filter(done_at__isnull=True).aggregate(
        waiting=Count("pk", filter=Q(failed_at__isnull=True)),
        failed=Count("pk", filter=Q(failed_at__isnull=False)),
    )
    return {"waiting": int(counts["waiting"]), "failed": int(counts["failed"])}


# --- running: the worker's side ----------------------------------------------------------------


def _message_id(task_id: str | None) -> str | None:
    if task_id and task_id.startswith(TASK_ID_PREFIX):
        return task_id[len(TASK_ID_PREFIX) :]
    return None


def _execute(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _take_lease(message_id: str, *, lease_seconds: int) -> int | None:
    """Mark the message as running here; its attempt number, or None if it must not run."""
    now = timezone.now()
    rows = _execute(
        f"""
        UPDATE {TABLE} SET lease_until = %(until)s, attempts = attempts + 1
        WHERE id = %(id)s AND done_at IS NULL AND failed_at IS NULL
          AND (lease_until IS NULL OR lease_until < %(now)s)
        RETURNING attempts
        """,  # noqa: S608
        {"id": message_id, "now": now, "until": now + timedelta(seconds=lease_seconds)},
    )
    return int(rows[0][0]) if rows else None


def _mark_done(message_id: str) -> None:
    _execute(
        f"UPDATE {TABLE} SET done_at = %(now)s, lease_until = NULL WHERE id = %(id)s",  # noqa: S608
        {"id": message_id, "now": timezone.now()},
    )


def _release(message_id: str) -> None:
    _execute(
        f"UPDATE {TABLE} SET lease_until = NULL, attempts = attempts - 1 WHERE id = %(id)s",  # noqa: S608
        {"id": message_id},
    )


def retry_delay(attempt: int) -> timedelta:
    """Backoff after the `attempt`-th failure: base * 2^(attempt-1), capped."""
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    return timedelta(seconds=min(settings.OUTBOX_RETRY_MAX_SECONDS, base * 2 ** (attempt - 1)))


def _record_failure(
    message_id: str, *, task_name: str, attempt: int, max_attempts: int | None, error: BaseException
) -> None:
    metrics.task_failed(task=task_name)
    now = timezone.now()
    text = f"{type(error).__name__}: {error}"[:2000]
    extra = {"task": task_name, "message_id": message_id, "attempt": attempt}
    if max_attempts is not None and attempt >= max_attempts:
        _execute(
            f"""UPDATE {TABLE} SET failed_at = %(now)s, lease_until = NULL, last_error = %(error)s
                WHERE id = %(id)s""",  # noqa: S608
            {"id": message_id, "now": now, "error": text},
        )
        logger.error("outbox task failed for the last time; left for a person", extra=extra)
        return
    _execute(
        f"""UPDATE {TABLE} SET available_at = %(at)s, relayed_at = NULL, lease_until = NULL,
                last_error = %(error)s
            WHERE id = %(id)s""",  # noqa: S608
        {"id": message_id, "at": now + retry_delay(attempt), "error": text},
    )
    logger.warning("outbox task failed; it will be retried", exc_info=error, extra=extra)


class OutboxTask(Task[Any, Any]):
    """The base class of every task (config/celery.py): ties a run to its outbox row, if any.

    A task started by beat or `.delay()` has no row and runs as plain Celery. Subclasses (or
    `@shared_task(base=…)`) set how often the outbox tries before giving up."""

    outbox_max_attempts: int | None = DEFAULT_MAX_ATTEMPTS
    outbox_lease_seconds: int = 600

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        message_id = _message_id(self.request.id)
        if message_id is None:
            return super().__call__(*args, **kwargs)
        attempt = _take_lease(message_id, lease_seconds=self.outbox_lease_seconds)
        if attempt is None:
            logger.info(
                "outbox message already done or running elsewhere; skipped",
                extra={"task": self.name, "message_id": message_id},
            )
            return None
        try:
            result = super().__call__(*args, **kwargs)
        except Retry:
            _release(message_id)  # Celery's own retry brings it back under the same id
            raise
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            _record_failure(
                message_id,
                task_name=self.name,
                attempt=attempt,
                max_attempts=self.outbox_max_attempts,
                error=error,
            )
            return None  # acknowledged: the outbox, not the broker, owns the retry
        _mark_done(message_id)
        return result


class OutboxCollector:
    """Prometheus gauges read at scrape time: `shop_outbox_waiting` (queued work not yet done:
    grows while the broker or the workers are down) and `shop_outbox_failed` (given up: alert on
    any). One indexed count per scrape."""

    HELP = {"waiting": "Outbox messages not done yet", "failed": "Outbox messages given up"}

    def describe(self) -> Iterable[Any]:
        """Names only: registering must not query the database (apps are still loading)."""
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily(f"shop_outbox_{key}", text) for key, text in self.HELP.items()]

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            backlog = outbox_backlog()
        except Exception:  # noqa: BLE001 (the database is down: /readyz says so; no gauge rather than a 500)
            return []
        return [
            GaugeMetricFamily(f"shop_outbox_{key}", text, value=backlog[key])
            for key, text in self.HELP.items()
        ]
