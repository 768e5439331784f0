"""JWT authentication for catalog reads, without a database query on every request.

A catalog GET needs to know only whether the caller is staff (staff also see inactive products
and thresholds); a customer gets exactly what an anonymous caller gets. So for safe methods on
catalog endpoints, a customer's token that passed the full check (signature, expiry, user exists
and is not suspended: `accounts.authentication.JWTAuthentication`) is remembered in this process
for a few seconds, never past its own expiry. Staff tokens are never remembered: they are
checked against the database on every request, so a suspended or demoted staff member loses the
staff view at once. A suspended customer's token may still read the public catalog (what anyone
may read) for up to `TTL_SECONDS`; every write and every other endpoint checks on each request.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework.request import Request

from accounts.authentication import JWTAuthentication
from accounts.permissions import is_staff_user

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000

# raw token -> (remember until, wall-clock expiry of the token, (user, validated token))
_checked: dict[bytes, tuple[float, float, tuple[Any, Any]]] = {}


class CatalogReadJWTAuthentication(JWTAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header else None
        if raw_token is None:
            return None
        hit = _checked.get(raw_token)
        if hit is not None and hit[0] > time.monotonic() and hit[1] > time.time():
            return hit[2]
        # The full check (accounts' class), errors in the one shape.
        result: tuple[Any, Any] | None = super().authenticate(request)
        if result is None:
            return None
        user, validated_token = result
        if not is_staff_user(user):
            if len(_checked) >= MAX_ENTRIES:
                _checked.clear()
            _checked[raw_token] = (
                time.monotonic() + TTL_SECONDS,
                float(validated_token.get("exp", 0)),
                result,
            )
        return result


def forget_checked_tokens() -> None:
    """Empty the per-process memory (tests)."""
    _checked.clear()
