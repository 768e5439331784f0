"""The transactional outbox (common/outbox.py): work queued after a commit exists exactly when
the commit does, runs once, and is retried from PostgreSQL until it is done."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from celery import shared_task
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from model_bakery import baker

from common import outbox
from common.models import OutboxMessage
from common.outbox import enqueue_after_commit, outbox_backlog, relay_messages, retry_delay

pytestmark = pytest.mark.django_db

RUNS: list[int] = []
FAILURES_LEFT = {"count": 0}


@shared_task(name="common.tests.test_outbox.record")
def record(*, value: int) -> int:
    if FAILURES_LEFT["count"] > 0:
        FAILURES_LEFT["count"] -= 1
        raise ConnectionError("downstream went away")
    RUNS.append(value)
    return value


@pytest.fixture(autouse=True)
def _reset():
    RUNS.clear()
    FAILURES_LEFT["count"] = 0
    yield
    RUNS.clear()


def test_a_rolled_back_transaction_queues_nothing(django_capture_on_commit_callbacks):
    def rolled_back() -> None:
        with transaction.atomic():
            enqueue_after_commit(record, value=1)
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        rolled_back()
    assert OutboxMessage.objects.count() == 0
    assert RUNS == []


def test_committed_work_runs_once_after_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        message = enqueue_after_commit(record, value=7)
        assert RUNS == []  # nothing before the commit
    assert RUNS == [7]
    message.refresh_from_db()
    assert message.done_at is not None
    assert (message.attempts, message.last_error) == (1, "")
    # The relay finds nothing left to do, and a duplicate delivery is skipped.
    assert relay_messages() == 0
    record.apply_async(kwargs={"value": 7}, task_id=f"outbox:{message.pk}")
    assert RUNS == [7]


def test_a_task_that_fails_is_retried_with_backoff_then_succeeds(
    django_capture_on_commit_callbacks, run_outbox, allow_outbox_failures
):
    FAILURES_LEFT["count"] = 2
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue_after_commit(record, value=3)
    message.refresh_from_db()
    assert (message.attempts, message.done_at, message.relayed_at) == (1, None, None)
    assert message.last_error == "ConnectionError: downstream went away"
    assert message.available_at >= message.created_at + retry_delay(1)
    # Not due yet: the relay leaves it alone.
    assert relay_messages() == 0
    assert run_outbox() == 1  # second attempt fails too
    message.refresh_from_db()
    assert message.attempts == 2
    assert run_outbox() == 1
    message.refresh_from_db()
    assert message.done_at is not None
    assert RUNS == [3]
    assert outbox_backlog() == {"waiting": 0, "failed": 0}


def test_the_backoff_doubles_up_to_its_cap(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 10
    settings.OUTBOX_RETRY_MAX_SECONDS = 600
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 6, 7, 20)] == [
        10,
        20,
        40,
        320,
        600,
        600,
    ]


def test_a_task_that_keeps_failing_is_given_up_and_logged(
    django_capture_on_commit_callbacks, run_outbox, caplog, allow_outbox_failures
):
    FAILURES_LEFT["count"] = 100
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue_after_commit(record, value=1)
    for _ in range(outbox.DEFAULT_MAX_ATTEMPTS - 1):
        run_outbox()
    message.refresh_from_db()
    assert message.attempts == outbox.DEFAULT_MAX_ATTEMPTS
    assert message.failed_at is not None
    assert message.last_error == "ConnectionError: downstream went away"
    assert any("left for a person" in r.getMessage() for r in caplog.records)
    assert run_outbox() == 0  # given up: never relayed again
    assert outbox_backlog() == {"waiting": 0, "failed": 1}


def test_publishing_errors_never_reach_the_committer_and_the_relay_sends_later(
    django_capture_on_commit_callbacks, monkeypatch, caplog
):
    """The broker is down right after the commit: the commit stands, the message waits."""
    calls = {"n": 0}
    real_publish = outbox._publish

    def broker_down(**kwargs):
        calls["n"] += 1
        raise ConnectionRefusedError("Error 111 connecting to redis")

    monkeypatch.setattr(outbox, "_publish", broker_down)
    with (
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        enqueue_after_commit(record, value=1)
        enqueue_after_commit(record, value=2)
    assert calls["n"] == 1  # the second did not wait on a broker that had just refused
    assert RUNS == []
    assert OutboxMessage.objects.filter(relayed_at__isnull=True, done_at__isnull=True).count() == 2
    # Logged, at most once a minute, not once per message.
    outage_lines = [r for r in caplog.records if "messages wait in the outbox" in r.getMessage()]
    assert len(outage_lines) <= 1
    monkeypatch.setattr(outbox, "_publish", real_publish)
    assert outbox.relay_outbox() == 2  # the broker is back
    assert sorted(RUNS) == [1, 2]
    assert outbox.relay_outbox() == 0  # once


def test_a_message_handed_over_but_never_run_is_handed_over_again(settings, monkeypatch):
    """Redis restarted and lost what was queued: after the redelivery delay it is sent again."""
    message = OutboxMessage.objects.create(task=record.name, kwargs={"value": 5})
    lost = []
    monkeypatch.setattr(outbox, "_publish", lambda **kwargs: lost.append(kwargs))
    assert relay_messages() == 1  # handed to a broker that then loses it
    monkeypatch.undo()
    assert relay_messages() == 0  # not yet: it may still be waiting in the queue
    OutboxMessage.objects.filter(pk=message.pk).update(
        relayed_at=timezone.now() - timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS + 1)
    )
    assert relay_messages() == 1
    assert RUNS == [5]


def test_a_message_running_elsewhere_is_not_run_twice():
    message = OutboxMessage.objects.create(
        task=record.name,
        kwargs={"value": 9},
        lease_until=timezone.now() + timedelta(minutes=5),
        relayed_at=timezone.now(),
    )
    record.apply_async(kwargs={"value": 9}, task_id=f"outbox:{message.pk}")  # a duplicate
    assert RUNS == []
    message.refresh_from_db()
    assert message.done_at is None


def test_two_relays_never_hand_over_the_same_message():
    OutboxMessage.objects.bulk_create(
        OutboxMessage(task=record.name, kwargs={"value": n}) for n in range(5)
    )
    first = relay_messages(limit=3)
    second = relay_messages(limit=10)
    assert (first, second) == (3, 2)
    assert sorted(RUNS) == [0, 1, 2, 3, 4]


def test_done_messages_are_purged_after_a_week():
    old = baker.make(OutboxMessage, done_at=timezone.now() - timedelta(days=8))
    recent = baker.make(OutboxMessage, done_at=timezone.now())
    failed = baker.make(OutboxMessage, failed_at=timezone.now() - timedelta(days=30))
    assert outbox.purge_done_outbox_messages() == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, failed.pk}
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()
    failed.delete()  # a given-up message is left for a person, not for the suite's check


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
def test_queues_are_routed_by_urgency():
    from celery import current_app as app  # the project's (config/celery.py), above common

    routes = {
        "payments.tasks.deliver_payment_event": "critical",
        "payments.tasks.reconcile_pending_payments": "critical",
        "orders.tasks.expire_unpaid_orders": "critical",
        "orders.tasks.reconcile_order_payments": "critical",
        "common.outbox.relay_outbox": "critical",
        "common.tasks.send_email_task": "default",
        "accounts.tasks.send_verification_email": "default",
        "inventory.tasks.send_low_stock_alert": "default",
        "common.idempotency.purge_expired_idempotency_keys": "bulk",
        "common.outbox.purge_done_outbox_messages": "bulk",
        "accounts.tasks.flush_expired_tokens": "bulk",
    }
    router = app.amqp.router
    for task, queue in routes.items():
        route = router.route({}, task)
        assert route["queue"].name == queue, task


def test_the_backlog_is_exported_for_alerts(api_client):
    baker.make(OutboxMessage)
    baker.make(OutboxMessage, failed_at=timezone.now(), last_error="SMTP down")
    baker.make(OutboxMessage, done_at=timezone.now())
    body = api_client.get("/metrics").content.decode()
    assert "shop_outbox_waiting 1.0" in body
    assert "shop_outbox_failed 1.0" in body
    OutboxMessage.objects.all().delete()


def test_admins_see_what_failed_and_can_hand_it_back(client, admin_user, staff):
    from django.urls import reverse

    failed = OutboxMessage.objects.create(
        task=record.name,
        kwargs={"value": 4},
        attempts=10,
        failed_at=timezone.now(),
        last_error="ConnectionError: downstream went away",
    )
    baker.make(OutboxMessage, done_at=timezone.now())
    url = reverse("admin:common_outboxmessage_changelist")
    client.force_login(staff)
    assert client.get(url).status_code == 403  # staff run the shop, not its plumbing
    client.force_login(admin_user)
    page = client.get(url, {"state": "failed"})
    assert page.status_code == 200
    assert "downstream went away" in page.content.decode()
    assert list(page.context["cl"].queryset) == [failed]

    response = client.post(url, {"action": "try_again", "_selected_action": [failed.pk]})
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.failed_at, failed.relayed_at) == (None, None)
    assert relay_messages() == 1  # the relay takes it again, and this time it works
    assert RUNS == [4]


# --- the fast path: written as handed over, published after the commit -----------------------


def _statements(captured) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_costs_one_insert_and_no_second_transaction(monkeypatch):
    """The row is written already marked as handed over; after the commit it is published with
    no claim (no BEGIN/UPDATE/COMMIT of its own), and no relay sends it a second time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    published = []
    monkeypatch.setattr(outbox, "_publish", lambda **kwargs: published.append(kwargs))
    with CaptureQueriesContext(connection) as captured:
        with transaction.atomic():
            message = enqueue_after_commit(record, value=1)
        assert len(published) == 1  # right after the commit
    statements = _statements(captured)
    assert statements[0] == "BEGIN"
    assert statements[1].startswith('INSERT INTO "common_outboxmessage"')
    assert statements[2:] == ["COMMIT"]
    assert published == [
        {"task_name": record.name, "kwargs": {"value": 1}, "message_id": message.pk}
    ]
    message.refresh_from_db()
    assert message.relayed_at is not None
    assert message.done_at is None
    assert relay_messages() == 0  # handed over already: not sent twice
    monkeypatch.undo()
    record.apply_async(kwargs={"value": 1}, task_id=f"outbox:{message.pk}")  # the worker
    assert OutboxMessage.objects.get(pk=message.pk).done_at is not None
    assert RUNS == [1]


@pytest.mark.django_db(transaction=True)
def test_a_publish_that_fails_after_the_commit_leaves_the_row_to_the_relays_next_run(monkeypatch):
    def broker_down(**kwargs):
        raise ConnectionRefusedError("Error 111 connecting to redis")

    monkeypatch.setattr(outbox, "_publish", broker_down)
    with transaction.atomic():
        message = enqueue_after_commit(record, value=2)
    message.refresh_from_db()
    assert (message.relayed_at, message.done_at) == (None, None)  # un-marked: due at once
    # While this process backs off, new rows are written unmarked and left to the relay.
    with transaction.atomic():
        waiting = enqueue_after_commit(record, value=3)
    waiting.refresh_from_db()
    assert waiting.relayed_at is None
    monkeypatch.undo()  # the broker is back
    assert outbox.relay_outbox() == 2  # its next run, not after the redelivery delay
    assert sorted(RUNS) == [2, 3]
    assert outbox.relay_outbox() == 0


@pytest.mark.django_db(transaction=True)
def test_a_process_that_dies_between_the_commit_and_the_publish_loses_nothing(
    settings, monkeypatch
):
    """The row committed marked as handed over, and the publish never happened (the process
    died): the relay sends it once the redelivery delay has passed, and only then."""
    monkeypatch.setattr(outbox, "_hand_over", lambda **kwargs: None)  # died before publishing
    with transaction.atomic():
        message = enqueue_after_commit(record, value=4)
    monkeypatch.undo()
    message.refresh_from_db()
    assert message.relayed_at is not None
    assert relay_messages() == 0  # it may still be on its way
    OutboxMessage.objects.filter(pk=message.pk).update(
        relayed_at=timezone.now() - timedelta(seconds=settings.OUTBOX_REDELIVER_AFTER_SECONDS + 1)
    )
    assert relay_messages() == 1
    assert RUNS == [4]
    message.refresh_from_db()
    assert message.done_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_publish_duplicated_by_the_relay_runs_once(monkeypatch):
    """A fast-path publish and a redelivery both reach the worker: the lease and the done mark
    run the task once."""
    with transaction.atomic():
        message = enqueue_after_commit(record, value=5)  # published and run (eager)
    assert RUNS == [5]
    record.apply_async(kwargs={"value": 5}, task_id=f"outbox:{message.pk}")  # redelivered
    assert RUNS == [5]


def test_the_message_is_published_with_what_the_relay_would_read_back(
    django_capture_on_commit_callbacks, monkeypatch
):
    """The fast path publishes the kwargs as stored (JSON), exactly what a relay would send,
    and gives Celery the argument names for its logs, never their values."""
    import uuid
    from decimal import Decimal

    published = []
    monkeypatch.setattr(outbox, "_publish", lambda **kwargs: published.append(kwargs))
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue_after_commit(record, value=1, key=key, amount=Decimal("1.50"))
    assert published[0]["kwargs"] == {"value": 1, "key": str(key), "amount": "1.50"}
    message.refresh_from_db()
    assert message.kwargs == published[0]["kwargs"]
    monkeypatch.undo()

    sent = {}

    class Task:
        def apply_async(self, **options):
            sent.update(options)

    monkeypatch.setattr(outbox, "_task", lambda name: Task())
    outbox._publish(task_name=record.name, kwargs={"value": 1, "to": ["a@b.c"]}, message_id=key)
    assert (sent["argsrepr"], sent["kwargsrepr"]) == ("()", "{value, to}")
    assert sent["task_id"] == f"outbox:{key}"
