"""One row's checks: a CSV record (in `COLUMNS` order) to a row of the import's temporary table,
or the reason for each bad cell.

Every cell is checked by the services' validator of its field (`inventory.services.validation`),
so a row imports only what the API or the console would accept, and a bad cell is reported with
that validator's message. What is the file's own is here: the formula escaping undone, and the
value an empty optional cell stands for (API.md, "Catalog CSV"). The slug is the services' base
slug (`product_slug`). Checks that need the whole file or the database (duplicate SKUs, stock
below reserved units) are not here: they run in SQL (`writing`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exceptions import CatalogValidationError
from ..services import (
    low_stock_threshold_from_text,
    metadata_from_text,
    price_cents_from_text,
    product_slug,
    stock_from_text,
    validate_category_path,
    validate_currency,
    validate_description,
    validate_is_active,
    validate_name,
    validate_sku,
)
from .columns import COLUMNS, unescape_cell

# The validator of each column, in `COLUMNS` order.
CELL_VALIDATORS: tuple[Callable[[str], Any], ...] = (
    validate_sku,
    validate_name,
    validate_category_path,
    price_cents_from_text,
    validate_currency,
    stock_from_text,
    low_stock_threshold_from_text,
    validate_is_active,
    validate_description,
    metadata_from_text,
)


def _cell_errors(cells: tuple[str, ...]) -> list[tuple[str | None, str]]:
    """Every bad cell of a bad row, each with its validator's message, in column order."""
    errors: list[tuple[str | None, str]] = []
    for column, check, cell in zip(COLUMNS, CELL_VALIDATORS, cells, strict=True):
        try:
            check(cell)
        except CatalogValidationError as error:
            errors.append((column, error.detail))
    return errors


def validate_row(
    row: list[str], currency: str
) -> tuple[tuple[Any, ...] | None, list[tuple[str | None, str]]]:
    """One CSV record → (a temp-table row, []) or (None, [(column, reason), ...]).

    `currency` is the store's, what an empty currency cell stands for."""
    if len(row) != len(COLUMNS):
        return None, [(None, f"expected {len(COLUMNS)} fields, found {len(row)}")]
    sku, name, category, price, row_currency, stock, threshold, active, description, meta = row
    cells = (
        sku,
        unescape_cell(name),
        unescape_cell(category),
        price,
        row_currency.strip().upper() or currency,
        stock,
        threshold.strip() or "0",
        active.strip() or "true",
        unescape_cell(description),
        meta.strip() or "{}",
    )
    try:
        values = [check(cell) for check, cell in zip(CELL_VALIDATORS, cells, strict=True)]
    except CatalogValidationError:
        return None, _cell_errors(cells)
    sku, name, path, price_cents, row_currency, on_hand, threshold, is_active, description, _ = (
        values
    )
    return (
        sku,
        sku.lower(),
        name,
        product_slug(name=name, sku=sku),
        path,
        price_cents,
        row_currency,
        on_hand,
        threshold,
        is_active,
        description,
        cells[-1],
    ), []
