"""Throttles of catalog reads: the project's `anon` and `user` rates, counted in Redis for the
whole deployment like every other throttle (common/throttling.py: a fixed window, one round trip
per request and throttle, failing open).

A client's catalog reads and its other requests count together against its rate, whichever
worker of whichever node serves them: nothing is counted in a process's memory.
"""

from __future__ import annotations

from common.throttling import AnonRateThrottle, UserRateThrottle


class CatalogReadAnonThrottle(AnonRateThrottle):
    """The `anon` rate for anonymous catalog reads, by client address."""


class CatalogReadUserThrottle(UserRateThrottle):
    """The `user` rate for catalog reads, by user id (a customer's stateless token user has the
    token's id, inventory/api/authentication.py)."""
