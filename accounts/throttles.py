"""Throttles of the sensitive endpoints: failed sign-ins, and requests by client IP and email.

Rates are the `login`, `login_account`, `register`, `password_reset` and `verify_resend` scopes
of `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`. An email is stored hashed in a cache key. The
client IP is `REMOTE_ADDR` unless `NUM_PROXIES` says how many proxies in front to trust, so a
forged `X-Forwarded-For` header does not buy fresh attempts.

Sign-in (`LoginFailureLimit`) counts *failures*, per client address (`login`) and per (address,
email) (`login_account`), never per email alone: a storm of wrong passwords for one account from
other addresses cannot lock its owner out, and a right password from an address that has not
been failing always gets through. Each attempt takes a slot in both counters before the password
is checked (an atomic increment, so parallel guesses cannot all slip in under the limit); a
successful sign-in gives its slots back, a failure keeps them. Counts are per fixed window of the
rate's period, opened by the first request counted; over a limit the answer is 429 with
`Retry-After` (the rest of the window). Every counter here is one integer in Redis for the whole
deployment, counted in one round trip, failing open (common/throttling.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from rest_framework.request import Request
from rest_framework.views import APIView

from common.throttling import Attempt, FailureLimit, SimpleRateThrottle, digest, rate_of

# The per-(address, email) rate when the settings name none (`login_account`).
DEFAULT_LOGIN_ACCOUNT_RATE = "5/min"


class LoginFailureLimit(FailureLimit):
    """Failed sign-ins per client address and per (address, email); see the module's doc.

    `begin(address=..., email=...)` raises `Throttled` (429, `Retry-After`) over either limit
    and otherwise returns the `Attempt` to end with `failed()` or `succeeded()`.
    """

    scope = "login"

    def begin(self, *, address: str, email: str) -> Attempt:
        return self._begin(self.limits(address=address, email=email))

    def limits(self, *, address: str, email: str) -> list[tuple[str, int, int]]:
        """(key prefix, number, seconds) of each counter the attempt is held to."""
        address_number, address_seconds = rate_of("login")
        account_number, account_seconds = rate_of("login_account", DEFAULT_LOGIN_ACCOUNT_RATE)
        account = email.strip().lower()
        return [
            (
                f"throttle_login_failures_address_{digest(address)}",
                address_number,
                address_seconds,
            ),
            (
                f"throttle_login_failures_account_{digest(address, account)}",
                account_number,
                account_seconds,
            ),
        ]


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


class RegisterIPThrottle(_ByIPThrottle):
    scope = "register"


class RegisterEmailThrottle(_ByEmailThrottle):
    """Bounds the emails one address receives from sign-up attempts (new or existing account
    alike, so the 429 tells nothing about the account)."""

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
