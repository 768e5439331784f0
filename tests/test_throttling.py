import pytest
from rest_framework.throttling import SimpleRateThrottle

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]


def test_anonymous_rate_limit_gives_429_with_retry_after(api_client, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/min")
    statuses = [api_client.get("/api/v1/_test/validate/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get("/api/v1/_test/validate/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["type"] == "client_error"
    assert body["errors"][0]["code"] == "throttled"


def test_user_rate_is_per_user(make_user, monkeypatch):
    from conftest import client_for

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "2/min")
    first, second = client_for(make_user()), client_for(make_user())
    assert [first.get("/api/v1/_test/validate/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/_test/validate/").status_code == 200
