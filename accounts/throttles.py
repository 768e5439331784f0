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
rate's period; over a limit the answer is 429 with `Retry-After` (the rest of the window).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.cache import BaseCache, caches
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from common.throttling import SimpleRateThrottle, logger

# The per-(address, email) rate when the settings name none (`login_account`).
DEFAULT_LOGIN_ACCOUNT_RATE = "5/min"


def _rate(scope: str, default: str | None = None) -> tuple[int, int]:
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope) or default
    if not isinstance(rate, str):
        raise KeyError(f"No throttle rate for the {scope!r} scope.")
    number, period = rate.split("/")  # DRF's format: "10/min", "5/hour"...
    return int(number), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass
class LoginAttempt:
    """A sign-in let through the failure limits, holding a slot in each counter until it ends."""

    cache: BaseCache | None = None
    keys: list[str] = field(default_factory=list)

    def failed(self) -> None:
        """The slots stay taken: they are the failure counted."""
        self.keys = []

    def succeeded(self) -> None:
        """A right password counts nothing: its slots are given back."""
        self.release()

    def release(self) -> None:
        keys, self.keys = self.keys, []
        if self.cache is None:
            return
        for key in keys:
            # Expired meanwhile, or the store went away: nothing to give back.
            with contextlib.suppress(Exception):
                self.cache.decr(key)


class LoginFailureLimit:
    """Failed sign-ins per client address and per (address, email); see the module's doc.

    `begin(address=..., email=...)` raises `Throttled` (429, `Retry-After`) over either limit
    and otherwise returns the `LoginAttempt` to end with `failed()` or `succeeded()`. When the
    throttle store cannot be reached the attempt is let through uncounted (and logged, once a
    minute), as every throttle does.
    """

    address_scope = "login"
    account_scope = "login_account"

    def __init__(self) -> None:
        self.cache = caches["throttles"]

    def limits(self, *, address: str, email: str) -> list[tuple[str, int, int]]:
        """(key prefix, number, seconds) of each counter the attempt is held to."""
        address_number, address_seconds = _rate(self.address_scope)
        account_number, account_seconds = _rate(self.account_scope, DEFAULT_LOGIN_ACCOUNT_RATE)
        account = email.strip().lower()
        return [
            (
                f"throttle_login_failures_address_{_digest(address)}",
                address_number,
                address_seconds,
            ),
            (
                f"throttle_login_failures_account_{_digest(address, account)}",
                account_number,
                account_seconds,
            ),
        ]

    def begin(self, *, address: str, email: str) -> LoginAttempt:
        attempt = LoginAttempt(cache=self.cache)
        try:
            for prefix, number, seconds in self.limits(address=address, email=email):
                now = time.time()
                window = int(now // seconds)
                key = f"{prefix}_{window}"
                count = self._increment(key, seconds)
                attempt.keys.append(key)
                if count > number:
                    attempt.release()  # a refusal counts nothing
                    raise Throttled(wait=max(1, math.ceil((window + 1) * seconds - now)))
        except Throttled:
            raise
        except Exception as error:
            attempt.release()
            logger.warning(
                "throttle store unreachable; letting requests through",
                extra={"scope": self.address_scope, "error": repr(error)},
            )
            return LoginAttempt()
        return attempt

    def _increment(self, key: str, seconds: int) -> int:
        for _ in range(2):
            self.cache.add(key, 0, timeout=seconds + 1)
            try:
                return int(self.cache.incr(key))
            except ValueError:  # the key expired between add and incr: once more
                continue
        raise RuntimeError(f"could not count in {key!r}")


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
