"""Scoped throttles: 429 with Retry-After, by IP and by email. Rates are the settings' defaults."""

import pytest
from rest_framework.test import APIClient

from accounts.models import User

from .conftest import PASSWORD, bearer, login

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REGISTER = "/api/v1/auth/register/"
RESET = "/api/v1/auth/password/reset/"
RESEND = "/api/v1/auth/verify-email/resend/"


def assert_throttled(response, max_wait: int) -> None:
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= max_wait
    assert response.json()["errors"][0]["code"] == "throttled"


def test_login_is_throttled_by_ip_at_10_a_minute(make_user):
    make_user(email="ann@example.com")
    client = APIClient()
    statuses = [
        client.post(TOKEN, {"email": f"guess{i}@example.com", "password": "x"}).status_code
        for i in range(10)
    ]
    assert statuses == [401] * 10
    # The right password does not get through either once the IP is over its rate.
    response = client.post(TOKEN, {"email": "ann@example.com", "password": PASSWORD})
    assert_throttled(response, 60)
    other_ip = client.post(
        TOKEN, {"email": "ann@example.com", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2"
    )
    assert other_ip.status_code == 200


def test_login_failures_are_limited_per_address_and_email_at_5_a_minute(make_user):
    make_user(email="ann@example.com")
    client = APIClient()
    for _ in range(5):
        response = client.post(
            TOKEN, {"email": "ann@example.com", "password": "wrong"}, REMOTE_ADDR="10.0.1.1"
        )
        assert response.status_code == 401
    # The same address in another case is the same account, and the right password does not
    # get through from the address that has been failing for it.
    response = client.post(
        TOKEN, {"email": " ANN@example.com", "password": PASSWORD}, REMOTE_ADDR="10.0.1.1"
    )
    assert_throttled(response, 60)
    # Another email from that address, and that email from another address, are still tried.
    other_email = client.post(
        TOKEN, {"email": "bob@example.com", "password": "wrong"}, REMOTE_ADDR="10.0.1.1"
    )
    assert other_email.status_code == 401
    other_address = client.post(
        TOKEN, {"email": "ann@example.com", "password": PASSWORD}, REMOTE_ADDR="10.0.2.1"
    )
    assert other_address.status_code == 200


def test_a_forged_x_forwarded_for_does_not_reset_the_ip_count():
    client = APIClient()
    for i in range(10):
        response = client.post(
            TOKEN,
            {"email": f"g{i}@example.com", "password": "x"},
            HTTP_X_FORWARDED_FOR=f"1.2.3.{i}",
        )
        assert response.status_code == 401
    response = client.post(
        TOKEN, {"email": "g99@example.com", "password": "x"}, HTTP_X_FORWARDED_FOR="9.9.9.9"
    )
    assert_throttled(response, 60)


def test_behind_a_trusted_proxy_the_forwarded_client_ip_counts(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = APIClient()
    for i in range(10):
        response = client.post(
            TOKEN, {"email": f"g{i}@example.com", "password": "x"}, HTTP_X_FORWARDED_FOR="1.1.1.1"
        )
        assert response.status_code == 401
    blocked = client.post(
        TOKEN, {"email": "g10@example.com", "password": "x"}, HTTP_X_FORWARDED_FOR="1.1.1.1"
    )
    assert_throttled(blocked, 60)
    another_client = client.post(
        TOKEN, {"email": "g11@example.com", "password": "x"}, HTTP_X_FORWARDED_FOR="2.2.2.2"
    )
    assert another_client.status_code == 401


def test_register_is_throttled_by_ip_at_10_an_hour():
    client = APIClient()
    for i in range(10):
        response = client.post(REGISTER, {"email": f"new{i}@example.com", "password": PASSWORD})
        assert response.status_code == 202
    response = client.post(REGISTER, {"email": "new10@example.com", "password": PASSWORD})
    assert_throttled(response, 3600)
    assert User.objects.count() == 10


def test_password_reset_is_throttled_by_ip(make_user):
    client = APIClient()
    for i in range(5):
        assert client.post(RESET, {"email": f"x{i}@example.com"}).status_code == 202
    assert_throttled(client.post(RESET, {"email": "x5@example.com"}), 3600)


def test_password_reset_is_throttled_by_email(make_user, django_capture_on_commit_callbacks):
    make_user(email="ann@example.com")
    client = APIClient()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for i in range(5):
            response = client.post(RESET, {"email": "ann@example.com"}, REMOTE_ADDR=f"10.0.3.{i}")
            assert response.status_code == 202
        response = client.post(RESET, {"email": "Ann@Example.com"}, REMOTE_ADDR="10.0.4.1")
    assert_throttled(response, 3600)
    assert len(callbacks) == 5  # the throttled request sent nothing


def test_verification_resend_is_throttled_by_ip(make_user):
    make_user(email="ann@example.com", verified=False)
    make_user(email="bob@example.com", verified=False)
    ann = bearer(login("ann@example.com")["access"])
    bob = bearer(login("bob@example.com")["access"])
    for client in (ann, ann, ann, bob, bob):
        assert client.post(RESEND).status_code == 202
    assert_throttled(bob.post(RESEND), 3600)


def test_verification_resend_is_throttled_by_user(make_user):
    make_user(email="ann@example.com", verified=False)
    ann = bearer(login("ann@example.com")["access"])
    for i in range(5):
        assert ann.post(RESEND, REMOTE_ADDR=f"10.0.5.{i}").status_code == 202
    assert_throttled(ann.post(RESEND, REMOTE_ADDR="10.0.6.1"), 3600)
