"""The catalog CSV's columns, and the formula escaping that export writes and import undoes.

API.md, "Catalog CSV", is the contract: the names of `COLUMNS` in the header, in any order, with
`OPTIONAL_COLUMNS` allowed to be left out. Both directions of the file use this module, so an
exported file always imports back as it was.
"""

from __future__ import annotations

COLUMNS = (
    "sku",
    "name",
    "category",
    "price",
    "currency",
    "stock",
    "low_stock_threshold",
    "is_active",
    "description",
    "metadata",
)
# API.md, "Catalog CSV": columns are found by their header name, in any order. These may be left
# out: a missing column is read as an empty cell for a new product (the store's currency, a
# threshold of 0, active, no description, `{}`), and leaves an existing product's value alone.
OPTIONAL_COLUMNS = frozenset(
    {"currency", "low_stock_threshold", "is_active", "description", "metadata"}
)
REQUIRED_COLUMNS = tuple(column for column in COLUMNS if column not in OPTIONAL_COLUMNS)


# Spreadsheet formula injection (API.md, "Catalog CSV"): a text cell that a spreadsheet would run
# as a formula (it starts with =, +, -, @, a tab or a carriage return), or that starts with ', is
# written with one leading '; `unescape_cell` removes exactly that one on import. SKUs and
# metadata never start with those (a SKU starts alphanumeric, metadata is a JSON object). The
# export writes the quote in SQL (`export.EXPORT_QUERY`).
def unescape_cell(value: str) -> str:
    """Undo the export's formula escaping: exactly one leading ' goes."""
    return value[1:] if value.startswith("'") else value
