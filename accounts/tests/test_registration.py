import re
import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import mail, signing

from accounts.models import User
from accounts.tokens import EMAIL_VERIFICATION_SALT, email_verification_token_make

from .conftest import PASSWORD, bearer, html_of, link_in, login

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
VERIFY = "/api/v1/auth/verify-email/"
RESEND = "/api/v1/auth/verify-email/resend/"
LINK = re.compile(r"http://localhost:3000/verify-email\?token=\S+")
ACCEPTED = "Check your inbox: we sent a message to this address to continue."


def link_token(message) -> str:
    url = link_in(message, LINK)
    return parse_qs(urlparse(url).query)["token"][0]


class PastSigner(signing.TimestampSigner):
    """Signs as if it were `hours` ago: time travel without touching the clock or the DB."""

    def __init__(self, hours: float) -> None:
        super().__init__(salt=EMAIL_VERIFICATION_SALT)
        self.hours = hours

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time() - self.hours * 3600))


def test_register_creates_an_unverified_customer_and_emails_once_after_commit(
    api_client, django_capture_on_commit_callbacks
):
    body = {"email": "Ann@Example.COM", "password": PASSWORD, "first_name": "Ann"}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(REGISTER, body)
        assert mail.outbox == []  # nothing leaves before the transaction commits
    assert response.status_code == 202
    assert response.json() == {"email": "Ann@example.com", "detail": ACCEPTED}
    user = User.objects.get()
    assert (user.email, user.first_name, user.role) == ("Ann@example.com", "Ann", "customer")
    assert not user.email_verified
    assert user.check_password(PASSWORD)
    assert list(user.groups.all()) == []
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["Ann@example.com"]
    assert message.subject == "Confirm your email address"
    assert "Hello,\n" in message.body  # no name: whoever registered chose it, not the owner
    assert "The link works for 24 hours." in message.body
    assert f'href="{link_in(message, LINK)}"' in html_of(message)
    assert "Ann@example.com" not in link_token(message)  # the link does not show the address


def test_the_emailed_link_verifies_the_address(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(REGISTER, {"email": "ann@example.com", "password": PASSWORD})
    token = link_token(mail.outbox[0])

    response = api_client.post(VERIFY, {"token": token})

    assert response.status_code == 200
    assert response.json()["email_verified"] is True
    user = User.objects.get()
    verified_at = user.email_verified_at
    assert verified_at is not None
    # Following the link again is harmless and keeps the first time.
    assert api_client.post(VERIFY, {"token": token}).status_code == 200
    user.refresh_from_db()
    assert user.email_verified_at == verified_at


def test_access_tokens_carry_role_and_verification_claims(make_user):
    from rest_framework_simplejwt.tokens import AccessToken

    user = make_user("staff", verified=False, email="sam@example.com")
    access = AccessToken(login("sam@example.com")["access"])  # type: ignore[arg-type]
    assert access["role"] == "staff"
    assert access["email_verified"] is False
    assert access["user_id"] == str(user.pk)


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@example.com"])
def test_a_taken_email_gets_no_second_account_whatever_its_case(
    api_client, make_user, django_capture_on_commit_callbacks, email
):
    make_user(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(REGISTER, {"email": email, "password": PASSWORD})
    assert response.status_code == 202  # not 400 `email_taken`: see test_security.py
    assert User.objects.count() == 1
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    assert mail.outbox[0].subject == "Someone tried to sign up with your email address"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("83920174659", "This password is entirely numeric."),
        ("ann.lovelace", "The password is too similar to the email address."),
    ],
)
def test_weak_password_is_refused_by_djangos_validators(
    api_client, django_capture_on_commit_callbacks, password, message
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(
            REGISTER, {"email": "ann.lovelace@example.com", "password": password}
        )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"code": "invalid_password", "detail": message, "attr": "password"} in errors
    assert User.objects.count() == 0
    assert callbacks == []
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"password": PASSWORD}, "email"),
        ({"email": "ann@example.com"}, "password"),
        ({"email": "ann@example.com", "password": PASSWORD, "role": "admin"}, "role"),
        ({"email": "ann@example.com", "password": PASSWORD, "is_staff": True}, "is_staff"),
        (
            {"email": "ann@example.com", "password": PASSWORD, "email_verified": True},
            "email_verified",
        ),
    ],
)
def test_register_refuses_bad_input_and_privileged_fields(api_client, body, attr):
    response = api_client.post(REGISTER, body)
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert User.objects.count() == 0


def test_a_token_older_than_24_hours_is_refused(api_client, make_user):
    user = make_user(verified=False)
    almost = email_verification_token_make(user, signer=PastSigner(hours=23.9))
    expired = email_verification_token_make(user, signer=PastSigner(hours=24.1))

    response = api_client.post(VERIFY, {"token": expired})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "invalid_token",
            "detail": "This verification link is invalid or has expired.",
            "attr": "token",
        }
    ]
    user.refresh_from_db()
    assert user.email_verified_at is None
    assert api_client.post(VERIFY, {"token": almost}).status_code == 200


def test_tampered_tokens_are_refused(api_client, make_user):
    user = make_user(verified=False)
    other = make_user(verified=False)
    token = email_verification_token_make(user)
    value, timestamp, signature = token.rsplit(":", 2)
    forged_for_other = signing.TimestampSigner(salt="another-salt").sign_object([other.pk, value])
    candidates = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature changed
        f"{value}:{timestamp}:{signature[::-1]}",
        forged_for_other,
        signing.dumps([other.pk, "x"]),  # signed with the default salt
        signing.TimestampSigner(salt=EMAIL_VERIFICATION_SALT).sign_object(["1", 2]),  # bad shape
        "garbage",
        "",
    ]
    for candidate in candidates:
        response = api_client.post(VERIFY, {"token": candidate})
        assert response.status_code == 400, candidate
    assert User.objects.filter(email_verified_at__isnull=False).count() == 0


def test_a_token_stops_working_once_the_address_changed(api_client, make_user):
    user = make_user(verified=False, email="old@example.com")
    token = email_verification_token_make(user)
    User.objects.filter(pk=user.pk).update(email="new@example.com")
    assert api_client.post(VERIFY, {"token": token}).status_code == 400
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_a_token_of_a_deleted_user_is_refused(api_client, make_user):
    user = make_user(verified=False)
    token = email_verification_token_make(user)
    user.delete()
    assert api_client.post(VERIFY, {"token": token}).status_code == 400


def test_resend_sends_a_new_working_link(make_user, django_capture_on_commit_callbacks):
    user = make_user(verified=False, email="ann@example.com")
    client = bearer(login("ann@example.com")["access"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(RESEND)
    assert response.status_code == 202
    assert response.json() == {"detail": "Accepted: queued."}
    assert [message.to for message in mail.outbox] == [["ann@example.com"]]
    assert client.post(VERIFY, {"token": link_token(mail.outbox[0])}).status_code == 200
    user.refresh_from_db()
    assert user.email_verified


def test_resend_to_a_verified_address_sends_nothing(
    customer_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = customer_client.post(RESEND)
    assert response.status_code == 202
    assert callbacks == []
    assert mail.outbox == []


def test_resend_needs_a_signed_in_user(api_client):
    response = api_client.post(RESEND)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "not_authenticated"
