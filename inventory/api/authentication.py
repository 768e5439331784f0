"""JWT authentication for catalog reads, without a database query on every request.

A catalog GET needs to know only whether the caller is staff (staff also see inactive products
and thresholds); customers get exactly what anonymous users get. So for safe methods on catalog
endpoints, a token that was fully checked (signature, expiry, user exists and is active, and any
other check simplejwt is configured to make) is remembered in this process for a few seconds
(never past its own expiry). A suspension or role change therefore reaches catalog *reads*
within `TTL_SECONDS`; every write, and every other endpoint, checks the user on each request.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000

# raw token -> (remember until, wall-clock expiry of the token, (user, validated token))
_checked: dict[bytes, tuple[float, float, tuple[Any, Any]]] = {}


class CatalogReadJWTAuthentication(JWTAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = self.get_header(request)
        if not header:
            return None
        raw_token = self.get_raw_token(header)
        if raw_token is None:
            return None
        hit = _checked.get(raw_token)
        if hit is not None and hit[0] > time.monotonic() and hit[1] > time.time():
            return hit[2]
        validated_token = self.get_validated_token(raw_token)
        result = (self.get_user(validated_token), validated_token)
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
