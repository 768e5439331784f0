"""DRF throttles that count in the `throttles` cache (its own Redis database) and fail open.

When Redis cannot be reached a throttle lets the request through and says so in the log (once
a minute per process): login, checkout and pay keep working through a Redis outage (API.md,
Conventions: "when Redis is unreachable throttles fail open and log it").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.cache import BaseCache, caches
from rest_framework import throttling

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
        except Exception as error:
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
