"""JWT authentication for catalog reads, without a database query on every request.

A catalog GET needs to know only whether the caller is staff (staff also see inactive products
and thresholds); customers get exactly what anonymous users get. So for safe methods on catalog
endpoints, a token that was fully checked (signature, expiry, user exists and is active, and any
other check simplejwt is configured to make) is remembered in this process for a few seconds.
A suspension or role change therefore reaches catalog *reads* within `TTL_SECONDS`; every write,
and every other endpoint, checks the user on each request as usual.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import Token

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000

_checked: dict[str, tuple[float, Any]] = {}


class CatalogReadJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token: Token) -> Any:
        key = str(validated_token.get("jti") or validated_token)
        now = time.monotonic()
        hit = _checked.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = super().get_user(validated_token)
        if len(_checked) >= MAX_ENTRIES:
            _checked.clear()
        _checked[key] = (now + TTL_SECONDS, user)
        return user


def forget_checked_tokens() -> None:
    """Empty the per-process memory (tests)."""
    _checked.clear()
