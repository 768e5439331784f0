"""Throttles that count for the whole deployment: a fixed window, one round trip to Redis, one
integer per client, failing open.

Every throttle of the project (DRF's anon, user and scoped throttles, the catalog reads' among
them, and the failure limits below) counts in the `throttles` cache, its own Redis database
(`THROTTLE_CACHE_URL`), so a client gets its rate once across every worker of every node, never
once per process.

How a request is counted. A (scope, client) has one counter, a key of the `throttles` cache
(`cache.make_key`: its `KEY_PREFIX` and version, so the cache API reads the same keys). One call
of a tiny Lua script on django-redis's raw client (what `get_redis_connection("throttles")`
returns) increments it and, when the key is new, gives it a TTL of the rate's period: the window
opens with the client's first request and ends when the key expires, on the Redis server's clock
(no node's clock matters). One round trip, atomic: with N allowed, exactly N requests of a window
pass however many processes race. Memory is one integer with a TTL per client and scope, whatever
the rate. (DRF's own `SimpleRateThrottle` keeps a list of timestamps per client, O(rate), read and
written back by every request: two processes could both read N-1 and both let a request through.)

Why a fixed window: it is the exact count that costs one increment, and `Retry-After` is simply
the rest of the window (the key's TTL, returned by the same call). Its known property is the burst
at the edge: a client may spend its whole rate at the end of one window and again at the start of
the next, so up to 2N requests can pass within one period straddling the edge, never more than N
in one window. For what these guard (request rates, failed sign-ins, card testing) that is
acceptable; a sliding log would be exact over any span at O(rate) memory, and GCRA would smooth
bursts with a state the cache API cannot read (the failure limits give slots back with
`cache.decr`).

Without Redis (no REDIS_URL: a local-memory `throttles` cache in development) the same windows
count with `cache.add` + `cache.incr` on that cache, in that one process.

Fail open: when Redis cannot be reached a throttle lets the request through and says so in the
log (once a minute per process): login, checkout and pay keep working through a Redis outage
(API.md, Conventions: "when Redis is unreachable throttles fail open and log it").
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.cache import BaseCache, caches
from redis.exceptions import NoScriptError
from rest_framework import throttling
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings

if TYPE_CHECKING:
    from django.http import HttpRequest
    from redis import Redis
    from rest_framework.request import Request
    from rest_framework.views import APIView

from .logging import rate_limited_logger

logger = rate_limited_logger("shop.throttling")

# KEYS[1]: the counter; ARGV[1]: the window in milliseconds. Returns {count, milliseconds left}.
# A counter without a TTL (a new one, or one left without by anything else) gets the window: every
# key has a TTL (the throttles' Redis may evict by TTL) and none is ever extended.
_INCREMENT_SCRIPT = b"""
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  left = tonumber(ARGV[1])
  redis.call('PEXPIRE', KEYS[1], left)
end
return {count, left}
"""
_INCREMENT_SHA = hashlib.sha1(_INCREMENT_SCRIPT).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)


def redis_client(cache: BaseCache) -> Redis | None:
    """django-redis's raw client of `cache` (as `get_redis_connection` gives it), or None for a
    cache that is not Redis (local memory in development)."""
    client = getattr(cache, "client", None)
    get_client = getattr(client, "get_client", None)
    if get_client is None:
        return None
    redis: Redis = get_client(write=True)
    return redis


@dataclass(frozen=True)
class Hit:
    """One request counted: the count of its window including it, and the seconds left in it."""

    count: int
    rest: float

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window ends (`Retry-After`), at least 1."""
        return max(1, math.ceil(self.rest))


def count_hit(cache: BaseCache, key: str, seconds: int) -> Hit:
    """Count one request in the counter `key` of `cache`, whose window of `seconds` opened with
    the first request it counted. On Redis: one script call, one round trip, atomic."""
    client = redis_client(cache)
    if client is None:
        return _count_hit_elsewhere(cache, key, seconds)
    full_key = cache.make_key(key)
    window_ms = seconds * 1000
    try:
        reply: Any = client.evalsha(_INCREMENT_SHA, 1, full_key, window_ms)
    except NoScriptError:  # the server's first use of it, or after a restart or SCRIPT FLUSH
        client.script_load(_INCREMENT_SCRIPT)
        reply = client.evalsha(_INCREMENT_SHA, 1, full_key, window_ms)
    count, left_ms = reply
    return Hit(int(count), int(left_ms) / 1000)


def _count_hit_elsewhere(cache: BaseCache, key: str, seconds: int) -> Hit:
    """The same window on a cache without TTLs to read (local memory, one process): the window's
    end is kept beside the counter."""
    for _ in range(2):
        now = time.time()
        cache.add(f"{key}:ends", now + seconds, timeout=seconds)
        cache.add(key, 0, timeout=seconds)
        try:
            count = int(cache.incr(key))
        except ValueError:  # the key expired between add and incr: once more
            continue
        ends = cache.get(f"{key}:ends")
        return Hit(count, (float(ends) if ends is not None else now + seconds) - now)
    raise RuntimeError(f"could not count in {key!r}")


def _store_unreachable(scope: str | None, error: Exception) -> None:
    logger.warning(
        "throttle store unreachable; letting requests through",
        extra={"scope": scope, "error": repr(error)},
    )


# --- request rates ------------------------------------------------------------------------------


class SimpleRateThrottle(throttling.SimpleRateThrottle):
    """DRF's rate throttle (scope, rate, cache key) counted by `count_hit` in
    `caches["throttles"]` instead of a list of timestamps; any error of the store lets the
    request pass (see the module's doc)."""

    cache: BaseCache
    num_requests: int | None  # set by DRF from the rate (None: no rate, no limit)
    duration: int | None

    def __init__(self) -> None:
        super().__init__()
        self.cache = caches["throttles"]
        self.retry_after: int | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        key = self.get_cache_key(request, view)
        return True if key is None else self.count_request(key)

    def count_request(self, key: str) -> bool:
        """Count one request in `key`: whether it is within the rate (or the store failed)."""
        if self.num_requests is None or self.duration is None:  # no rate: no limit
            return True
        try:
            hit = count_hit(self.cache, key, self.duration)
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            _store_unreachable(self.scope, error)
            return True
        if hit.count <= self.num_requests:
            return True
        self.retry_after = hit.retry_after
        return False

    def wait(self) -> float | None:
        """The rest of the window (DRF sends it as `Retry-After`)."""
        return None if self.retry_after is None else float(self.retry_after)


class AnonRateThrottle(SimpleRateThrottle, throttling.AnonRateThrottle):
    """The `anon` rate: anonymous requests by client address."""


class UserRateThrottle(SimpleRateThrottle, throttling.UserRateThrottle):
    """The `user` rate: requests by user id, anonymous ones by client address."""


class CallerRateThrottle(SimpleRateThrottle):
    """The `anon` rate for an anonymous caller (by address) or the `user` rate for a signed-in one
    (by user id), in ONE counter: one round trip per request where the pair above makes two for
    an anonymous caller (DRF's user throttle counts anonymous callers by address as well, at the
    higher user rate, which never decides). Its keys are the pair's (`throttle_anon_<address>`,
    `throttle_user_<id>`), so what it counts adds up with the caller's other requests."""

    scope = "anon"

    def allow_request(self, request: Request, view: APIView) -> bool:
        return self.allow_caller(request, request.user)

    def allow_caller(self, request: HttpRequest | Request, user: Any) -> bool:
        """Count a request of `user` (anonymous: by the request's address). For a caller known
        before DRF is entered (by a middleware); it reads only `request.META`."""
        signed_in = bool(user and user.is_authenticated)
        self.scope = "user" if signed_in else "anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        ident = user.pk if signed_in else self.get_ident(request)  # type: ignore[arg-type]
        return self.count_request(self.cache_format % {"scope": self.scope, "ident": ident})

    def get_rate(self) -> str | None:
        # DRF raises for a scope without a rate; no rate here means no limit, as for the pair.
        rate: str | None = self.THROTTLE_RATES.get(self.scope)
        return rate


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

    An attempt takes a slot in each of its counters before the guarded work runs (the one-round-
    trip increment of `count_hit`, so parallel attempts cannot all slip in under the limit);
    `succeeded()` gives the slots back, `failed()` keeps them. Counts are per fixed window of the
    rate's period. Over a limit `Throttled` is raised (429, `Retry-After`: the rest of the window)
    before any work; a store that cannot be reached lets the attempt through uncounted and says
    so in the log (once a minute), as every throttle here does. Subclasses say which counters an
    attempt is held to (`limits`: counter key, number, seconds)."""

    scope = "failures"

    def __init__(self) -> None:
        self.cache = caches["throttles"]

    def _begin(self, limits: list[tuple[str, int, int]]) -> Attempt:
        attempt = Attempt(cache=self.cache)
        try:
            for key, number, seconds in limits:
                hit = self._increment(key, seconds)
                attempt.keys.append(key)
                if hit.count > number:
                    attempt.release()  # a refusal counts nothing
                    raise Throttled(wait=hit.retry_after)
        except Throttled:
            raise
        except Exception as error:  # noqa: BLE001 (fail open: logged, never raised)
            attempt.release()
            _store_unreachable(self.scope, error)
            return Attempt()
        return attempt

    def _increment(self, key: str, seconds: int) -> Hit:
        """Take a slot in the counter `key` (a window of `seconds`): `count_hit`."""
        return count_hit(self.cache, key, seconds)
