"""The throttle of catalog reads: the project's `anon` rate for anonymous callers and `user` rate
for signed-in ones, counted in Redis for the whole deployment like every other throttle
(common/throttling.py: a fixed window, failing open), with one round trip per read
(`CallerRateThrottle`: one counter for the caller, not an anon and a user one).

A client's catalog reads and its other requests count together against its rate (the same keys),
whichever worker of whichever node serves them: nothing is counted in a process's memory.
"""

from __future__ import annotations

from common.throttling import CallerRateThrottle


class CatalogReadThrottle(CallerRateThrottle):
    """Catalog GETs: anonymous callers by address, signed-in ones by user id (a customer's
    stateless token user has the token's id, inventory/api/authentication.py)."""
