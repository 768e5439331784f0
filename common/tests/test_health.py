from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_healthz_answers_while_the_process_runs(api_client):
    response = api_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_everything_answers(api_client):
    response = api_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }


@pytest.mark.redis
def test_readyz_reaches_the_real_broker(api_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = settings.REDIS_URL
    response = api_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


def test_readyz_names_an_unreachable_cache(api_client):
    unreachable = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": UNREACHABLE_REDIS,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        response = api_client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["cache"]
    assert body["detail"] == "cache (Redis) did not answer"
    assert body["checks"]["cache"] == "unavailable"
    assert body["checks"]["database"] == "ok"


def test_readyz_names_an_unreachable_broker(api_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = UNREACHABLE_REDIS
    response = api_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]
    assert response.json()["detail"] == "broker (Redis) did not answer"


@pytest.mark.django_db(transaction=True)
def test_readyz_names_an_unreachable_database(api_client, monkeypatch):
    connection = connections["default"]
    connection.close()
    with monkeypatch.context() as patch:  # restored before the test ends (teardown uses the DB)
        patch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
        patch.setitem(connection.settings_dict, "PORT", "1")
        try:
            response = api_client.get("/readyz")
        finally:
            connection.close()
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["detail"] == "database (PostgreSQL) did not answer"
    assert body["checks"]["cache"] == "ok"
    # An address is a server someone else runs: the embedded backend starts nothing for it.
    assert not (Path(settings.BASE_DIR) / "127.0.0.1").exists()
