"""Every state change of the catalog and of stock, one module per concern.

- `stock`: the ledger writes (reserve, release, sell, restock, staff adjustments, thresholds)
  and their invariants; `stock_alerts`: the low-stock email those writes trigger.
- `catalog`: categories and products, with their slugs.
- `validation`: the product field rules (SKU, name, category path, price, currency, stock,
  threshold, active flag, description, metadata), each one validator with one message, that the
  services, the staff console and the CSV importer share.

Import from here (`from inventory.services import stock_reserve`); to replace a name in a test,
patch it on the module that defines and calls it (`inventory.services.catalog`), not here.
"""

from __future__ import annotations

from .catalog import (
    CATEGORY_TREE_LOCK,
    PRODUCT_SLUG_CONSTRAINT,
    SLUG_CANDIDATES_PER_QUERY,
    SLUG_SAVE_ATTEMPTS,
    UNSET,
    ProductChanges,
    category_create,
    category_delete,
    category_get_or_create_path,
    category_update,
    fast_slugify,
    product_create,
    product_delete,
    product_slug,
    product_update,
    slug_candidates,
    slug_derives_from,
    unique_product_slug,
)
from .stock import (
    StockLine,
    stock_adjust,
    stock_commit_sale,
    stock_release,
    stock_reserve,
    stock_restock,
    stock_set_threshold,
)
from .stock_alerts import LOW_STOCK_EMAIL_MAX, schedule_low_stock_alert, stock_low_alert_send
from .validation import (
    METADATA_MAX_DEPTH,
    SKU_MESSAGE,
    SKU_PATTERN,
    low_stock_threshold_from_text,
    metadata_from_text,
    metadata_size,
    price_cents_from_text,
    stock_from_text,
    validate_category_path,
    validate_currency,
    validate_description,
    validate_is_active,
    validate_low_stock_threshold,
    validate_metadata,
    validate_name,
    validate_price_cents,
    validate_sku,
    validate_stock,
)

__all__ = [
    "CATEGORY_TREE_LOCK",
    "LOW_STOCK_EMAIL_MAX",
    "METADATA_MAX_DEPTH",
    "PRODUCT_SLUG_CONSTRAINT",
    "SKU_MESSAGE",
    "SKU_PATTERN",
    "SLUG_CANDIDATES_PER_QUERY",
    "SLUG_SAVE_ATTEMPTS",
    "UNSET",
    "ProductChanges",
    "StockLine",
    "category_create",
    "category_delete",
    "category_get_or_create_path",
    "category_update",
    "fast_slugify",
    "low_stock_threshold_from_text",
    "metadata_from_text",
    "metadata_size",
    "price_cents_from_text",
    "product_create",
    "product_delete",
    "product_slug",
    "product_update",
    "schedule_low_stock_alert",
    "slug_candidates",
    "slug_derives_from",
    "stock_adjust",
    "stock_commit_sale",
    "stock_from_text",
    "stock_low_alert_send",
    "stock_release",
    "stock_reserve",
    "stock_restock",
    "stock_set_threshold",
    "unique_product_slug",
    "validate_category_path",
    "validate_currency",
    "validate_description",
    "validate_is_active",
    "validate_low_stock_threshold",
    "validate_metadata",
    "validate_name",
    "validate_price_cents",
    "validate_sku",
    "validate_stock",
]
