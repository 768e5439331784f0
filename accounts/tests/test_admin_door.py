"""The admin door: failed sign-ins are limited per address and per (address, account) without
hashing a password once over the limit, the counters fail open, and TOTP two-factor sign-in
(enrolment, codes at sign-in, recovery codes, ADMIN_2FA_REQUIRED, turning it off, admins
removing a device)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.contrib.auth import base_user, hashers
from django.test import Client, override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts.models import User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
TWO_FACTOR = "/admin/two-factor/"
RECOVERY_CODE = "abcd2345efgh"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def rates(settings):
    """Set the sign-in failure rates the admin shares with the API (per address, per address
    and account)."""

    def set_rates(address: str = "100/hour", account: str = "100/hour") -> None:
        framework = settings.REST_FRAMEWORK
        settings.REST_FRAMEWORK = {
            **framework,
            "DEFAULT_THROTTLE_RATES": {
                **framework["DEFAULT_THROTTLE_RATES"],
                "login": address,
                "login_account": account,
            },
        }

    return set_rates


@pytest.fixture
def hasher_calls(monkeypatch) -> list[str]:
    """Every password check (the stand-in for Argon2's second of CPU)."""
    calls: list[str] = []
    original = hashers.check_password

    def spy(password: Any, encoded: Any, *args: Any, **kwargs: Any) -> bool:
        calls.append(str(password))
        return original(password, encoded, *args, **kwargs)

    monkeypatch.setattr(hashers, "check_password", spy)
    monkeypatch.setattr(base_user, "check_password", spy)  # what User.check_password calls
    return calls


@pytest.fixture
def no_device_backoff(settings) -> None:
    """django-otp's own back-off after a wrong code would refuse the next right one for 1 s."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def sign_in(email: str, password: str = PASSWORD, *, code: str = "", address: str = "10.0.0.1",
            client: Client | None = None, **extra: Any) -> Any:  # fmt: skip
    return (client or Client()).post(
        LOGIN,
        {"username": email, "password": password, "otp_token": code, "next": "/admin/"},
        REMOTE_ADDR=address,
        **extra,
    )


def signed_in(response: Any) -> bool:
    return bool(response.status_code == 302 and response["Location"] == "/admin/")


def enrol(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    recovery = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    recovery.token_set.create(token=RECOVERY_CODE)
    return device


def code_for(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def assert_too_many_attempts(response: Any) -> None:
    assert response.status_code == 429
    html = response.content.decode()
    assert re.search(r"Too many attempts, try again in \d+ minutes?\.", html), html
    assert 0 < int(response["Retry-After"]) <= 3600
    assert "no-store" in response["Cache-Control"]
    assert 'id="login-form"' in html  # still the admin login page


# --- failures are limited -------------------------------------------------------------------


def test_wrong_passwords_from_one_address_block_even_the_right_one_without_hashing(
    staff, rates, hasher_calls
):
    rates(address="5/hour")
    for attempt in range(5):
        response = sign_in(staff.email, f"wrong-{attempt}")
        assert response.status_code == 200
        assert not response.wsgi_request.user.is_authenticated
    assert len(hasher_calls) == 5

    response = sign_in(staff.email, PASSWORD)
    assert_too_many_attempts(response)
    assert len(hasher_calls) == 5  # the password was not checked at all
    assert "_auth_user_id" not in response.wsgi_request.session

    # Another address with the right password gets in (and its password is checked once).
    assert signed_in(sign_in(staff.email, PASSWORD, address="10.0.0.2"))
    assert len(hasher_calls) == 6


def test_failures_per_address_and_account(make_user, rates):
    rates(address="100/hour", account="3/hour")
    ann = make_user(User.Role.STAFF, email="ann@example.com")
    bob = make_user(User.Role.STAFF, email="bob@example.com")
    for _ in range(3):
        assert sign_in(" ANN@example.com", "wrong").status_code == 200
    assert_too_many_attempts(sign_in(ann.email))
    # The same address may still sign in to another account, and ann from elsewhere.
    assert signed_in(sign_in(bob.email))
    assert signed_in(sign_in(ann.email, address="10.0.0.9"))


def test_only_failures_count(staff, rates):
    rates(address="2/hour", account="2/hour")
    for _ in range(4):
        assert signed_in(sign_in(staff.email))
    assert sign_in(staff.email, "wrong").status_code == 200
    assert signed_in(sign_in(staff.email))
    assert sign_in(staff.email, "wrong").status_code == 200
    assert_too_many_attempts(sign_in(staff.email))


def test_the_admin_and_the_api_count_failures_together(staff, rates):
    rates(address="3/hour")
    api = APIClient()
    for _ in range(2):
        response = api.post(
            "/api/v1/auth/token/",
            {"email": staff.email, "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
        )
        assert response.status_code == 401
    assert sign_in(staff.email, "wrong").status_code == 200
    assert_too_many_attempts(sign_in(staff.email))


def test_a_customer_or_a_blank_form_is_no_way_round(customer, rates, hasher_calls):
    rates(address="2/hour")
    # A customer's right password fails the admin login: a failure like any other.
    assert sign_in(customer.email).status_code == 200
    assert sign_in(customer.email).status_code == 200
    assert_too_many_attempts(sign_in(customer.email))
    assert_too_many_attempts(sign_in("", ""))  # no form is read over the limit


def test_the_client_address_is_the_apis_x_forwarded_for_is_trusted_only_behind_proxies(
    staff, rates, settings
):
    rates(address="2/hour")
    for forged in ("1.2.3.4", "5.6.7.8"):
        assert sign_in(staff.email, "wrong", HTTP_X_FORWARDED_FOR=forged).status_code == 200
    # No proxies in front (NUM_PROXIES=0): a forged header does not buy fresh attempts.
    assert_too_many_attempts(sign_in(staff.email, HTTP_X_FORWARDED_FOR="9.9.9.9"))

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.1.1.1"
    for _ in range(2):
        response = sign_in(staff.email, "wrong", address=proxy, HTTP_X_FORWARDED_FOR="7.7.7.7")
        assert response.status_code == 200
    assert_too_many_attempts(sign_in(staff.email, address=proxy, HTTP_X_FORWARDED_FOR="7.7.7.7"))
    assert signed_in(sign_in(staff.email, address=proxy, HTTP_X_FORWARDED_FOR="8.8.8.8"))


def test_with_the_throttle_store_unreachable_sign_in_fails_open(staff, rates, settings, caplog):
    rates(address="1/hour", account="1/hour")
    unreachable = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": UNREACHABLE_REDIS,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    with override_settings(CACHES={**settings.CACHES, "throttles": unreachable}):
        for _ in range(3):
            assert sign_in(staff.email, "wrong").status_code == 200
        assert signed_in(sign_in(staff.email))
    assert "throttle store unreachable" in caplog.text


def test_the_login_page_renders_with_the_code_field(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert 'name="otp_token"' in response.content.decode()


# --- two-factor sign-in ---------------------------------------------------------------------


def test_enrolment_shows_a_qr_code_and_confirms_with_a_code(client, staff, no_device_backoff):
    client.force_login(staff)
    page = client.get(TWO_FACTOR)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml' in html  # the QR code, inline: no outside request
    assert "http://" not in html.split('id="totp-qr-code"')[1].split(">")[0]
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    assert client.get(TWO_FACTOR).context["key"]  # reloading shows the same device
    assert TOTPDevice.objects.filter(user=staff).count() == 1

    wrong = client.post(TWO_FACTOR, {"code": "000000" if code_for(device) != "000000" else "1"})
    assert wrong.status_code == 200
    assert wrong.context["form"].errors
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed

    confirmed = client.post(TWO_FACTOR, {"code": code_for(device)})
    assert confirmed.status_code == 200
    codes = confirmed.context["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    html = confirmed.content.decode()
    assert all(code in html for code in codes)
    assert "no-store" in confirmed["Cache-Control"]
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert StaticToken.objects.filter(device__user=staff).count() == 10
    # This session signed in with the new device: the admin stays open.
    assert client.get("/admin/").status_code == 200
    # The codes are never shown again.
    again = client.get(TWO_FACTOR).content.decode()
    assert not any(code in again for code in codes)


def test_sign_in_with_a_device_needs_a_valid_code(staff, rates, no_device_backoff, hasher_calls):
    rates(address="100/hour", account="100/hour")
    device = enrol(staff)
    without = sign_in(staff.email)
    assert without.status_code == 200
    assert "enter the 6-digit code" in without.content.decode()
    assert "_auth_user_id" not in without.wsgi_request.session

    wrong = sign_in(staff.email, code="123456" if code_for(device) != "123456" else "654321")
    assert wrong.status_code == 200
    assert "That two-factor code is not right" in wrong.content.decode()

    client = Client()
    assert signed_in(sign_in(staff.email, code=code_for(device), client=client))
    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_is_a_counted_failure(staff, rates, no_device_backoff):
    rates(address="100/hour", account="2/hour")
    device = enrol(staff)
    for _ in range(2):
        assert sign_in(staff.email, code="999999x").status_code == 200
    assert_too_many_attempts(sign_in(staff.email, code=code_for(device)))


def test_a_recovery_code_works_once(staff, no_device_backoff):
    enrol(staff)
    client = Client()
    response = sign_in(staff.email, code=f" {RECOVERY_CODE.upper()} ", client=client)
    assert signed_in(response)
    index = client.get("/admin/", follow=True)
    assert index.status_code == 200
    assert "You signed in with a recovery code; 0 left" in index.content.decode()

    again = sign_in(staff.email, code=RECOVERY_CODE)
    assert again.status_code == 200
    assert "already used" in again.content.decode()


def test_a_session_without_the_second_factor_is_not_staff(client, staff):
    enrol(staff)
    client.force_login(staff)  # a password-only session (e.g. from before enrolment)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "without your two-factor code" in client.get("/admin/login/").content.decode()


def test_required_two_factor_sends_staff_to_enrolment_first(client, staff, settings):
    client.force_login(staff)
    settings.ADMIN_2FA_REQUIRED = False
    assert client.get("/admin/").status_code == 200

    settings.ADMIN_2FA_REQUIRED = True
    for page in ("/admin/", "/admin/inventory/product/", "/admin/password_change/"):
        response = client.get(page)
        assert response.status_code == 302, page
        assert response["Location"] == f"{TWO_FACTOR}?next={page.replace('/', '%2F')}"
    enrolment = client.get(f"{TWO_FACTOR}?next=/admin/inventory/product/")
    assert enrolment.status_code == 200
    assert "requires two-factor sign-in" in enrolment.content.decode()
    assert enrolment.context["next"] == "/admin/inventory/product/"
    # Signing out still works; customers and anonymous visitors meet the login page as before.
    assert client.post("/admin/logout/").status_code == 200
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_required_two_factor_lets_an_enrolled_admin_in(admin_user, settings):
    settings.ADMIN_2FA_REQUIRED = True
    device = enrol(admin_user)
    client = Client()
    assert signed_in(sign_in(admin_user.email, code=code_for(device), client=client))
    assert client.get("/admin/").status_code == 200


def test_turning_two_factor_off_takes_a_valid_code(staff, no_device_backoff):
    device = enrol(staff)
    client = Client()
    assert signed_in(sign_in(staff.email, code=code_for(device), client=client))
    page = client.get(TWO_FACTOR)
    assert page.status_code == 200
    assert page.context["state"] == "on"

    assert client.post(TWO_FACTOR, {"code": "abcdefgh"}).status_code == 200
    assert TOTPDevice.objects.filter(user=staff).exists()
    # The code just used at sign-in is spent; the next one is accepted.
    response = client.post(TWO_FACTOR, {"code": code_for(device, steps_ahead=1)})
    assert response.status_code == 302
    assert response["Location"] == TWO_FACTOR
    assert not TOTPDevice.objects.filter(user=staff, confirmed=True).exists()
    assert not StaticDevice.objects.filter(user=staff).exists()
    # Off: the enrolment page again, with a new key.
    assert client.get(TWO_FACTOR).context["state"] == "enrol"


def test_admins_remove_another_users_device_in_the_admin(client, admin_user, staff):
    device = enrol(staff)
    changelist = "/admin/otp_totp/totpdevice/"
    other = Client()
    other.force_login(staff)  # staff have no device (and no verified session) here: no access
    assert other.get(changelist).status_code in {302, 403}

    client.force_login(admin_user)
    listing = client.get(changelist)
    assert listing.status_code == 200
    assert staff.email in listing.content.decode()
    assert device.key not in listing.content.decode()
    detail = client.get(f"{changelist}{device.pk}/change/")
    assert detail.status_code == 200
    assert device.key not in detail.content.decode()
    assert client.get(f"{changelist}add/").status_code == 403

    response = client.post(f"{changelist}{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert not StaticDevice.objects.filter(user=staff).exists()
    # django-otp's own device admins (keys, QR codes, recovery codes) are not there.
    assert client.get("/admin/otp_static/staticdevice/").status_code == 404


def test_staff_who_are_not_admins_do_not_see_the_device_admin(make_user):
    staff = make_user(User.Role.STAFF, email="sue@example.com")
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 403
    assert "totpdevice" not in client.get("/admin/").content.decode()


# --- security events --------------------------------------------------------------------------


@pytest.fixture
def security_log(caplog):
    import logging

    caplog.set_level(logging.INFO, logger="shop.security")
    return lambda: [
        (r.__dict__["event"], r.__dict__.get("channel"), r.__dict__.get("client_ip"))
        for r in caplog.records
        if r.name == "shop.security"
    ]


def test_admin_sign_in_failures_and_throttling_are_security_events(staff, rates, security_log):
    rates(address="2/hour")
    sign_in(staff.email, "wrong", address="10.9.9.9")
    sign_in(staff.email, "wrong", address="10.9.9.9")
    assert_too_many_attempts(sign_in(staff.email, address="10.9.9.9"))
    assert security_log() == [
        ("login_failed", "admin", "10.9.9.9"),
        ("login_failed", "admin", "10.9.9.9"),
        ("login_throttled", "admin", "10.9.9.9"),
    ]


def test_two_factor_enrolment_failure_and_removal_are_security_events(
    client, staff, admin_user, no_device_backoff, security_log
):
    client.force_login(staff)
    client.get(TWO_FACTOR)
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    client.post(TWO_FACTOR, {"code": "000000" if code_for(device) != "000000" else "1"})
    client.post(TWO_FACTOR, {"code": code_for(device)})
    assert [event for event, *_ in security_log()] == ["two_factor_failed", "two_factor_enrolled"]

    bad = sign_in(staff.email, code="000000" if code_for(device) != "000000" else "1")
    assert not signed_in(bad)
    assert "two_factor_failed" in [event for event, *_ in security_log()][2:]

    admin = Client()
    admin.force_login(admin_user)
    admin.post(
        f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}, REMOTE_ADDR="10.1.1.1"
    )
    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert security_log()[-1] == ("two_factor_removed", None, "10.1.1.1")
