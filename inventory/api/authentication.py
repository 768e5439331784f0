"""JWT authentication for catalog reads: a customer's token is taken at its word, a staff
member's is checked against the database on every request.

A catalog GET needs to know only whether the caller is staff (staff also see inactive products
and thresholds); a customer gets exactly what an anonymous caller gets. So for safe methods on
catalog endpoints (inventory.api.views.CatalogReadMixin):

- The token is verified as everywhere: signature, expiry, token type (an access token). A bad,
  expired or tampered token is a 401 in the one error shape.
- A token whose `role` claim (accounts/tokens.py) is `customer` is accepted without a database
  query: the user is a `CatalogReader` built from the token (signed in, with the token's user id
  for the `user` throttle, never staff: `accounts.permissions.is_staff_user` is False for it).
- Any other token (`staff`, `admin`, or no role claim) gets the full check of
  `accounts.authentication.JWTAuthentication` (the user exists, is not suspended, the token's
  session generation is current) on every request, so a suspended or demoted staff member loses
  the staff view at once; what they see then follows the database row, never the claim.

The one allowed difference from the full check: a customer token that no longer authenticates
elsewhere (the account suspended or deleted, the session logged out, the password changed) may
still read what anyone may read, the public catalog, until the token expires
(`JWT_ACCESS_MINUTES`). Likewise a customer promoted to staff sees the public catalog with a token
minted before the promotion (a role change does not end sessions) until they refresh it. Nothing
is remembered between requests: every worker of every node decides the same way from the token
alone. Every write and every other endpoint checks the database on each request.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import Any

import orjson
from django.http import HttpRequest
from django.utils.encoding import force_bytes
from jwt.algorithms import HMACAlgorithm
from rest_framework_simplejwt import tokens as jwt_tokens
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from accounts.authentication import JWTAuthentication
from accounts.models import User

ROLE_CLAIM = "role"


class CatalogReader(TokenUser):
    """A customer known from a valid token alone: signed in, never staff, no database row."""

    is_staff = False
    is_superuser = False


def customer_reader(validated_token: Token) -> CatalogReader | None:
    """The customer a verified token names, taken at its word; None for any other role."""
    if validated_token.get(ROLE_CLAIM) != User.Role.CUSTOMER:
        return None
    if api_settings.USER_ID_CLAIM not in validated_token:
        raise InvalidToken("Token contained no recognizable user identification")
    return CatalogReader(validated_token)


# --- the fast check of a customer's token -------------------------------------------------------
# The full check (simplejwt over PyJWT) costs a catalog read as much as a tenth of its time, most
# of it in PyJWT's per-character checks of each segment and its re-examination of the key on
# every decode. A catalog read needs only to know that a token is a valid customer access token;
# `fast_customer_claims` answers exactly that, with the same rules, and answers None for anything
# else, which then goes through the full check (and its 401). So it can only ever take a token
# the full check takes (inventory/tests/test_catalog_auth.py holds the two side by side on valid,
# forged, expired, malformed and other-typed tokens).
_SEGMENT = re.compile(rb"[A-Za-z0-9_-]+")
_HS256 = HMACAlgorithm(HMACAlgorithm.SHA256)


@functools.cache
def _hs256_key() -> bytes | None:
    """The key when tokens are HMAC-SHA256 with simplejwt's shared key and no audience, issuer or
    JWKS; None for any other setup (then every token takes the full check)."""
    settings = api_settings
    if (settings.ALGORITHM, settings.AUDIENCE, settings.ISSUER, settings.JWK_URL) != (
        "HS256",
        None,
        None,
        None,
    ):
        return None
    return force_bytes(settings.SIGNING_KEY) or None


def _segment(part: bytes) -> bytes:
    if not _SEGMENT.fullmatch(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _current(claims: Mapping[str, Any], now: float) -> bool:
    """PyJWT's and simplejwt's time rules: `exp` required and in the future; `nbf` and `iat`,
    when present, not in the future (with the configured leeway). Only numbers are taken."""
    setting = api_settings.LEEWAY
    leeway = float(setting.total_seconds() if hasattr(setting, "total_seconds") else setting or 0)
    exp: Any = claims.get("exp")
    nbf: Any = claims.get("nbf", now)
    iat: Any = claims.get("iat", now)
    if not all(_number(value) for value in (exp, nbf, iat)):
        return False
    return bool(now < exp + leeway and nbf <= now + leeway and iat <= now + leeway)


# The header simplejwt writes; any other header parameter (`kid`, `crit`, `b64`, ...) takes the
# full check.
_HEADER_KEYS = frozenset({"alg", "typ"})


def fast_customer_claims(raw: bytes) -> dict[str, Any] | None:
    """The claims of a valid customer access token (signature, `alg`, time claims, token type,
    id and user id as the full check requires them); None for anything else."""
    key = _hs256_key()
    if key is None:
        return None
    try:
        header_part, payload_part, signature_part = raw.split(b".")
        header = orjson.loads(_segment(header_part))
        signature = _segment(signature_part)
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            return None
        if not header.keys() <= _HEADER_KEYS or header.get("typ", "JWT") != "JWT":
            return None
        if not _HS256.verify(header_part + b"." + payload_part, key, signature):
            return None
        claims = orjson.loads(_segment(payload_part))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        return None
    if not (
        isinstance(claims, dict)
        # simplejwt's clock (as its tokens module reads it), so both checks agree on the time.
        and _current(claims, jwt_tokens.aware_utcnow().timestamp())  # type: ignore[attr-defined]
        and claims.get(api_settings.TOKEN_TYPE_CLAIM) == "access"
        and api_settings.JTI_CLAIM in claims
        and api_settings.USER_ID_CLAIM in claims
        and claims.get(ROLE_CLAIM) == User.Role.CUSTOMER
    ):
        return None
    return claims


class CatalogReadJWTAuthentication(JWTAuthentication):
    """See the module's doc. Errors keep `JWTAuthentication`'s one shape (it wraps this
    `get_user` too)."""

    def get_user(self, validated_token: Token) -> Any:
        reader = customer_reader(validated_token)
        return reader if reader is not None else super().get_user(validated_token)

    def customer(self, request: HttpRequest) -> CatalogReader | None:
        """The customer whose bearer token `request` carries, verified as `authenticate`
        verifies it; None when it carries none, or a staff, admin or no-role token, or one that
        does not verify (the request's view answers those: its 401)."""
        header = self.get_header(request)  # type: ignore[arg-type]  # reads META only
        try:
            raw = None if header is None else self.get_raw_token(header)
        except AuthenticationFailed:
            return None
        claims = None if raw is None else fast_customer_claims(raw)
        return None if claims is None else CatalogReader(claims)  # type: ignore[arg-type]
