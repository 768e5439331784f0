"""Catalog GETs decide from the token alone for customers and from the database for staff
(inventory/api/authentication.py): the same on every worker of every node, nothing remembered."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import tokens_obtain, user_set_role, user_suspend
from accounts.tokens import token_pair_for

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def reader_of(user: User) -> APIClient:
    """A client with an access token as the API mints it (with the `role` claim)."""
    return bearer(token_pair_for(user).access)


def user_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if '"accounts_user"' in q["sql"]]


def assert_401(response, code: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "client_error"
    assert [error["code"] for error in body["errors"]] == [code]


@pytest.fixture
def hidden(make_product):
    """An inactive product: staff see it, anyone else gets 404."""
    return make_product(sku="HID-1", name="Hidden", is_active=False)


def test_a_customer_token_reads_the_catalog_without_a_user_query(make_user, product):
    client = reader_of(make_user(User.Role.CUSTOMER))
    for url in ("/api/v1/products/", f"/api/v1/products/{product.pk}/", "/api/v1/categories/"):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        assert user_queries(captured) == []
        # A customer gets what anyone gets: the public, cacheable response.
        assert response["Cache-Control"].startswith("public")


def test_a_customer_sees_exactly_what_an_anonymous_caller_sees(
    make_user, product, hidden, api_client
):
    client = reader_of(make_user(User.Role.CUSTOMER))
    assert client.get(f"/api/v1/products/{hidden.pk}/").status_code == 404
    assert client.get(f"/api/v1/products/{product.pk}/").json() == (
        api_client.get(f"/api/v1/products/{product.pk}/").json()
    )


def test_a_suspended_customers_token_still_reads_the_public_catalog_until_it_expires(
    make_user, admin_user, product
):
    """The one documented difference from the database check: public data only."""
    customer = make_user(User.Role.CUSTOMER)
    access = tokens_obtain(email=customer.email, password=PASSWORD).access
    client = bearer(access)
    user_suspend(actor=admin_user, user=customer)
    assert_401(client.get("/api/v1/users/me/"), "user_inactive")  # refused everywhere else
    response = client.get(f"/api/v1/products/{product.pk}/")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("public")
    # ...and not past the token's own expiry.
    later = datetime.now(tz=UTC) + timedelta(days=1)
    with mock.patch("rest_framework_simplejwt.tokens.aware_utcnow", return_value=later):
        assert_401(client.get(f"/api/v1/products/{product.pk}/"), "token_not_valid")


def test_a_suspended_staff_member_is_refused_on_the_next_catalog_read(
    make_user, admin_user, hidden
):
    staff = make_user(User.Role.STAFF)
    client = reader_of(staff)
    assert client.get(f"/api/v1/products/{hidden.pk}/").status_code == 200
    user_suspend(actor=admin_user, user=staff)
    assert_401(client.get(f"/api/v1/products/{hidden.pk}/"), "user_inactive")
    assert_401(client.get("/api/v1/products/"), "user_inactive")


def test_a_demoted_staff_member_loses_the_staff_view_on_the_next_catalog_read(
    make_user, admin_user, hidden
):
    staff = make_user(User.Role.STAFF)
    client = reader_of(staff)  # its token still says "staff"
    assert client.get(f"/api/v1/products/{hidden.pk}/").status_code == 200
    user_set_role(actor=admin_user, user=staff, role=User.Role.CUSTOMER)
    response = client.get(f"/api/v1/products/{hidden.pk}/")
    assert response.status_code == 404  # the database row decides, not the claim


def test_a_staff_token_is_checked_against_the_database_on_every_read(make_user, product):
    client = reader_of(make_user(User.Role.STAFF))
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/api/v1/products/{product.pk}/").status_code == 200
        assert len(user_queries(captured)) == 1


def test_a_token_without_a_role_claim_gets_the_full_check(make_user, admin_user, product):
    """Tokens minted before the claim existed, or by other code, are not taken at their word."""
    from rest_framework_simplejwt.tokens import AccessToken

    customer = make_user(User.Role.CUSTOMER)
    client = bearer(str(AccessToken.for_user(customer)))
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/api/v1/products/{product.pk}/").status_code == 200
    assert len(user_queries(captured)) == 1
    user_suspend(actor=admin_user, user=customer)
    assert_401(client.get(f"/api/v1/products/{product.pk}/"), "user_inactive")


def test_a_promoted_customers_old_token_reads_the_public_view_and_a_new_one_the_staff_view(
    make_user, admin_user, hidden
):
    customer = make_user(User.Role.CUSTOMER)
    old = reader_of(customer)
    user_set_role(actor=admin_user, user=customer, role=User.Role.STAFF)
    assert old.get(f"/api/v1/products/{hidden.pk}/").status_code == 404  # public data only
    customer.refresh_from_db()
    assert reader_of(customer).get(f"/api/v1/products/{hidden.pk}/").status_code == 200


def _tamper(access: str, **claims: object) -> str:
    """The token with its payload changed and the old signature kept."""
    header, payload, signature = access.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: _tamper(token_pair_for(user).access, role="customer"), id="role"),
        pytest.param(lambda user: _tamper(token_pair_for(user).access, user_id=999), id="user"),
        pytest.param(lambda user: token_pair_for(user).access[:-4] + "AAAA", id="signature"),
        pytest.param(lambda user: token_pair_for(user).refresh, id="refresh-token"),
        pytest.param(lambda user: "not-a-token", id="garbage"),
    ],
)
def test_a_bad_token_on_a_catalog_read_is_401_in_the_one_error_shape(
    make_user, product, make_token
):
    token = make_token(make_user(User.Role.STAFF))
    with CaptureQueriesContext(connection) as captured:
        response = bearer(token).get(f"/api/v1/products/{product.pk}/")
    assert_401(response, "token_not_valid")
    assert user_queries(captured) == []
    assert response["Cache-Control"] == "no-store"


def test_an_expired_customer_token_is_401(make_user, product):
    client = reader_of(make_user(User.Role.CUSTOMER))
    later = datetime.now(tz=UTC) + timedelta(days=1)
    with mock.patch("rest_framework_simplejwt.tokens.aware_utcnow", return_value=later):
        assert_401(client.get("/api/v1/products/"), "token_not_valid")


def test_a_customer_token_is_still_checked_in_full_on_catalog_writes(
    make_user, admin_user, product
):
    customer = make_user(User.Role.CUSTOMER)
    client = reader_of(customer)
    url, change = f"/api/v1/products/{product.pk}/", {"price_cents": 1}
    assert client.patch(url, change, format="json").status_code == 403
    user_suspend(actor=admin_user, user=customer)
    assert_401(client.patch(url, change, format="json"), "user_inactive")


# --- the fast check never takes what the full check refuses -----------------------------------


def _sign(header: dict[str, Any], payload: Any, key: str | bytes | None = None) -> bytes:
    import hashlib
    import hmac

    from django.conf import settings

    def part(value: bytes) -> bytes:
        return base64.urlsafe_b64encode(value).rstrip(b"=")

    signing_input = part(json.dumps(header).encode()) + b"." + part(json.dumps(payload).encode())
    secret = key if key is not None else settings.SECRET_KEY
    secret = secret.encode() if isinstance(secret, str) else secret
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return signing_input + b"." + part(signature)


def _full_check_takes(raw: bytes) -> bool:
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.tokens import AccessToken

    try:
        AccessToken(raw)  # type: ignore[arg-type]  # simplejwt takes the raw bytes too
    except TokenError:
        return False
    return True


def _token_variants(customer: User) -> dict[str, bytes]:
    from accounts.tokens import token_pair_for

    minted = token_pair_for(customer)
    access = minted.access.encode()
    header_part, payload_part, signature_part = access.split(b".")
    claims = json.loads(base64.urlsafe_b64decode(payload_part + b"=" * (-len(payload_part) % 4)))
    now = int(datetime.now(tz=UTC).timestamp())
    good = {"alg": "HS256", "typ": "JWT"}
    flipped = bytes([signature_part[0] ^ 1]) + signature_part[1:]
    return {
        "as minted": access,
        "resigned as minted": _sign(good, claims),
        "signature changed": header_part + b"." + payload_part + b"." + flipped,
        "another key": _sign(good, claims, key="another-key-" + "k" * 40),
        "alg none": _sign({"alg": "none", "typ": "JWT"}, claims),
        "alg HS512 header": _sign({"alg": "HS512", "typ": "JWT"}, claims),
        "expired": _sign(good, {**claims, "exp": now - 5}),
        "no exp": _sign(good, {k: v for k, v in claims.items() if k != "exp"}),
        "exp as text": _sign(good, {**claims, "exp": str(now + 600)}),
        "not yet valid (nbf)": _sign(good, {**claims, "nbf": now + 600}),
        "issued in the future": _sign(good, {**claims, "iat": now + 600}),
        "refresh type": _sign(good, {**claims, "token_type": "refresh"}),
        "no jti": _sign(good, {k: v for k, v in claims.items() if k != "jti"}),
        "no user id": _sign(good, {k: v for k, v in claims.items() if k != "user_id"}),
        "staff role": _sign(good, {**claims, "role": "staff"}),
        "no role": _sign(good, {k: v for k, v in claims.items() if k != "role"}),
        "extra header (kid)": _sign({**good, "kid": "1"}, claims),
        "payload a list": _sign(good, [claims]),
        "padding kept": access + b"=",
        "a non-alphabet character": access[:-3] + b"!" + access[-2:],
        "four segments": access + b".e30",
        "two segments": header_part + b"." + payload_part,
        "empty": b"",
    }


def test_the_fast_check_takes_only_valid_customer_tokens_the_full_check_takes(customer):
    from inventory.api.authentication import fast_customer_claims

    taken = {}
    for name, raw in _token_variants(customer).items():
        claims = fast_customer_claims(raw)
        if claims is not None:
            assert _full_check_takes(raw), name
        taken[name] = claims is not None
    assert {name for name, ok in taken.items() if ok} == {"as minted", "resigned as minted"}


def test_a_token_the_fast_check_refuses_still_gets_the_full_checks_answer(
    customer, api_client, product
):
    """On a cached URL, an expired customer token is the 401 of the full check, a staff-role
    token of a customer the full check's database answer: never a cached public body."""
    url = f"/api/v1/products/{product.pk}/"
    assert api_client.get(url).status_code == 200  # cached now
    variants = _token_variants(customer)
    expired = api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {variants['expired'].decode()}")
    assert expired.status_code == 401
    forged = api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {variants['another key'].decode()}")
    assert forged.status_code == 401
