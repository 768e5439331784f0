"""A cached catalog read is answered by the cache's middleware (inventory/api/cached_reads.py)
before sessions, URL resolution and DRF, and answers exactly what the stack answered: the same
status, body and headers, for anonymous callers and customers, 200 and 304; with one round trip
to the cache and one to the throttles. Whatever the middleware does not answer, the stack does,
as before (a staff view, a bad token's 401, an over-rate 429 counted once)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from prometheus_client import REGISTRY
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from accounts.tokens import token_pair_for
from common.throttling import redis_client
from inventory.api.views import CatalogReadMixin, ProductViewSet
from inventory.cache import current_catalog_version, response_key, versioned_set
from inventory.services import product_update

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

# A media type the middleware leaves to DRF's negotiation: the same request, through the stack.
THROUGH_THE_STACK = "application/json;q=0.9"
PER_REQUEST = {"X-Request-ID"}


def reader_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user).access}")
    return client


@pytest.fixture
def callers(api_client: APIClient, make_user: Any) -> dict[str, APIClient]:
    return {"anonymous": api_client, "customer": reader_client(make_user(User.Role.CUSTOMER))}


@pytest.fixture
def urls(product: Any) -> list[str]:
    return [
        f"/api/v1/products/{product.pk}/",
        f"/api/v1/products/{product.slug}/",
        "/api/v1/products/?ordering=-price_cents&page_size=5",
        f"/api/v1/categories/{product.category_id}/",
        "/api/v1/categories/tree/",
    ]


def headers(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.items() if name not in PER_REQUEST}


def stack_must_not_be_entered(monkeypatch: pytest.MonkeyPatch) -> None:
    def entered(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the request reached DRF")

    monkeypatch.setattr(CatalogReadMixin, "initialize_request", entered)


@pytest.mark.parametrize("caller", ["anonymous", "customer"])
def test_a_hit_answers_what_the_stack_answered(caller, callers, urls, monkeypatch):
    client = callers[caller]
    built = {url: client.get(url) for url in urls}  # misses: built by the views, then stored
    stack_must_not_be_entered(monkeypatch)
    for url, first in built.items():
        assert first.status_code == 200, (url, first.content)
        hit = client.get(url)
        assert (hit.status_code, hit.content) == (200, first.content), url
        assert headers(hit) == headers(first), url
        assert hit["Cache-Control"].startswith("public")


@pytest.mark.parametrize("caller", ["anonymous", "customer"])
def test_a_hit_answers_the_stacks_304(caller, callers, urls, monkeypatch):
    client = callers[caller]
    etags = {url: client.get(url)["ETag"] for url in urls}
    from_the_stack = {
        url: client.get(url, HTTP_IF_NONE_MATCH=etag, HTTP_ACCEPT=THROUGH_THE_STACK)
        for url, etag in etags.items()
    }
    stack_must_not_be_entered(monkeypatch)
    for url, etag in etags.items():
        hit = client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert (hit.status_code, hit.content) == (304, b""), url
        assert headers(hit) == headers(from_the_stack[url]), url


def test_anonymous_and_customer_hits_carry_their_own_etags(callers, urls):
    url = urls[0]
    etags = {
        caller: [client.get(url)["ETag"] for _ in range(2)] for caller, client in callers.items()
    }
    assert etags["anonymous"][0] == etags["anonymous"][1]
    assert etags["customer"][0] == etags["customer"][1]
    assert etags["anonymous"][0] != etags["customer"][0]


def test_a_catalog_write_is_read_at_once_past_the_middleware(
    api_client, product, django_capture_on_commit_callbacks
):
    url = f"/api/v1/products/{product.pk}/"
    assert api_client.get(url).json()["name"] == "Studio Headphones"
    with django_capture_on_commit_callbacks(execute=True):
        product_update(product=product, changes={"name": "Renamed"})
    assert api_client.get(url).json()["name"] == "Renamed"


def test_staff_never_get_a_stored_public_body(api_client, staff, product):
    url = "/api/v1/products/"
    product_update(product=product, changes={"is_active": False})
    assert api_client.get(url).json()["count"] == 0
    staff_view = reader_client(staff).get(url)
    assert staff_view.json()["count"] == 1
    assert staff_view["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Bearer ", "Bearer a.b.c", "Bearer x y"],
)
def test_a_bad_token_on_a_cached_url_gets_the_stacks_401(authorization, api_client, urls):
    assert api_client.get(urls[0]).status_code == 200
    refused = api_client.get(urls[0], HTTP_AUTHORIZATION=authorization)
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["type"] == "client_error"


def test_an_expired_customer_token_on_a_cached_url_gets_401(api_client, customer, urls, settings):
    token = AccessToken.for_user(customer)
    token["role"] = User.Role.CUSTOMER
    token.set_exp(lifetime=-timedelta(seconds=1))
    assert api_client.get(urls[0]).status_code == 200
    refused = api_client.get(urls[0], HTTP_AUTHORIZATION=f"Bearer {token}")
    assert refused.status_code == 401


def test_a_refresh_token_is_not_a_reader(api_client, customer, urls):
    assert api_client.get(urls[0]).status_code == 200
    refresh = token_pair_for(customer).refresh
    assert api_client.get(urls[0], HTTP_AUTHORIZATION=f"Bearer {refresh}").status_code == 401


def test_a_throttled_hit_is_the_stacks_429_and_counted_once(api_client, urls, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "2/min")
    assert api_client.get(urls[0]).status_code == 200  # a miss, counted by the view
    assert api_client.get(urls[0]).status_code == 200  # a hit, counted by the middleware
    refused = api_client.get(urls[0])  # a hit over the rate: the view answers
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
    throttles = redis_client(caches["throttles"])
    assert throttles is not None
    counted = throttles.get(caches["throttles"].make_key("throttle_anon_127.0.0.1"))
    assert counted == b"3"


# What a new connection sends before its first command (redis-py's handshake).
CONNECTION_SETUP = frozenset({"HELLO", "CLIENT", "SELECT", "AUTH"})


def _commands(client: APIClient, path: str) -> list[tuple[str, str]]:
    """(which cache, command) for everything one request sends to Redis (MONITOR)."""
    databases = {
        redis_client(caches[alias]).connection_pool.connection_kwargs["db"]: alias  # type: ignore[union-attr]
        for alias in ("default", "throttles")
    }
    redis = redis_client(caches["default"])
    assert redis is not None
    marker = f"end-{uuid.uuid4().hex}"
    sent: list[tuple[str, str]] = []
    with redis.monitor() as monitor:
        assert client.get(path).status_code == 200
        redis.echo(marker)
        while True:
            command = monitor.next_command()
            if marker in command["command"]:
                break
            name = command["command"].split()[0]
            if command["client_type"] != "lua" and name not in CONNECTION_SETUP:
                sent.append((databases.get(command["db"], "other"), name))
    return sent


@pytest.mark.parametrize("caller", ["anonymous", "customer"])
def test_a_hit_is_one_round_trip_to_the_cache_and_one_to_the_throttles(caller, callers, urls):
    client = callers[caller]
    for url in urls[:3]:
        assert client.get(url).status_code == 200
        assert _commands(client, url) == [("default", "MGET"), ("throttles", "EVALSHA")], url


def _served(view: str, status: str = "200") -> float:
    labels = {"status": status, "view": view, "method": "GET"}
    value = REGISTRY.get_sample_value(
        "django_http_responses_total_by_status_view_method_total", labels
    )
    return value or 0.0


def test_a_hit_is_counted_under_its_view_in_the_metrics(api_client, urls):
    assert api_client.get(urls[0]).status_code == 200
    before = _served("product-detail")
    assert api_client.get(urls[0]).status_code == 200
    assert _served("product-detail") == before + 1


@pytest.mark.parametrize("accept", ["*/*", THROUGH_THE_STACK])
def test_an_entry_of_an_earlier_shape_is_a_miss_not_an_error(accept, api_client, urls):
    """What an earlier release stored under the same key (the body alone) is rebuilt."""
    url = urls[0]
    fresh = api_client.get(url)
    version = current_catalog_version()
    assert version is not None
    versioned_set(response_key("testserver", url, ""), version, b'{"stale": true}', 60)
    again = api_client.get(url, HTTP_ACCEPT=accept)
    assert (again.status_code, again.content) == (200, fresh.content)


def test_a_client_with_another_accept_gets_the_stored_body_through_the_stack(
    api_client, urls, monkeypatch
):
    first = api_client.get(urls[0])

    def rebuilt(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the body was built again")

    monkeypatch.setattr(ProductViewSet, "_detail", rebuilt)
    again = api_client.get(urls[0], HTTP_ACCEPT=THROUGH_THE_STACK)
    assert (again.status_code, again.content) == (200, first.content)
    assert again["ETag"] == first["ETag"]
