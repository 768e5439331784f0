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

from typing import Any

from django.http import HttpRequest
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


class CatalogReadJWTAuthentication(JWTAuthentication):
    """See the module's doc. Errors keep `JWTAuthentication`'s one shape (it wraps this
    `get_user` too)."""

    def get_user(self, validated_token: Token) -> Any:
        reader = customer_reader(validated_token)
        return reader if reader is not None else super().get_user(validated_token)

    def customer(self, request: HttpRequest) -> CatalogReader | None:
        """The customer whose bearer token `request` carries, verified exactly as
        `authenticate` verifies it; None when it carries none, or a staff, admin or no-role
        token, or one that does not verify (the request's view answers those: its 401)."""
        header = self.get_header(request)  # type: ignore[arg-type]  # reads META only
        try:
            raw = None if header is None else self.get_raw_token(header)
            return None if raw is None else customer_reader(self.get_validated_token(raw))
        except (InvalidToken, AuthenticationFailed):
            return None
