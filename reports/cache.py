"""Cached report responses, keyed on what they were built from.

A key embeds the report, its resolved parameters, the store's time zone and a data version:
for sales and top-products, the latest `settled_at` of a succeeded payment and the latest rollup
write (`selectors.sales_data_version`, one indexed lookup); for the inventory, the catalog
version that every product, stock and category write replaces (`inventory.cache`). A new
succeeded payment or refund therefore makes the next report fresh at once, without anyone
deleting keys; old entries expire after `REPORTS_CACHE_SECONDS`.

The version is read before the report is built, so a response built while a payment commits is
stored under the older version and never served after it. The cache fails open (settings:
`IGNORE_EXCEPTIONS`): with Redis down every report is built from the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache

from inventory.cache import catalog_version

from .selectors import sales_data_version, store_time_zone

T = TypeVar("T")


def cache_timeout() -> int:
    """Seconds a report is kept (`REPORTS_CACHE_SECONDS`; 0 turns the cache off)."""
    return int(settings.REPORTS_CACHE_SECONDS)


def report_cache_key(report: str, *, version: str, params: Mapping[str, Any]) -> str:
    parts = [store_time_zone(), version, *(f"{name}={params[name]}" for name in sorted(params))]
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"reports:{report}:{digest}"


def cached_report(report: str, *, params: Mapping[str, Any], build: Callable[[], T]) -> T:
    """`build()`, served from the cache while the report's data version (`VERSIONS`) and
    `params` are unchanged."""
    timeout = cache_timeout()
    if timeout <= 0:
        return build()
    key = report_cache_key(report, version=VERSIONS[report](), params=params)
    value: T | None = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout)
    return value


def sales_version() -> str:
    return sales_data_version()


def top_products_version() -> str:
    """Top products also show each product's current SKU and name: the catalog version too."""
    return f"{sales_data_version()}/{catalog_version()}"


def inventory_version() -> str:
    return catalog_version()


# What each report is built from, by the name it is cached under.
VERSIONS: dict[str, Callable[[], str]] = {
    "sales": sales_version,
    "top-products": top_products_version,
    "inventory": inventory_version,
}
