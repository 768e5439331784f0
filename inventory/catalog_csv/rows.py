"""One row's checks: a CSV record (in `COLUMNS` order) to a row of the import's temporary table,
or the reason for each bad cell.

SKU, currency and metadata follow the services' rules (`inventory.services.validation`:
`SKU_PATTERN`, the store's one currency, `metadata_size`) and the slug is the services' base slug
(`product_slug`), so a row imports only what the API or the console would accept; the reasons
are worded per cell, for the report. Checks that need the whole file or the database (duplicate
SKUs, stock below reserved units) are not here: they run in SQL (`writing`).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import orjson

from common.parsers import json_problem

from ..models import METADATA_MAX_BYTES, PATH_SEPARATOR
from ..services import SKU_PATTERN, metadata_size, product_slug
from .columns import COLUMNS, unescape_cell

PRICE_PATTERN = re.compile(r"^(\d{1,13})(?:\.(\d{1,2}))?$")
INT_PATTERN = re.compile(r"^\d{1,9}$")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})
MAX_NAME = 200
MAX_CATEGORY_NAME = 100
MAX_CATEGORY_PATH = 1000
# API.md: product metadata nests at most 32 levels (the object itself is level 1). The API's
# product serializer applies the same rule.
METADATA_MAX_DEPTH = 32


def _parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered == "" or lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    return None


@functools.lru_cache(maxsize=4096)  # a catalog has few distinct category paths
def _normalise_path(value: str) -> str | None:
    parts = [part.strip() for part in value.split(PATH_SEPARATOR)]
    if not value.strip() or any(not part or len(part) > MAX_CATEGORY_NAME for part in parts):
        return None
    path = PATH_SEPARATOR.join(parts)
    return path if len(path) <= MAX_CATEGORY_PATH else None


def _metadata_shape_problem(text: str, metadata: dict[str, Any]) -> str | None:
    """Nested deeper than API.md allows, or a NUL character (jsonb refuses it: the COPY would
    fail). The walk runs only when the text could break a rule, as few rows do: orjson refuses a
    raw NUL, so one arrives only as `\\u0000`, and nesting past the limit takes more brackets."""
    if "\\u0000" not in text and text.count("{") + text.count("[") <= METADATA_MAX_DEPTH:
        return None
    return json_problem(metadata, max_depth=METADATA_MAX_DEPTH)


def validate_row(
    row: list[str], currency: str
) -> tuple[tuple[Any, ...] | None, list[tuple[str | None, str]]]:
    """One CSV record → (a temp-table row, []) or (None, [(column, reason), ...])."""
    errors: list[tuple[str | None, str]] = []
    if len(row) != len(COLUMNS):
        return None, [(None, f"expected {len(COLUMNS)} fields, found {len(row)}")]
    sku, name, category, price, row_currency, stock, threshold, active, description, meta = row
    name, category, description = map(unescape_cell, (name, category, description))
    # SKU, currency and metadata follow the services' rules (`services.validation`: `SKU_PATTERN`,
    # the store's one currency, `metadata_size`), worded as this report's per-cell reasons.
    sku = sku.strip()
    if not SKU_PATTERN.match(sku):
        errors.append(("sku", "must be 1-64 letters, digits, '-' or '_', starting alphanumeric"))
    name = name.strip()
    if not name:
        errors.append(("name", "is required"))
    elif len(name) > MAX_NAME:
        errors.append(("name", f"is longer than {MAX_NAME} characters"))
    path = _normalise_path(category)
    if path is None:
        errors.append(("category", "must be a path like Electronics/Audio (no empty parts)"))
    price_match = PRICE_PATTERN.match(price.strip())
    price_cents = 0
    if price_match is None:
        errors.append(("price", "must be a non-negative decimal with at most two places"))
    else:
        whole, cents = price_match.groups()
        price_cents = int(whole) * 100 + int((cents or "0").ljust(2, "0"))
    row_currency = row_currency.strip().upper() or currency
    if row_currency != currency:
        errors.append(("currency", f"the store sells in {currency} only"))
    stock = stock.strip()
    if not INT_PATTERN.match(stock):
        errors.append(("stock", "must be a whole number, 0 or more"))
    threshold = threshold.strip() or "0"
    if not INT_PATTERN.match(threshold):
        errors.append(("low_stock_threshold", "must be a whole number, 0 or more"))
    is_active = _parse_bool(active)
    if is_active is None:
        errors.append(("is_active", "must be true or false"))
    meta = meta.strip() or "{}"
    try:
        # orjson is strict RFC 8259 like jsonb (no NaN/Infinity), and fast.
        metadata = orjson.loads(meta)
    except orjson.JSONDecodeError:
        errors.append(("metadata", "is not valid JSON"))
    else:
        if not isinstance(metadata, dict):
            errors.append(("metadata", "must be a JSON object"))
        elif (problem := _metadata_shape_problem(meta, metadata)) is not None:
            errors.append(("metadata", problem))
        elif len(meta) * 3 > METADATA_MAX_BYTES and metadata_size(metadata) > METADATA_MAX_BYTES:
            errors.append(("metadata", f"is larger than {METADATA_MAX_BYTES} bytes"))
    if "\x00" in description or "\x00" in name:
        errors.append(("description", "contains a NUL character"))
    if errors:
        return None, errors
    return (
        sku,
        sku.lower(),
        name,
        product_slug(name=name, sku=sku),
        path,
        price_cents,
        row_currency,
        int(stock),
        int(threshold),
        is_active,
        description,
        meta,
    ), []
