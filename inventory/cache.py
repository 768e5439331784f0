"""The catalog version, and catalog reads cached under it.

Any write to a product, its stock, its images or a category replaces the catalog version (after
the transaction commits). The version is a random token, not a counter, so an evicted version key
can never bring an old generation of entries back.

A cached entry (a response body, the count of a product filter) lives under a key that does NOT
embed the version; the value is `(version, what was cached)`, stored with the version read before
the database was. `versioned_get` reads the version and an entry in one round trip (MGET) and
gives the entry only when its version is the current one; after any catalog write every entry
misses, is built fresh and overwritten. A response built while a write commits is stored under
the old version, so it is never served after it.

The cache fails open (settings: `IGNORE_EXCEPTIONS`): with Redis unreachable there is no version
(None), nothing is cached and every read comes from the database.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

VERSION_KEY = "catalog:version"
# Counts are only ever read under the version they were made for; this bounds their memory.
COUNT_SECONDS = 3600

T = TypeVar("T")


def response_timeout() -> int:
    """Seconds a cached catalog response is kept (`CATALOG_CACHE_SECONDS`; 0: no caching)."""
    return int(settings.CATALOG_CACHE_SECONDS)


def http_max_age() -> int:
    """Seconds browsers and CDNs may keep a public catalog response (`CATALOG_HTTP_MAX_AGE`)."""
    return int(settings.CATALOG_HTTP_MAX_AGE)


def _new_version() -> str | None:
    """The version after the key was found missing: ours, or a racing process's."""
    cache.add(VERSION_KEY, secrets.token_hex(8), timeout=None)
    version = cache.get(VERSION_KEY)
    return None if version is None else str(version)


def current_catalog_version() -> str | None:
    """The catalog version; None when the cache cannot keep one (Redis unreachable)."""
    version = cache.get(VERSION_KEY)
    return _new_version() if version is None else str(version)


def catalog_version() -> str:
    return str(current_catalog_version())


def _digest(parts: tuple[str, ...]) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def response_key(*parts: str) -> str:
    """Where a public catalog response is cached: host, path and query string (no version)."""
    return f"catalog:response:{_digest(parts)}"


def count_key(*parts: str) -> str:
    """Where the count of a product filter is cached (no version)."""
    return f"catalog:count:{_digest(parts)}"


def _current(entry: Any, version: str) -> Any:
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == version:
        return entry[1]
    return None


def versioned_get(key: str) -> tuple[str | None, Any]:
    """The catalog version and what `key` holds under it (None: nothing, or an entry of another
    version), in one round trip. The version is None when the cache is unreachable."""
    found = cache.get_many([VERSION_KEY, key])
    version = found.get(VERSION_KEY)
    if version is None:
        return _new_version(), None
    version = str(version)
    return version, _current(found.get(key), version)


def versioned_set(key: str, version: str, value: Any, timeout: int) -> None:
    cache.set(key, (version, value), timeout)


def cached_count(key: str, compute: Callable[[], T], *, version: str | None = None) -> T:
    """`compute()` (a count: what it returns must not be None), cached under the catalog version.

    With `version` (the caller already read it) one GET; without, one MGET of the version and
    the entry. When the cache is unreachable, `compute()` every time."""
    if version is None:
        version, value = versioned_get(key)
        if version is None:
            return compute()
    else:
        value = _current(cache.get(key), version)
    if value is None:
        value = compute()
        versioned_set(key, version, value, COUNT_SECONDS)
    result: T = value
    return result


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
