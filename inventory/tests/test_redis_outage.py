"""Redis down, in process (README, "Failure behaviour"): catalog reads come from the database
(the cache fails open), login works (throttles fail open), each logged once a minute, not once a
request. The caches point at a port where no Redis listens: a real refused connection."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

NO_REDIS = "redis://127.0.0.1:1/0"


def _unreachable(*, fail_open: bool) -> dict[str, object]:
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": NO_REDIS,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            "IGNORE_EXCEPTIONS": fail_open,
        },
    }


REDIS_DOWN = {
    "default": _unreachable(fail_open=True),
    "throttles": _unreachable(fail_open=False),
}


def test_catalog_reads_answer_from_the_database_and_log_once(api_client, make_product, caplog):
    make_product(name="Studio Headphones")
    with override_settings(CACHES=REDIS_DOWN), caplog.at_level(logging.WARNING):
        responses = [api_client.get("/api/v1/products/") for _ in range(5)]
        detail = api_client.get(f"/api/v1/products/{responses[0].json()['results'][0]['id']}/")
    assert [r.status_code for r in responses] == [200] * 5
    assert detail.status_code == 200
    assert [p["name"] for p in responses[-1].json()["results"]] == ["Studio Headphones"]
    cache_lines = [r for r in caplog.records if r.name == "shop.redis"]
    throttle_lines = [r for r in caplog.records if r.name == "shop.throttling"]
    assert len(cache_lines) == 1  # not one per request
    assert len(throttle_lines) <= 1


def test_login_works_while_the_throttle_store_is_down(api_client, make_user, caplog):
    make_user(email="ann@example.com")
    body = {"email": "ann@example.com", "password": "correct-horse-battery-staple"}
    with override_settings(CACHES=REDIS_DOWN), caplog.at_level(logging.WARNING):
        responses = [api_client.post("/api/v1/auth/token/", body) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "access" in responses[0].json()
    warnings = [r for r in caplog.records if "throttle store unreachable" in r.getMessage()]
    assert len(warnings) == 1
