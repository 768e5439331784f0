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

from rest_framework_simplejwt.exceptions import InvalidToken
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


class CatalogReadJWTAuthentication(JWTAuthentication):
    """See the module's doc. Errors keep `JWTAuthentication`'s one shape (it wraps this
    `get_user` too)."""

    def get_user(self, validated_token: Token) -> Any:
        if validated_token.get(ROLE_CLAIM) == User.Role.CUSTOMER:
            if api_settings.USER_ID_CLAIM not in validated_token:
                raise InvalidToken("Token contained no recognizable user identification")
            return CatalogReader(validated_token)
        return super().get_user(validated_token)
