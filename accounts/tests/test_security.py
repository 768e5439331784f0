"""The accounts security hardening: login throttled by failures, sessions that end at once
(session generation), refresh-token reuse detection, registration without enumeration, security
events, and account emails that never show what a stranger typed.

Real PostgreSQL and Redis throughout; emails through the outbox (captured commit callbacks).
Long on purpose: one section per hardening above, so the whole security story of accounts reads
in one file.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.test import override_settings
from prometheus_client import REGISTRY
from pythonjsonlogger.json import JsonFormatter
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import security, services
from accounts.models import User
from accounts.security import security_event
from accounts.tokens import password_reset_tokens, uid_encode
from conftest import client_for

from .conftest import NEW_PASSWORD, PASSWORD, bearer, html_of, login

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
CHANGE = "/api/v1/auth/password/change/"
RESET = "/api/v1/auth/password/reset/"
CONFIRM = "/api/v1/auth/password/reset/confirm/"
REGISTER = "/api/v1/auth/register/"
ME = "/api/v1/users/me/"
USERS = "/api/v1/users/"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
SESSION_ENDED = {
    "code": "token_not_valid",
    "detail": "This session has ended. Refresh the token or sign in again.",
    "attr": None,
}
BAD_REFRESH = {
    "code": "token_not_valid",
    "detail": "The refresh token is invalid, expired or already used.",
    "attr": None,
}
EVIL = "Click http://evil.example"


def wrong(email: str, address: str) -> Any:
    return APIClient().post(TOKEN, {"email": email, "password": "wrong-guess"}, REMOTE_ADDR=address)


def right(email: str, address: str) -> Any:
    return APIClient().post(TOKEN, {"email": email, "password": PASSWORD}, REMOTE_ADDR=address)


def refresh(token: str) -> Any:
    return APIClient().post(REFRESH, {"refresh": token})


def metric(event: str) -> float:
    return REGISTRY.get_sample_value("shop_security_events_total", {"event": event}) or 0.0


@pytest.fixture
def events(caplog):
    """The `shop.security` records of the test, optionally of one event."""
    caplog.set_level(logging.INFO, logger="shop.security")

    def of(event: str | None = None) -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == "shop.security" and (event is None or r.__dict__.get("event") == event)
        ]

    return of


# --- 1. login: failures are limited, never the owner's right password ------------------------


def test_a_storm_of_wrong_passwords_from_elsewhere_does_not_lock_the_owner_out(make_user):
    make_user(email="ann@example.com")
    # More than any limit, each from its own address.
    storm = [wrong("ann@example.com", f"10.0.1.{i}").status_code for i in range(30)]
    assert right("Ann@Example.com", "10.9.9.9").status_code == 200
    assert set(storm) == {401}  # and none of the storm's addresses is over its own limit


def test_right_passwords_are_not_counted(make_user):
    make_user(email="ann@example.com")
    for _ in range(15):  # over the 10 a minute that failures get
        assert right("ann@example.com", "10.0.2.1").status_code == 200
    assert wrong("ann@example.com", "10.0.2.1").status_code == 401  # not 429


def test_failures_from_one_address_are_limited_with_429_and_retry_after(make_user):
    make_user(email="ann@example.com")
    for i in range(10):
        assert wrong(f"guess{i}@example.com", "10.0.3.1").status_code == 401

    response = right("ann@example.com", "10.0.3.1")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "throttled",
                "detail": response.json()["errors"][0]["detail"],
                "attr": None,
            }
        ],
    }
    assert "Expected available in" in response.json()["errors"][0]["detail"]
    # The address over its limit is refused before the password is checked: no login recorded.
    assert User.objects.get(email="ann@example.com").last_login is None


def test_the_owner_signs_in_after_a_few_typos_of_their_own(make_user):
    make_user(email="ann@example.com")
    for _ in range(4):
        assert wrong("ann@example.com", "10.0.4.1").status_code == 401
    assert right("ann@example.com", "10.0.4.1").status_code == 200


def test_with_the_throttle_store_unreachable_login_fails_open(
    make_user, settings, caplog, monkeypatch
):
    make_user(email="ann@example.com")
    for once_a_minute in logging.getLogger("shop.throttling").filters:
        # A fresh memory of what was logged this minute, given back after the test.
        monkeypatch.setattr(once_a_minute, "_last", {})
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login": "1/min",
            "login_account": "1/min",
        },
    }
    unreachable = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": UNREACHABLE_REDIS,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    with override_settings(CACHES={**settings.CACHES, "throttles": unreachable}):
        for _ in range(3):
            assert wrong("ann@example.com", "10.0.5.1").status_code == 401
        assert right("ann@example.com", "10.0.5.1").status_code == 200
    assert "throttle store unreachable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_slip_in_under_the_limit(make_user):
    make_user(email="ann@example.com")
    count = 16
    barrier = threading.Barrier(count)
    statuses: list[int] = [0] * count

    def guess(index: int) -> None:
        try:
            barrier.wait()
            statuses[index] = wrong(f"guess{index}@example.com", "10.0.6.1").status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [401] * 10 + [429] * 6


# --- 2. sessions end at once -----------------------------------------------------------------


def test_every_token_carries_the_users_session_generation(make_user):
    user = make_user(email="ann@example.com")
    User.objects.filter(pk=user.pk).update(session_generation=7)
    pair = login("ann@example.com")
    assert AccessToken(pair["access"])["session_generation"] == 7  # type: ignore[arg-type]
    assert RefreshToken(pair["refresh"])["session_generation"] == 7  # type: ignore[arg-type]
    rotated = refresh(pair["refresh"]).json()
    assert AccessToken(rotated["access"])["session_generation"] == 7


def test_logout_ends_the_access_token_at_once(make_user):
    make_user(email="ann@example.com")
    pair = login("ann@example.com")
    client = bearer(pair["access"])
    assert client.get(ME).status_code == 200

    assert client.post(LOGOUT, {"refresh": pair["refresh"]}).status_code == 204

    denied = client.get(ME)
    assert denied.status_code == 401
    assert denied.json() == {"type": "client_error", "errors": [SESSION_ENDED]}


def test_password_change_ends_the_other_sessions_access_at_once(make_user):
    make_user(email="ann@example.com")
    this, other = login("ann@example.com"), login("ann@example.com")
    assert bearer(other["access"]).get(ME).status_code == 200

    response = bearer(this["access"]).post(
        CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    assert bearer(other["access"]).get(ME).json()["errors"] == [SESSION_ENDED]
    assert refresh(other["refresh"]).status_code == 401
    # The caller's session goes on: one refresh gives a pair of the new generation.
    renewed = refresh(this["refresh"])
    assert renewed.status_code == 200
    assert bearer(renewed.json()["access"]).get(ME).status_code == 200


def test_password_reset_ends_every_access_token_at_once(make_user):
    user = make_user(email="ann@example.com")
    phone, laptop = login("ann@example.com"), login("ann@example.com")
    user.refresh_from_db()  # reset tokens hash the last login
    body = {
        "uid": uid_encode(user),
        "token": password_reset_tokens.make_token(user),
        "new_password": NEW_PASSWORD,
    }

    assert APIClient().post(CONFIRM, body).status_code == 204

    for pair in (phone, laptop):
        assert bearer(pair["access"]).get(ME).json()["errors"] == [SESSION_ENDED]
        assert refresh(pair["refresh"]).status_code == 401


def test_a_lifted_suspension_does_not_bring_old_access_tokens_back(make_user, admin_user):
    user = make_user(email="ann@example.com")
    old = login("ann@example.com")
    services.user_suspend(actor=admin_user, user=user)
    services.user_reactivate(actor=admin_user, user=user)

    assert bearer(old["access"]).get(ME).json()["errors"] == [SESSION_ENDED]
    assert bearer(login("ann@example.com")["access"]).get(ME).status_code == 200


def test_a_token_made_before_generations_counts_as_generation_0(make_user):
    user = make_user(email="ann@example.com")
    legacy = client_for(user)  # simplejwt's own token: no session_generation claim
    assert legacy.get(ME).status_code == 200
    services.tokens_logout(user=user, refresh=login("ann@example.com")["refresh"])
    assert legacy.get(ME).json()["errors"] == [SESSION_ENDED]


def test_the_generation_wraps_within_its_column(make_user):
    user = make_user(email="ann@example.com")
    User.objects.filter(pk=user.pk).update(session_generation=32767)
    pair = login("ann@example.com")
    assert bearer(pair["access"]).post(LOGOUT, {"refresh": pair["refresh"]}).status_code == 204
    user.refresh_from_db()
    assert user.session_generation == 0
    assert bearer(login("ann@example.com")["access"]).get(ME).status_code == 200


# --- 2b. a replayed refresh token ends its descendants ---------------------------------------


def test_a_replayed_refresh_token_ends_its_descendants_and_every_session(make_user):
    make_user(email="ann@example.com")
    first, laptop = login("ann@example.com"), login("ann@example.com")
    second = refresh(first["refresh"]).json()  # the owner rotates: `first` is now spent
    third = refresh(second["refresh"]).json()

    replay = refresh(first["refresh"])  # someone else held a copy of `first`

    assert replay.status_code == 401
    assert replay.json()["errors"] == [BAD_REFRESH]
    for pair in (third, laptop):  # the descendant chain, and every other session
        assert refresh(pair["refresh"]).status_code == 401
        assert bearer(pair["access"]).get(ME).json()["errors"] == [SESSION_ENDED]
    assert bearer(login("ann@example.com")["access"]).get(ME).status_code == 200


def test_when_the_thief_rotates_first_the_owners_replay_ends_the_thiefs_chain(make_user):
    make_user(email="ann@example.com")
    stolen = login("ann@example.com")
    thief = refresh(stolen["refresh"]).json()

    assert refresh(stolen["refresh"]).status_code == 401  # the owner's app, a moment later

    assert refresh(thief["refresh"]).status_code == 401
    assert bearer(thief["access"]).get(ME).status_code == 401


def test_a_logged_out_refresh_token_presented_again_is_no_replay(make_user):
    make_user(email="ann@example.com")
    phone, laptop = login("ann@example.com"), login("ann@example.com")
    assert bearer(phone["access"]).post(LOGOUT, {"refresh": phone["refresh"]}).status_code == 204
    laptop = refresh(laptop["refresh"]).json()

    assert refresh(phone["refresh"]).status_code == 401  # a retry of the logged-out app

    assert bearer(laptop["access"]).get(ME).status_code == 200  # nothing else ended
    assert refresh(laptop["refresh"]).status_code == 200


def test_after_a_password_change_the_other_devices_retry_does_not_end_this_session(make_user):
    make_user(email="ann@example.com")
    this, other = login("ann@example.com"), login("ann@example.com")
    bearer(this["access"]).post(CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD})

    assert refresh(other["refresh"]).status_code == 401  # blacklisted by the change, not rotated

    assert refresh(this["refresh"]).status_code == 200


# --- 3. registration does not tell whether an account exists --------------------------------


def test_registration_answers_the_same_for_a_new_and_a_taken_address(
    make_user, django_capture_on_commit_callbacks
):
    make_user(email="ann@example.com", first_name="Ann")
    answers = []
    with django_capture_on_commit_callbacks(execute=True):
        for email in ("new@example.com", "ANN@example.com"):
            response = APIClient().post(REGISTER, {"email": email, "password": PASSWORD})
            body = response.json()
            assert body.pop("email") == email
            answers.append((response.status_code, body, set(response.headers)))

    assert answers[0] == answers[1]
    assert answers[0][0] == 202
    assert answers[0][1] == {
        "detail": "Check your inbox: we sent a message to this address to continue."
    }
    assert User.objects.filter(email__iexact="ann@example.com").count() == 1
    assert User.objects.filter(email="new@example.com").exists()
    subjects = {tuple(m.to): m.subject for m in mail.outbox}
    assert subjects == {
        ("new@example.com",): "Confirm your email address",
        ("ann@example.com",): "Someone tried to sign up with your email address",
    }


def test_the_owner_of_a_taken_address_gets_a_sign_in_and_a_working_reset_link(
    make_user, django_capture_on_commit_callbacks
):
    user = make_user(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        APIClient().post(REGISTER, {"email": "ann@example.com", "password": "another-pass-123"})
    (message,) = mail.outbox
    assert message.to == ["ann@example.com"]
    assert "if it was you, sign in" in message.body.lower()
    assert "http://localhost:3000/\n" in message.body
    link = next(w for w in message.body.split() if "/reset-password?" in w)
    assert link.replace("&", "&amp;") in html_of(message)
    query = dict(part.split("=", 1) for part in link.split("?", 1)[1].split("&"))

    response = APIClient().post(CONFIRM, {**query, "new_password": NEW_PASSWORD})

    assert response.status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_weak_password_is_refused_alike_for_a_taken_address(make_user):
    make_user(email="ann@example.com")
    answers = [
        APIClient().post(REGISTER, {"email": email, "password": "password123"}).json()
        for email in ("ann@example.com", "new@example.com")
    ]
    assert answers[0] == answers[1]
    assert answers[0]["errors"][0]["code"] == "invalid_password"


def test_a_suspended_accounts_address_gets_the_same_answer_and_no_email(
    make_user, django_capture_on_commit_callbacks
):
    make_user(email="sus@example.com", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(REGISTER, {"email": "sus@example.com", "password": PASSWORD})
    assert response.status_code == 202
    assert mail.outbox == []


def test_registration_is_throttled_by_email_across_addresses():
    for i in range(10):
        response = APIClient().post(
            REGISTER,
            {"email": "target@example.com", "password": PASSWORD},
            REMOTE_ADDR=f"10.1.0.{i}",
        )
        assert response.status_code == 202
    response = APIClient().post(
        REGISTER, {"email": "Target@example.com", "password": PASSWORD}, REMOTE_ADDR="10.1.1.1"
    )
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600


# --- 5. no email shows a name a stranger chose -----------------------------------------------


def test_a_strangers_chosen_name_is_never_in_an_email_to_the_address(
    django_capture_on_commit_callbacks,
):
    body = {
        "email": "victim@example.com",
        "password": PASSWORD,
        "first_name": EVIL,
        "last_name": "<a href='http://evil.example'>now</a>",
    }
    with django_capture_on_commit_callbacks(execute=True):
        APIClient().post(REGISTER, body)  # the account is made: a verification email
        APIClient().post(REGISTER, body, REMOTE_ADDR="10.2.0.1")  # taken now: the other email
        APIClient().post(RESET, {"email": "victim@example.com"})  # and a reset link

    assert [m.subject for m in mail.outbox] == [
        "Confirm your email address",
        "Someone tried to sign up with your email address",
        "Reset your password",
    ]
    for message in mail.outbox:
        assert message.to == ["victim@example.com"]
        for text in (message.subject, message.body, html_of(message)):
            assert "evil" not in text
            assert "Hello,\n" in message.body


# --- 4. security events: a JSON log record and a metric each ---------------------------------


def test_a_failed_login_is_logged_with_address_request_id_and_no_secret(make_user, events):
    user = make_user(email="ann@example.com")
    before = metric("login_failed")

    APIClient().post(
        TOKEN,
        {"email": "ann@example.com", "password": "hunter2-secret"},
        REMOTE_ADDR="10.3.0.1",
        HTTP_X_REQUEST_ID="req-sec-1",
    )

    (record,) = events("login_failed")
    assert record.levelname == "INFO"
    assert record.__dict__["client_ip"] == "10.3.0.1"
    assert record.__dict__["request_id"] == "req-sec-1"
    assert record.__dict__["user_id"] is None  # a failed login does not say whose account it is
    assert record.__dict__["email_hash"] == security.email_hash(" ANN@example.com")
    assert "hunter2" not in json.dumps(record.__dict__, default=str)
    assert "ann@example.com" not in json.dumps(record.__dict__, default=str)
    assert metric("login_failed") == before + 1
    assert user.pk  # (the account exists: still nothing in the record says so)


def test_a_throttled_login_is_logged_as_a_warning(make_user, events):
    for i in range(10):
        wrong(f"g{i}@example.com", "10.3.1.1")
    before = metric("login_throttled")
    assert wrong("g@example.com", "10.3.1.1").status_code == 429
    (record,) = events("login_throttled")
    assert record.levelname == "WARNING"
    assert record.__dict__["client_ip"] == "10.3.1.1"
    assert metric("login_throttled") == before + 1


def test_account_changes_are_logged_once_committed(
    make_user, admin_user, events, django_capture_on_commit_callbacks
):
    user = make_user(email="ann@example.com")
    admin = bearer(login("admin@example.com")["access"])
    ann = login("ann@example.com")
    headers: dict[str, Any] = {"REMOTE_ADDR": "10.3.2.1", "HTTP_X_REQUEST_ID": "req-sec-2"}
    with django_capture_on_commit_callbacks(execute=True):
        bearer(ann["access"]).post(
            CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, **headers
        )
        admin.patch(f"{USERS}{user.pk}/", {"role": "staff"}, **headers)
        admin.patch(f"{USERS}{user.pk}/", {"is_active": False}, **headers)
        admin.patch(f"{USERS}{user.pk}/", {"is_active": True}, **headers)
        APIClient().post(RESET, {"email": "ann@example.com"}, **headers)
        token = password_reset_tokens.make_token(User.objects.get(pk=user.pk))
        APIClient().post(
            CONFIRM,
            {"uid": uid_encode(user), "token": token, "new_password": "third-passphrase-77"},
            **headers,
        )
        APIClient().post(REGISTER, {"email": "ann@example.com", "password": PASSWORD}, **headers)

    # (The changes are logged when the captured commit callbacks run, at the end of the block.)
    logged = sorted((r.__dict__["event"], r.__dict__["user_id"] or 0) for r in events())
    assert logged == sorted(
        [
            ("password_changed", user.pk),
            ("role_changed", user.pk),
            ("account_suspended", user.pk),
            ("account_reactivated", user.pk),
            ("password_reset_requested", 0),
            ("password_reset_completed", user.pk),
            ("registration_existing_email", user.pk),
        ]
    )
    for record in events():
        assert record.__dict__["client_ip"] == "10.3.2.1", record.__dict__["event"]
        assert record.__dict__["request_id"] == "req-sec-2"
    (role,) = events("role_changed")
    assert (role.__dict__["old_role"], role.__dict__["new_role"]) == ("customer", "staff")
    assert role.__dict__["actor_id"] == admin_user.pk
    (suspended,) = events("account_suspended")
    assert suspended.levelname == "WARNING"


def test_a_change_that_rolls_back_logs_nothing(make_user, events):
    user = make_user(email="ann@example.com")
    client = bearer(login("ann@example.com")["access"])
    response = client.post(CHANGE, {"old_password": PASSWORD, "new_password": "12345678"})
    assert response.status_code == 400
    assert events("password_changed") == []
    user.refresh_from_db()
    assert user.session_generation == 0


def test_a_refresh_token_replay_is_logged(make_user, events):
    user = make_user(email="ann@example.com")
    pair = login("ann@example.com")
    refresh(pair["refresh"])
    before = metric("refresh_token_reused")

    APIClient().post(REFRESH, {"refresh": pair["refresh"]}, REMOTE_ADDR="10.3.3.1")

    (record,) = events("refresh_token_reused")
    assert record.levelname == "WARNING"
    assert (record.__dict__["user_id"], record.__dict__["client_ip"]) == (user.pk, "10.3.3.1")
    assert pair["refresh"] not in json.dumps(record.__dict__, default=str)
    assert metric("refresh_token_reused") == before + 1


def test_events_are_json_lines_with_the_documented_fields(events):
    logging_settings: Any = django_settings.LOGGING
    config = logging_settings["formatters"]["json"]
    formatter = JsonFormatter(config["fmt"], rename_fields=config["rename_fields"])

    security_event("login_failed", user=None, email_hash="abc")

    (record,) = events("login_failed")
    parsed = json.loads(formatter.format(record))
    assert parsed["logger"] == "shop.security"
    assert parsed["message"] == "login_failed"
    assert {"event", "user_id", "client_ip", "request_id", "email_hash"} <= set(parsed)


def test_security_event_redacts_secrets_and_never_raises(events, monkeypatch):
    security_event(
        "custom_event",
        password="hunter2",
        refresh_token="abc.def.ghi",
        otp_code="123456",
        msg="a field named like a LogRecord attribute",
        detail={"ok": True},
    )
    (record,) = events("custom_event")
    assert record.__dict__["password"] == "[redacted]"
    assert record.__dict__["refresh_token"] == "[redacted]"
    assert record.__dict__["otp_code"] == "[redacted]"
    assert record.__dict__["msg_"] == "a field named like a LogRecord attribute"

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(security.logger, "log", broken)
    security_event("login_failed")  # nothing raised
    security_event("login_failed", on_commit=True)


def test_metrics_export_the_security_events_counter(make_user, api_client, settings):
    settings.METRICS_TOKEN = ""
    make_user(email="ann@example.com")
    wrong("ann@example.com", "10.3.4.1")

    text = api_client.get("/metrics").content.decode()

    assert "# TYPE shop_security_events_total counter" in text
    for event in ("login_failed", "refresh_token_reused", "account_suspended"):
        assert f'shop_security_events_total{{event="{event}"}}' in text
