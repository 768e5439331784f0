import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import uid_encode

from .conftest import NEW_PASSWORD, PASSWORD, bearer, html_of, link_in, login

pytestmark = pytest.mark.django_db

CHANGE = "/api/v1/auth/password/change/"
RESET = "/api/v1/auth/password/reset/"
CONFIRM = "/api/v1/auth/password/reset/confirm/"
REFRESH = "/api/v1/auth/token/refresh/"
ME = "/api/v1/users/me/"
LINK = re.compile(r"http://localhost:3000/reset-password\?\S+")


def reset_link(message) -> dict[str, str]:
    query = parse_qs(urlparse(link_in(message, LINK)).query)
    return {"uid": query["uid"][0], "token": query["token"][0]}


class PastTokenGenerator(PasswordResetTokenGenerator):
    """Makes tokens as if it were `seconds` ago (Django's own way to test expiry)."""

    def __init__(self, seconds: int) -> None:
        super().__init__()
        self.seconds = seconds

    def _now(self) -> datetime:
        return super()._now() - timedelta(seconds=self.seconds)


def test_password_change_keeps_this_session_and_ends_the_others(make_user):
    user = make_user(email="ann@example.com")
    this, other = login("ann@example.com"), login("ann@example.com")

    response = bearer(this["access"]).post(
        CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # The other session ends at once: its refresh and its access token.
    assert APIClient().post(REFRESH, {"refresh": other["refresh"]}).status_code == 401
    assert bearer(other["access"]).get(ME).status_code == 401
    # This one goes on through its refresh token (its access token ended with the generation).
    assert bearer(this["access"]).get(ME).status_code == 401
    renewed = APIClient().post(REFRESH, {"refresh": this["refresh"]})
    assert renewed.status_code == 200
    assert bearer(renewed.json()["access"]).get(ME).status_code == 200
    assert "access" in login("ann@example.com", NEW_PASSWORD)


def test_password_change_with_the_wrong_old_password_changes_nothing(make_user):
    user = make_user(email="ann@example.com")
    this, other = login("ann@example.com"), login("ann@example.com")
    response = bearer(this["access"]).post(
        CHANGE, {"old_password": "not-my-password", "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "wrong_password",
            "detail": "The current password is not correct.",
            "attr": "old_password",
        }
    ]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert APIClient().post(REFRESH, {"refresh": other["refresh"]}).status_code == 200


def test_password_change_validates_the_new_password(make_user):
    user = make_user(email="ann@example.com")
    client = bearer(login("ann@example.com")["access"])
    response = client.post(CHANGE, {"old_password": PASSWORD, "new_password": "12345678"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "invalid_password",
            "detail": "This password is too common.",
            "attr": "new_password",
        },
        {
            "code": "invalid_password",
            "detail": "This password is entirely numeric.",
            "attr": "new_password",
        },
    ]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_change_needs_a_signed_in_user():
    response = APIClient().post(CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 401


def test_password_change_with_a_token_from_elsewhere_ends_every_refresh(customer, customer_client):
    """A token without our `refresh_jti` claim cannot say which session it is: all end."""
    other = login("customer@example.com")
    response = customer_client.post(
        CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204
    assert APIClient().post(REFRESH, {"refresh": other["refresh"]}).status_code == 401


def test_reset_emails_a_working_single_use_link(make_user, django_capture_on_commit_callbacks):
    user = make_user(email="ann@example.com", first_name="Ann", verified=False)
    sessions = [login("ann@example.com"), login("ann@example.com")]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = APIClient().post(RESET, {"email": "ANN@example.com"})
        assert mail.outbox == []
    assert response.status_code == 202
    assert response.json() == {"detail": "Accepted: queued."}
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ann@example.com"]
    assert message.subject == "Reset your password"
    assert "The link works once, for 60 minutes." in message.body
    assert "&amp;" not in message.body
    assert link_in(message, LINK).replace("&", "&amp;") in html_of(message)
    body = {**reset_link(message), "new_password": NEW_PASSWORD}

    assert APIClient().post(CONFIRM, body).status_code == 204

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.email_verified  # following the link proved the address
    for pair in sessions:  # every session ends
        assert APIClient().post(REFRESH, {"refresh": pair["refresh"]}).status_code == 401
    again = APIClient().post(CONFIRM, {**body, "new_password": "yet-another-passphrase-9"})
    assert again.status_code == 400
    assert again.json()["errors"] == [
        {
            "code": "invalid_token",
            "detail": "This password reset link is invalid or has expired.",
            "attr": "token",
        }
    ]
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


@pytest.mark.parametrize("email", ["nobody@example.com", "sus@example.com", "ann@example.com"])
def test_reset_answers_the_same_whether_or_not_the_account_exists(
    make_user, django_capture_on_commit_callbacks, email
):
    make_user(email="ann@example.com")
    make_user(email="sus@example.com", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(RESET, {"email": email})
    assert response.status_code == 202
    assert response.json() == {"detail": "Accepted: queued."}
    assert set(response.headers) - {"Content-Length"} == {
        "Content-Type",
        "Vary",
        "Allow",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
        "X-Request-ID",
    }
    assert [m.to for m in mail.outbox] == ([[email]] if email == "ann@example.com" else [])


def test_reset_refuses_an_invalid_email():
    response = APIClient().post(RESET, {"email": "not an email"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "email"


def test_an_expired_reset_token_is_refused(make_user, settings):
    user = make_user(email="ann@example.com")
    expired = PastTokenGenerator(seconds=settings.PASSWORD_RESET_TIMEOUT + 5).make_token(user)
    fresh = PastTokenGenerator(seconds=settings.PASSWORD_RESET_TIMEOUT - 60).make_token(user)
    body = {"uid": uid_encode(user), "new_password": NEW_PASSWORD}

    assert APIClient().post(CONFIRM, {**body, "token": expired}).status_code == 400
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert APIClient().post(CONFIRM, {**body, "token": fresh}).status_code == 204


def test_tampered_reset_tokens_are_refused(make_user):
    user = make_user(email="ann@example.com")
    other = make_user(email="bob@example.com")
    token = PasswordResetTokenGenerator().make_token(user)
    cases = [
        {"uid": uid_encode(user), "token": token[:-1] + ("0" if token[-1] != "0" else "1")},
        {"uid": uid_encode(other), "token": token},  # another user's link
        {"uid": "not-base64!", "token": token},
        {"uid": uid_encode(user), "token": "garbage"},
    ]
    for case in cases:
        response = APIClient().post(CONFIRM, {**case, "new_password": NEW_PASSWORD})
        assert response.status_code == 400, case
        assert response.json()["errors"][0]["code"] == "invalid_token"
    user.refresh_from_db()
    other.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert other.check_password(PASSWORD)


def test_a_reset_link_of_a_suspended_user_is_refused(make_user):
    user = make_user(email="ann@example.com")
    token = PasswordResetTokenGenerator().make_token(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    body = {"uid": uid_encode(user), "token": token, "new_password": NEW_PASSWORD}
    assert APIClient().post(CONFIRM, body).status_code == 400


def test_reset_confirm_validates_the_new_password(make_user):
    user = make_user(email="ann@example.com")
    token = PasswordResetTokenGenerator().make_token(user)
    body = {"uid": uid_encode(user), "token": token, "new_password": "ann@example.com"}
    response = APIClient().post(CONFIRM, body)
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "invalid_password",
        "detail": "The password is too similar to the email address.",
        "attr": "new_password",
    }
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("email", ["ann@example.com", "nobody@example.com"])
def test_a_reset_request_does_the_same_work_whether_or_not_the_account_exists(
    make_user, django_assert_num_queries, django_capture_on_commit_callbacks, email
):
    """No lookup happens in the request at all: the queued task looks the account up."""
    make_user(email="ann@example.com")
    with django_capture_on_commit_callbacks() as callbacks, django_assert_num_queries(3) as run:
        response = APIClient().post(RESET, {"email": email})
    assert response.status_code == 202
    # Only the outbox row of the email task, inside the service's savepoint.
    statements = [query["sql"] for query in run.captured_queries]
    assert [sql.split()[0] for sql in statements] == ["SAVEPOINT", "INSERT", "RELEASE"]
    assert 'INSERT INTO "common_outboxmessage"' in statements[1]
    assert len(callbacks) == 1


def test_a_reset_link_stops_working_once_the_user_signed_in(make_user):
    user = make_user(email="ann@example.com")
    token = PasswordResetTokenGenerator().make_token(user)
    login("ann@example.com")
    body = {"uid": uid_encode(user), "token": token, "new_password": NEW_PASSWORD}
    assert APIClient().post(CONFIRM, body).status_code == 400
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
