"""Throttles for catalog reads, counted in this process's memory instead of the shared cache.

The project's anon and user rates still apply to catalog GETs, but each gunicorn worker counts
on its own, so a read costs no cache round trip (about a seventh of an uncached list request).
With W workers the effective limit per client is at most W times the rate: still a brake on a
single client hammering the catalog, which is public and cacheable anyway; writes and every other
endpoint keep the shared, exact throttles.
"""

from __future__ import annotations

from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

process_cache = LocMemCache("catalog-read-throttle", {"OPTIONS": {"MAX_ENTRIES": 100_000}})


class CatalogReadAnonThrottle(AnonRateThrottle):
    cache = process_cache


class CatalogReadUserThrottle(UserRateThrottle):
    cache = process_cache
