"""The Idempotency-Key mechanism, through a tiny view that counts how often it really runs."""

from __future__ import annotations

import queue
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.urls import path
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.exceptions import ConflictError
from common.idempotency import (
    ABANDONED_AFTER,
    idempotency_keys_purge_expired,
    idempotent,
    purge_expired_idempotency_keys,
    request_fingerprint,
)
from common.models import IdempotencyKey
from conftest import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("common.tests.test_idempotency")]

URL = "/api/v1/_test/idempotent/"
runs: list[dict[str, Any]] = []
gate: dict[str, threading.Event] = {}


class _Refused(ConflictError):  # noqa: N818
    code = "refused"


class CountingView(APIView):
    @idempotent
    def post(self, request: Request) -> Response:
        data = dict(request.data)
        if "gate" in gate:
            gate["gate"].wait(timeout=10)
        if data.get("refuse"):
            raise _Refused
        if data.get("crash"):
            raise RuntimeError("a bug")
        runs.append(data)
        code = status.HTTP_204_NO_CONTENT if data.get("empty") else 201
        return Response(None if code == 204 else {"run": len(runs), **data}, status=code)


urlpatterns = [
    path(URL.lstrip("/"), CountingView.as_view())
]  # the view alone: nothing above common


@pytest.fixture(autouse=True)
def _reset():
    runs.clear()
    gate.clear()
    yield
    runs.clear()
    gate.clear()


def post(client, body: dict[str, Any], key: str | None = "key-1"):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(URL, body, format="json", headers=headers)


def test_without_a_key_every_request_runs(customer_client):
    assert post(customer_client, {"a": 1}, key=None).status_code == 201
    assert post(customer_client, {"a": 1}, key=None).status_code == 201
    assert len(runs) == 2
    assert IdempotencyKey.objects.count() == 0


def test_same_key_and_body_replays_the_first_response(customer_client, customer):
    first = post(customer_client, {"a": 1})
    second = post(customer_client, {"a": 1})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() == {"run": 1, "a": 1}
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(runs) == 1
    record = IdempotencyKey.objects.get()
    assert (record.user_id, record.key, record.response_status) == (customer.pk, "key-1", 201)


def test_a_successful_empty_response_is_replayed_too(customer_client):
    assert post(customer_client, {"empty": True}).status_code == 204
    replay = post(customer_client, {"empty": True})
    assert replay.status_code == 204
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(runs) == 1


def test_same_key_with_another_body_is_422(customer_client):
    post(customer_client, {"a": 1})
    response = post(customer_client, {"a": 2})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert len(runs) == 1
    assert IdempotencyKey.objects.get().response_body == {"run": 1, "a": 1}


def test_keys_are_per_user(customer_client, make_user):
    other = client_for(make_user())
    assert post(customer_client, {"a": 1}).json() == {"run": 1, "a": 1}
    assert post(other, {"a": 1}).json() == {"run": 2, "a": 1}
    assert IdempotencyKey.objects.count() == 2


@pytest.mark.parametrize(("key", "expected"), [("k" * 255, 201), ("k" * 256, 400), ("", 400)])
def test_key_length_is_checked(customer_client, key, expected):
    response = post(customer_client, {"a": 1}, key=key)
    assert response.status_code == expected
    if expected == 400:
        assert response.json()["errors"][0]["code"] == "idempotency_key_invalid"
        assert runs == []
        assert IdempotencyKey.objects.count() == 0


def test_an_error_response_releases_the_key_so_a_retry_runs(customer_client):
    refused = post(customer_client, {"refuse": True})
    assert refused.status_code == 409
    assert IdempotencyKey.objects.count() == 0
    # Same key, different body: allowed, since the failed request left nothing behind.
    assert post(customer_client, {"a": 1}).status_code == 201
    assert len(runs) == 1


def test_an_exception_releases_the_key(customer_client):
    with pytest.raises(RuntimeError, match="a bug"):
        post(customer_client, {"crash": True})
    assert IdempotencyKey.objects.count() == 0


def test_anonymous_requests_are_refused_before_any_claim(api_client):
    assert post(api_client, {"a": 1}).status_code == 401
    assert IdempotencyKey.objects.count() == 0


def _in_flight(customer, *, locked_ago: timedelta) -> IdempotencyKey:
    """A claim with no response yet, as a request still running (or a dead process) leaves it."""
    when = timezone.now() - locked_ago
    return IdempotencyKey.objects.create(
        user=customer,
        key="key-1",
        request_fingerprint=request_fingerprint(method="POST", path=URL, data={"a": 1}),
        created_at=when,
        locked_at=when,
    )


def test_while_the_first_request_runs_the_key_is_in_use(customer_client, customer):
    _in_flight(customer, locked_ago=timedelta(seconds=2))
    response = post(customer_client, {"a": 1})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_key_in_use"
    assert runs == []


def test_a_claim_abandoned_by_a_dead_process_is_taken_over(customer_client, customer):
    _in_flight(customer, locked_ago=ABANDONED_AFTER + timedelta(seconds=1))
    response = post(customer_client, {"a": 1})
    assert response.status_code == 201
    assert len(runs) == 1
    assert IdempotencyKey.objects.get().response_status == 201


def test_an_expired_key_counts_as_new(customer_client, settings):
    post(customer_client, {"a": 1})
    IdempotencyKey.objects.update(created_at=timezone.now() - settings.IDEMPOTENCY_KEY_TTL)
    response = post(customer_client, {"a": 2})
    assert response.status_code == 201
    assert response.json() == {"run": 2, "a": 2}


def test_purge_deletes_only_expired_keys(customer_client, settings):
    post(customer_client, {"a": 1}, key="old")
    post(customer_client, {"a": 1}, key="new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - settings.IDEMPOTENCY_KEY_TTL - timedelta(seconds=1)
    )
    assert purge_expired_idempotency_keys.delay().get() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_keys_purge_expired() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_run_once(customer):
    gate["gate"] = threading.Event()
    results: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()

    def send() -> None:
        try:
            response = post(client_for(customer), {"a": 1})
            results.put((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    # The loser answers at once while the winner is held inside the view.
    loser_status, loser_body = results.get(timeout=10)
    assert loser_status == 409
    assert loser_body is not None
    assert loser_body["errors"][0]["code"] == "idempotency_key_in_use"
    gate["gate"].set()
    for thread in threads:
        thread.join(timeout=10)
    assert results.get(timeout=1) == (201, {"run": 1, "a": 1})
    gate.clear()
    replay = post(client_for(customer), {"a": 1})
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(runs) == 1


def test_the_purge_task_is_scheduled_and_a_worker_registers_it(settings):
    from celery import current_app as app  # the project's (config/celery.py), above common

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "common.idempotency.purge_expired_idempotency_keys" in schedule
    # A worker imports `imports` at start; autodiscovery alone would miss this module.
    assert "common.idempotency" in app.conf.imports
    app.loader.import_default_modules()
    assert "common.idempotency.purge_expired_idempotency_keys" in app.tasks
    assert "orders.tasks.expire_unpaid_orders" in app.tasks
