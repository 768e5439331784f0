"""Validation of product fields: the rules every way into the catalog shares.

Owns the SKU rule (`SKU_PATTERN`, `validate_sku`), product metadata (`validate_metadata`,
`metadata_size`: a JSON object within `METADATA_MAX_BYTES` as the database measures it) and the
store's single currency (`validate_currency`). The services, the staff console and the CSV
importer (`inventory.catalog_csv.rows.validate_row`, which words its own per-cell messages) apply
these same rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..exceptions import CatalogValidationError
from ..models import METADATA_MAX_BYTES, store_currency

SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def metadata_size(metadata: dict[str, Any]) -> int:
    """The size the database checks: jsonb's text form uses ", " and ": " separators."""
    return len(json.dumps(metadata, ensure_ascii=False).encode())


def validate_sku(sku: str) -> str:
    sku = sku.strip()
    if not SKU_PATTERN.match(sku):
        raise CatalogValidationError(
            "A SKU is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit.",
            attr="sku",
        )
    return sku


def validate_metadata(metadata: object) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise CatalogValidationError("Metadata must be a JSON object.", attr="metadata")
    size = metadata_size(metadata)
    if size > METADATA_MAX_BYTES:
        raise CatalogValidationError(
            f"Metadata is {size} bytes; at most {METADATA_MAX_BYTES} are allowed.",
            attr="metadata",
        )
    return metadata


def validate_currency(currency: str) -> str:
    if currency != store_currency():
        raise CatalogValidationError(
            f"The store sells in {store_currency()} only.", attr="currency"
        )
    return currency
