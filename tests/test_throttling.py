"""Request throttles over HTTP (common/throttling.py): 429 with `Retry-After` in the one error
shape, exact counts in Redis for the whole deployment (catalog reads included: nothing counts in
a process's memory), one command per throttle, windows that roll over, failing open."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import User
from accounts.tokens import token_pair_for
from common.throttling import redis_client

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]

VALIDATE = "/api/v1/_test/validate/"


def test_anonymous_rate_limit_gives_429_with_retry_after(api_client, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/min")
    statuses = [api_client.get(VALIDATE).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get(VALIDATE)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["type"] == "client_error"
    assert body["errors"][0]["code"] == "throttled"


def test_user_rate_is_per_user(make_user, monkeypatch):
    from conftest import client_for

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "2/min")
    first, second = client_for(make_user()), client_for(make_user())
    assert [first.get(VALIDATE).status_code for _ in range(3)] == [200, 200, 429]
    assert second.get(VALIDATE).status_code == 200


@pytest.fixture
def make_product(db):
    """A product made through the catalog services (the catalog has something to read)."""
    from inventory.services import category_create, product_create

    def make():
        category = category_create(name=f"Audio {uuid.uuid4().hex[:8]}")
        return product_create(
            sku=f"SKU-{uuid.uuid4().hex[:8]}", name="Headphones", category=category, price_cents=1
        )

    return make


def reader(user: User):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user).access}")
    return client


def raw():
    client = redis_client(caches["throttles"])
    assert client is not None
    return client


@pytest.mark.redis
def test_threads_hammering_one_client_get_exactly_the_limit(monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "20/min")
    threads, each = 6, 10
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    retry_after: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        from rest_framework.test import APIClient

        client = APIClient()
        try:
            barrier.wait()
            for _ in range(each):
                response = client.get(VALIDATE)
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 429:
                        retry_after.append(int(response["Retry-After"]))
        finally:
            connection.close()

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert statuses.count(200) == 20
    assert statuses.count(429) == threads * each - 20
    assert all(0 < wait <= 60 for wait in retry_after)


@pytest.mark.redis
def test_catalog_reads_count_in_redis_with_the_clients_other_requests(
    api_client, monkeypatch, make_product
):
    product = make_product()
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/min")
    assert api_client.get(VALIDATE).status_code == 200
    assert api_client.get("/api/v1/products/").status_code == 200
    assert api_client.get(f"/api/v1/products/{product.pk}/").status_code == 200
    refused = api_client.get("/api/v1/products/")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["errors"][0]["code"] == "throttled"
    # One integer with a TTL for this client, where every worker of every node counts.
    key = caches["throttles"].make_key("throttle_anon_127.0.0.1")
    assert raw().type(key) == b"string"
    assert int(raw().get(key)) == 4
    assert 0 < raw().pttl(key) <= 60_000


@pytest.mark.redis
def test_a_customers_catalog_reads_count_under_their_user_id(make_user, monkeypatch, make_product):
    make_product()
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "2/min")
    ann, bob = make_user(User.Role.CUSTOMER), make_user(User.Role.CUSTOMER)
    client = reader(ann)
    assert [client.get("/api/v1/products/").status_code for _ in range(3)] == [200, 200, 429]
    assert reader(bob).get("/api/v1/products/").status_code == 200
    assert int(raw().get(caches["throttles"].make_key(f"throttle_user_{ann.pk}"))) == 3


def _throttle_commands(client: Any, path: str) -> list[str]:
    """The commands one request sends to the throttles' database (watched with MONITOR)."""
    redis = raw()
    db = redis.connection_pool.connection_kwargs["db"]
    marker = f"end-{uuid.uuid4().hex}"
    with redis.monitor() as monitor:
        assert client.get(path).status_code == 200
        redis.echo(marker)
        sent: list[str] = []
        while True:
            command = monitor.next_command()
            if command["db"] != db or command["client_type"] == "lua":
                continue  # other databases; the script's own INCR and PTTL, inside Redis
            if marker in command["command"]:
                break
            sent.append(command["command"].split()[0])
    return [name for name in sent if name != "SELECT"]


@pytest.mark.redis
@pytest.mark.parametrize("caller", ["anonymous", "customer"])
def test_a_catalog_read_costs_one_command_to_the_throttles_redis(
    caller, api_client, make_user, make_product
):
    """One counter per caller (the anon rate by address, or the user rate by id): one EVALSHA,
    nothing else, on the throttles' database, for an anonymous caller too (DRF's anon + user
    pair counted an anonymous caller twice)."""
    make_product()
    client = api_client if caller == "anonymous" else reader(make_user(User.Role.CUSTOMER))
    assert client.get("/api/v1/products/").status_code == 200  # the script is loaded
    assert _throttle_commands(client, "/api/v1/products/") == ["EVALSHA"]


@pytest.mark.redis
def test_the_window_rolls_over(api_client, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "2/s")
    assert [api_client.get(VALIDATE).status_code for _ in range(3)] == [200, 200, 429]
    key = caches["throttles"].make_key("throttle_anon_127.0.0.1")
    time.sleep(max(raw().pttl(key), 0) / 1000 + 0.05)  # Redis ends the window
    assert api_client.get(VALIDATE).status_code == 200
    assert int(raw().get(key)) == 1


THROTTLES_DOWN = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there: a real refused connection
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
}


def test_with_the_throttle_store_unreachable_requests_pass_and_it_is_logged_once(
    api_client, monkeypatch, make_user, make_product, settings, caplog
):
    make_product()
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "1/min")
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "1/min")
    customer = reader(make_user(User.Role.CUSTOMER))
    with (
        override_settings(CACHES={**settings.CACHES, "throttles": THROTTLES_DOWN}),
        caplog.at_level(logging.WARNING, logger="shop.throttling"),
    ):
        statuses = [api_client.get(VALIDATE).status_code for _ in range(3)]
        statuses += [api_client.get("/api/v1/products/").status_code for _ in range(3)]
        statuses += [customer.get("/api/v1/products/").status_code for _ in range(3)]
    assert statuses == [200] * 9
    warnings = [r for r in caplog.records if "throttle store unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request
