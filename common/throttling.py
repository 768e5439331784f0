"""DRF throttles that count in the `throttles` cache (its own Redis database) and fail open.

When Redis cannot be reached a throttle lets the request through and says so in the log (once
a minute per process): login, checkout and pay keep working through a Redis outage (API.md,
Conventions: "when Redis is unreachable throttles fail open and log it").
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.cache import BaseCache, caches
from rest_framework import throttling
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

from .logging import rate_limited_logger

logger = rate_limited_logger("shop.throttling")


class FailOpenMixin:
    """Count in `caches["throttles"]`; any error of that cache lets the request pass."""

    cache: BaseCache

    def __init__(self) -> None:
        super().__init__()
        self.cache = caches["throttles"]

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)  # type: ignore[misc,no-any-return]
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            logger.warning(
                "throttle store unreachable; letting requests through",
                extra={"scope": getattr(self, "scope", None), "error": repr(error)},
            )
            return True


class SimpleRateThrottle(FailOpenMixin, throttling.SimpleRateThrottle):
    pass


class AnonRateThrottle(FailOpenMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(FailOpenMixin, throttling.UserRateThrottle):
    pass


# --- failure limits -----------------------------------------------------------------------------


def rate_of(scope: str, default: str | None = None) -> tuple[int, int]:
    """(number, seconds) of a `DEFAULT_THROTTLE_RATES` scope ("10/min", "5/hour", ...)."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope) or default
    if not isinstance(rate, str):
        raise KeyError(f"No throttle rate for the {scope!r} scope.")
    number, period = rate.split("/")
    return int(number), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def digest(*parts: str) -> str:
    """A cache-key-safe pseudonym of what a counter is about (an address, an email)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass
class Attempt:
    """An attempt let through a failure limit, holding a slot in each counter until it ends."""

    cache: BaseCache | None = None
    keys: list[str] = field(default_factory=list)

    def failed(self) -> None:
        """The slots stay taken: they are the failure counted."""
        self.keys = []

    def succeeded(self) -> None:
        """A success counts nothing: its slots are given back."""
        self.release()

    def release(self) -> None:
        keys, self.keys = self.keys, []
        if self.cache is None:
            return
        for key in keys:
            # Expired meanwhile, or the store went away: nothing to give back.
            with contextlib.suppress(Exception):
                self.cache.decr(key)


class FailureLimit:
    """Counts *failures* (wrong passwords, declined cards), never plain use.

    An attempt takes a slot in each of its counters before the guarded work runs (an atomic
    increment in the `throttles` cache, so parallel attempts cannot all slip in under the limit);
    `succeeded()` gives the slots back, `failed()` keeps them. Counts are per fixed window of the
    rate's period. Over a limit `Throttled` is raised (429, `Retry-After`: the rest of the window)
    before any work; a store that cannot be reached lets the attempt through uncounted and says
    so in the log (once a minute), as every throttle here does. Subclasses say which counters an
    attempt is held to (`limits`: key prefix, number, seconds)."""

    scope = "failures"

    def __init__(self) -> None:
        self.cache = caches["throttles"]

    def _begin(self, limits: list[tuple[str, int, int]]) -> Attempt:
        attempt = Attempt(cache=self.cache)
        try:
            for prefix, number, seconds in limits:
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
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            attempt.release()
            logger.warning(
                "throttle store unreachable; letting requests through",
                extra={"scope": self.scope, "error": repr(error)},
            )
            return Attempt()
        return attempt

    def _increment(self, key: str, seconds: int) -> int:
        for _ in range(2):
            self.cache.add(key, 0, timeout=seconds + 1)
            try:
                return int(self.cache.incr(key))
            except ValueError:  # the key expired between add and incr: once more
                continue
        raise RuntimeError(f"could not count in {key!r}")
