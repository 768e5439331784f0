"""Versioned keys for cached catalog reads.

Every cached catalog response lives under a key that embeds the current catalog version. Any write
to a product, its stock or a category replaces the version (after the transaction commits), so the
next read misses and is built fresh; stale entries simply expire. The version is a random token,
not a counter, so an evicted version key can never bring an old generation of entries back.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

VERSION_KEY = "catalog:version"


def response_timeout() -> int:
    """Seconds a cached catalog response is kept (`CATALOG_CACHE_SECONDS`; 0: no caching)."""
    return int(settings.CATALOG_CACHE_SECONDS)


def catalog_version() -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, secrets.token_hex(8), timeout=None)
        version = cache.get(VERSION_KEY)
    return str(version)


def catalog_cache_key(*parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"catalog:{catalog_version()}:{digest}"


def _bump() -> None:
    cache.set(VERSION_KEY, secrets.token_hex(8), timeout=None)


def catalog_changed() -> None:
    """Invalidate every cached catalog read once the current transaction commits."""
    transaction.on_commit(_bump, robust=True)
