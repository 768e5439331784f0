"""Scoped throttles for the sensitive endpoints: by client IP and by the email address tried.

Rates are the `login`, `register`, `password_reset` and `verify_resend` scopes of
`REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`. The email is stored hashed in the cache key. The
client IP is `REMOTE_ADDR` unless `NUM_PROXIES` says how many proxies in front to trust, so a
forged `X-Forwarded-For` header does not buy fresh attempts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from rest_framework.request import Request
from rest_framework.views import APIView

from common.throttling import SimpleRateThrottle


class _ByIPThrottle(SimpleRateThrottle):
    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _ByEmailThrottle(SimpleRateThrottle):
    def get_email(self, request: Request) -> str | None:
        data = request.data
        value = data.get("email") if isinstance(data, Mapping) else None
        return value if isinstance(value, str) else None

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        email = self.get_email(request)
        if not email or not email.strip():
            return None
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": f"{self.scope}_email", "ident": digest}


class LoginIPThrottle(_ByIPThrottle):
    scope = "login"


class LoginEmailThrottle(_ByEmailThrottle):
    scope = "login"


class RegisterIPThrottle(_ByIPThrottle):
    scope = "register"


class PasswordResetIPThrottle(_ByIPThrottle):
    scope = "password_reset"


class PasswordResetEmailThrottle(_ByEmailThrottle):
    scope = "password_reset"


class VerifyResendIPThrottle(_ByIPThrottle):
    scope = "verify_resend"


class VerifyResendEmailThrottle(_ByEmailThrottle):
    """By the signed-in user's own address (the endpoint takes no body)."""

    scope = "verify_resend"

    def get_email(self, request: Request) -> str | None:
        email = getattr(request.user, "email", None)
        return email if isinstance(email, str) else None
