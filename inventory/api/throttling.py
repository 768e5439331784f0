"""The throttle of catalog reads: the project's `anon` rate for anonymous callers and `user` rate
for signed-in ones, counted in Redis for the whole deployment like every other throttle
(common/throttling.py: a fixed window, failing open), with one round trip per read
(`CallerRateThrottle`: one counter for the caller, not an anon and a user one).

A client's catalog reads and its other requests count together against its rate (the same keys),
whichever worker of whichever node serves them: nothing is counted in a process's memory.
"""

from __future__ import annotations

from typing import Any

from common.throttling import CallerRateThrottle

# A request the catalog cache's middleware (cached_reads.py) has already counted carries its
# throttle here, so the view's check does not count it twice.
COUNTED_ATTRIBUTE = "catalog_read_counted"


class CatalogReadThrottle(CallerRateThrottle):
    """Catalog GETs: anonymous callers by address, signed-in ones by user id (a customer's
    stateless token user has the token's id, inventory/api/authentication.py)."""

    def allow_request(self, request: Any, view: Any) -> bool:
        counted: CatalogReadThrottle | None = getattr(request, COUNTED_ATTRIBUTE, None)
        if counted is None:
            return super().allow_request(request, view)
        self.retry_after = counted.retry_after
        return counted.retry_after is None
