"""Validation of product fields: the one owner of each rule and of its message.

Each rule is a small validator that returns the clean value or raises `CatalogValidationError`
with the rule's message on the field (`attr`). Every way into the catalog uses them: the
services (`product_create`, `product_update`, `stock_set_threshold`, `category_get_or_create_path`,
so the API and the staff console), the console's forms, and the CSV import
(`inventory.catalog_csv.rows.validate_row`, which reports a bad cell as `line N, column C:` and
the message). The `*_from_text` validators read a field's text form (a CSV cell: a price in
`19.99`, a whole number, a true/false word, JSON) and apply the same rule with the same message.

They are cheap and per value: no database query (a SKU already taken, stock below the units
reserved are the services' and the import's set-based SQL checks), so the import calls them for
every row.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import orjson

from common.parsers import json_problem

from ..exceptions import CatalogValidationError
from ..models import METADATA_MAX_BYTES, PATH_SEPARATOR, store_currency

SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
NAME_MAX_LENGTH = 200  # Product.name
CATEGORY_NAME_MAX_LENGTH = 100  # Category.name
CATEGORY_PATH_MAX_LENGTH = 1000  # Category.full_path
# API.md: product metadata nests at most 32 levels (the object itself is level 1).
METADATA_MAX_DEPTH = 32
# The text forms: a price of up to 13 whole digits and two decimals; a count of up to 9 digits
# (within the database's integer).
PRICE_TEXT_PATTERN = re.compile(r"^(\d{1,13})(?:\.(\d{1,2}))?$")
WHOLE_NUMBER_TEXT_PATTERN = re.compile(r"^\d{1,9}$")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})

SKU_MESSAGE = "A SKU is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit."
NAME_REQUIRED_MESSAGE = "A name is required."
NAME_TOO_LONG_MESSAGE = f"A name is at most {NAME_MAX_LENGTH} characters."
NAME_NUL_MESSAGE = "A name cannot contain a NUL character."
DESCRIPTION_NUL_MESSAGE = "A description cannot contain a NUL character."
CATEGORY_PATH_MESSAGE = (
    "A category path is names separated by '/', like Electronics/Audio: none empty, each at most "
    f"{CATEGORY_NAME_MAX_LENGTH} characters, {CATEGORY_PATH_MAX_LENGTH} in all."
)
PRICE_MESSAGE = "A price is a number, 0 or more, with at most two decimal places."
STOCK_MESSAGE = "Stock is a whole number of units, 0 or more."
THRESHOLD_MESSAGE = "A low-stock threshold is a whole number, 0 or more."
IS_ACTIVE_MESSAGE = "Active is true or false (also 1/0, yes/no, y/n or t/f)."
METADATA_JSON_MESSAGE = "Metadata is not valid JSON."
METADATA_OBJECT_MESSAGE = "Metadata must be a JSON object."


def currency_message(currency: str) -> str:
    return f"The store sells in {currency} only."


# =============================================================================
# Identity and text
# =============================================================================
def validate_sku(sku: str) -> str:
    sku = sku.strip()
    if not SKU_PATTERN.match(sku):
        raise CatalogValidationError(SKU_MESSAGE, attr="sku")
    return sku


def validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise CatalogValidationError(NAME_REQUIRED_MESSAGE, attr="name")
    if len(name) > NAME_MAX_LENGTH:
        raise CatalogValidationError(NAME_TOO_LONG_MESSAGE, attr="name")
    if "\x00" in name:
        raise CatalogValidationError(NAME_NUL_MESSAGE, attr="name")
    return name


def validate_description(description: str) -> str:
    if "\x00" in description:
        raise CatalogValidationError(DESCRIPTION_NUL_MESSAGE, attr="description")
    return description


@functools.lru_cache(maxsize=4096)  # a catalog has few distinct paths; the import asks per row
def validate_category_path(path: str) -> str:
    """`Electronics / Audio` → `Electronics/Audio`: each name trimmed, none empty."""
    parts = [part.strip() for part in path.split(PATH_SEPARATOR)]
    if any(not part or len(part) > CATEGORY_NAME_MAX_LENGTH for part in parts):
        raise CatalogValidationError(CATEGORY_PATH_MESSAGE, attr="category")
    normalised = PATH_SEPARATOR.join(parts)
    if len(normalised) > CATEGORY_PATH_MAX_LENGTH:
        raise CatalogValidationError(CATEGORY_PATH_MESSAGE, attr="category")
    return normalised


# =============================================================================
# Price and currency
# =============================================================================
def validate_price_cents(price_cents: int) -> int:
    if price_cents < 0:
        raise CatalogValidationError(PRICE_MESSAGE, attr="price_cents")
    return price_cents


def price_cents_from_text(text: str) -> int:
    """`19.99` → 1999."""
    match = PRICE_TEXT_PATTERN.match(text.strip())
    if match is None:
        raise CatalogValidationError(PRICE_MESSAGE, attr="price")
    whole, cents = match.groups()
    return int(whole) * 100 + int((cents or "0").ljust(2, "0"))


def validate_currency(currency: str) -> str:
    store = store_currency()
    if currency != store:
        raise CatalogValidationError(currency_message(store), attr="currency")
    return currency


# =============================================================================
# Stock
# =============================================================================
def _whole_number(value: int, message: str, attr: str) -> int:
    if value < 0:
        raise CatalogValidationError(message, attr=attr)
    return value


def _whole_number_from_text(text: str, message: str, attr: str) -> int:
    text = text.strip()
    if not WHOLE_NUMBER_TEXT_PATTERN.match(text):
        raise CatalogValidationError(message, attr=attr)
    return int(text)


def validate_stock(units: int) -> int:
    return _whole_number(units, STOCK_MESSAGE, "on_hand")


def stock_from_text(text: str) -> int:
    return _whole_number_from_text(text, STOCK_MESSAGE, "stock")


def validate_low_stock_threshold(threshold: int) -> int:
    return _whole_number(threshold, THRESHOLD_MESSAGE, "low_stock_threshold")


def low_stock_threshold_from_text(text: str) -> int:
    return _whole_number_from_text(text, THRESHOLD_MESSAGE, "low_stock_threshold")


# =============================================================================
# Flags and metadata
# =============================================================================
def validate_is_active(value: bool | str) -> bool:
    """A bool, or its text form in any case (`true`/`false`, `1`/`0`, `yes`/`no`, `y`/`n`,
    `t`/`f`)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise CatalogValidationError(IS_ACTIVE_MESSAGE, attr="is_active")


def metadata_size(metadata: dict[str, Any]) -> int:
    """The size the database checks: jsonb's text form uses ", " and ": " separators."""
    return len(json.dumps(metadata, ensure_ascii=False).encode())


def validate_metadata(metadata: object, *, text: str | None = None) -> dict[str, Any]:
    """A JSON object, nested at most `METADATA_MAX_DEPTH` levels, without NUL characters, within
    `METADATA_MAX_BYTES` as the database measures it.

    `text`, the JSON it was parsed from (by `metadata_from_text`), skips the walk and the size
    when the text shows they cannot fail, as for most rows of an import: a NUL arrives only as
    `\\u0000` (the parser refuses a raw one and lone surrogates), nesting past the limit takes
    more brackets, and no character takes more than 4 bytes."""
    if not isinstance(metadata, dict):
        raise CatalogValidationError(METADATA_OBJECT_MESSAGE, attr="metadata")
    if text is None or "\\u0000" in text or text.count("{") + text.count("[") > METADATA_MAX_DEPTH:
        problem = json_problem(metadata, max_depth=METADATA_MAX_DEPTH)
        if problem is not None:
            raise CatalogValidationError(f"Metadata {problem}.", attr="metadata")
    if text is None or len(text) * 4 > METADATA_MAX_BYTES:
        size = metadata_size(metadata)
        if size > METADATA_MAX_BYTES:
            raise CatalogValidationError(
                f"Metadata is {size} bytes; at most {METADATA_MAX_BYTES} are allowed.",
                attr="metadata",
            )
    return metadata


def metadata_from_text(text: str) -> dict[str, Any]:
    """JSON text → the metadata object, by `validate_metadata`'s rule."""
    try:
        # orjson is strict RFC 8259 like jsonb (no NaN/Infinity), and fast.
        metadata = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise CatalogValidationError(METADATA_JSON_MESSAGE, attr="metadata") from error
    return validate_metadata(metadata, text=text)
