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


def http_max_age() -> int:
    """Seconds browsers and CDNs may keep a public catalog response (`CATALOG_HTTP_MAX_AGE`)."""
    return int(settings.CATALOG_HTTP_MAX_AGE)


def current_catalog_version() -> str | None:
    """The catalog version; None when the cache cannot keep one (Redis unreachable)."""
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, secrets.token_hex(8), timeout=None)
        version = cache.get(VERSION_KEY)
    return None if version is None else str(version)


def catalog_version() -> str:
    return str(current_catalog_version())


def _digest(parts: tuple[str, ...]) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def catalog_cache_key(*parts: str, version: str | None = None) -> str:
    return f"catalog:{version if version is not None else catalog_version()}:{_digest(parts)}"


def catalog_etag(version: str, *parts: str) -> str:
    """A strong ETag for a public catalog response: the catalog version and whatever else the
    response varies with (host, path, query string, kind of caller). Known before the database
    is read, so a matching If-None-Match is answered without reading it; any catalog write
    replaces the version, and with it every ETag."""
    return f'"{_digest((version, *parts))}"'


def _bump() -> None:
    cache.set(VERSION_KEY, secrets.token_hex(8), timeout=None)


def catalog_changed() -> None:
    """Invalidate every cached catalog read once the current transaction commits."""
    transaction.on_commit(_bump, robust=True)
