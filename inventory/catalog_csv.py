"""Catalog CSV import and export (`manage.py import_catalog` / `export_catalog`).

Why one long module: it is one importer whose phases (header, rows, temporary table, checks in
SQL, the set-based write, slugs, export) run in this order inside one transaction and share its
temporary table; read top to bottom it is the import. Rules shared with the services come from
`inventory.services.validation`.

Columns are found by their header name, in any order; `OPTIONAL_COLUMNS` may be left out (an
existing product then keeps its value). Bytes that are not UTF-8 are reported on the line and in
the column that hold them, like any other bad cell.

Import streams the file once: each row is validated in Python and, if good, streamed with COPY
into a temporary table; bad rows are reported as they are found (line, column, reason). Checks
that need the whole file or the database (duplicate SKUs, stock below reserved units) then run as
SQL over the temporary table. Only when no row is bad are the products upserted by SKU with a few
set-based statements, in one transaction; stock changes are written as `import` ledger rows.
Unchanged rows are not touched, so re-importing a file writes nothing. Memory stays flat: rows are
never held in a list.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from django.db import connection, transaction

from common.parsers import json_problem

from .cache import catalog_changed
from .models import METADATA_MAX_BYTES, PATH_SEPARATOR, StockLevel, store_currency
from .services import (
    SKU_PATTERN,
    SLUG_CANDIDATES_PER_QUERY,
    category_get_or_create_path,
    metadata_size,
    product_slug,
    schedule_low_stock_alert,
    slug_candidates,
    slug_derives_from,
)

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
# Rows between two looks at the clock for the progress report.
PROGRESS_EVERY_ROWS = 2048
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


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass
class ImportResult:
    rows: int = 0
    bad_rows: int = 0
    errors: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stock_movements: int = 0
    categories_created: int = 0
    seconds: float = 0.0
    unreadable: bool = False
    first_errors: list[RowError] = field(default_factory=list)
    # Rows of existing products whose catalog fields stay the same but whose stock or low-stock
    # threshold changes. The command's summary counts them in `unchanged` (no product row is
    # updated); the console's preview counts them as changed rows (`rows_changed`).
    stock_only: int = 0

    @property
    def ok(self) -> bool:
        return self.errors == 0

    @property
    def rows_changed(self) -> int:
        """Existing products the import changes in any way: catalog fields, stock or threshold."""
        return self.updated + self.stock_only

    @property
    def rows_unchanged(self) -> int:
        """Rows that write nothing at all."""
        return self.unchanged - self.stock_only


# (rows read, bytes read, file size): called as the file is read, at most a few times a second.
ProgressCallback = Callable[[int, int, int], None]


class ImportAbortedError(Exception):
    """Raised inside the transaction to roll it back (bad rows, or a dry run)."""


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


TEMP_TABLE = """
CREATE TEMPORARY TABLE import_rows (
    line integer NOT NULL,
    sku text NOT NULL,
    sku_lower text NOT NULL,
    name text NOT NULL,
    slug text NOT NULL,
    category text NOT NULL,
    price_cents bigint NOT NULL,
    currency text NOT NULL,
    stock integer NOT NULL,
    low_stock_threshold integer NOT NULL,
    is_active boolean NOT NULL,
    description text NOT NULL,
    metadata jsonb NOT NULL,
    category_id bigint,
    product_id bigint,
    changed boolean NOT NULL DEFAULT false
) ON COMMIT DROP
"""
COPY_ROWS = (
    "COPY import_rows (line, sku, sku_lower, name, slug, category, price_cents, currency, "
    "stock, low_stock_threshold, is_active, description, metadata) FROM STDIN"
)


class _Progress:
    """A one-line progress report on a terminal, by bytes read (and/or to a callback: the
    console's import job records it for its progress page)."""

    def __init__(
        self, out: IO[str] | None, total_bytes: int, callback: ProgressCallback | None = None
    ) -> None:
        self.out, self.total = out, max(total_bytes, 1)
        self.callback = callback
        self.last = 0.0
        self.line_open = False  # the bar is on screen without its newline

    def end_line(self) -> None:
        """End the bar's line, so that what is written next starts on a fresh line."""
        if self.line_open and self.out is not None:
            self.out.write("\n")
            self.out.flush()
        self.line_open = False

    def update(self, rows: int, position: int, *, final: bool = False) -> None:
        if self.out is None and self.callback is None:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        if self.callback is not None:
            self.callback(rows, min(position, self.total), self.total)
        if self.out is None:
            return
        percent = min(100, position * 100 // self.total)
        bar = "#" * (percent // 4)
        self.out.write(f"\r[{bar:<25}] {percent:3d}% {rows:,} rows")
        self.line_open = True
        if final:
            self.end_line()
        self.out.flush()


def _records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(text, strict=True)
    start = 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


# Bytes that are not UTF-8 are decoded as lone surrogates (U+DC80..U+DCFF, as Python's
# `surrogateescape` does), which no UTF-8 text can contain, so the record and the field that hold
# one are found after the CSV parser has split the line; the handler counts them, so only records
# read while some are pending are searched (a clean file costs nothing).
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_DECODE_ERRORS = "inventory.catalog_csv.undecodable"
_undecoded = threading.local()


def _count_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):  # pragma: no cover - only decoding uses it
        raise error
    _undecoded.pending = getattr(_undecoded, "pending", 0) + error.end - error.start
    # What `surrogateescape` gives: each byte b as the lone surrogate U+DC00 + b (b >= 0x80).
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(_DECODE_ERRORS, _count_undecodable)


def _undecodable_fields(record: list[str]) -> list[tuple[int, int]]:
    """(field index, first bad byte) for each field holding bytes that are not UTF-8."""
    found = []
    for index, value in enumerate(record):
        bad = _UNDECODABLE.findall(value)
        if bad:
            _undecoded.pending -= len(bad)
            found.append((index, ord(bad[0]) - 0xDC00))
    return found


@dataclass(frozen=True)
class _Layout:
    """Where each of COLUMNS is in the file's records (the header names them, in any order)."""

    names: tuple[str, ...]  # the file's header, trimmed and lower-cased
    positions: tuple[int | None, ...]  # per column of COLUMNS; None: left out (optional)

    @property
    def missing(self) -> frozenset[str]:
        return frozenset(
            column
            for column, position in zip(COLUMNS, self.positions, strict=True)
            if position is None
        )

    def arrange(self, record: list[str]) -> list[str]:
        """The record's cells (as many as the header's) in COLUMNS order, a left-out column read
        as an empty cell."""
        return [record[position] if position is not None else "" for position in self.positions]

    def column(self, index: int) -> str | None:
        return self.names[index] if index < len(self.names) and self.names[index] else None


def _read_header(header: list[str]) -> tuple[_Layout | None, list[str]]:
    """The layout, or the header's problems: every unknown, repeated or missing column."""
    names = tuple(name.strip().lower() for name in header)
    problems = []
    for index, name in enumerate(names):
        if not name:
            problems.append(f"column {index + 1} of the header has no name")
        elif name not in COLUMNS:
            problems.append(f'unknown column "{name}"')
    for name, count in Counter(name for name in names if name in COLUMNS).items():
        if count > 1:
            problems.append(f'column "{name}" appears {count} times')
    problems.extend(f'missing column "{name}"' for name in REQUIRED_COLUMNS if name not in names)
    if problems:
        return None, problems
    positions = tuple(names.index(column) if column in names else None for column in COLUMNS)
    return _Layout(names, positions), []


def import_catalog(
    path: Path,
    *,
    dry_run: bool = False,
    on_error: Callable[[RowError], None] | None = None,
    progress: IO[str] | None = None,
    reference: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Validate the whole file, then (unless any row is bad, or a dry run) upsert it.

    A dry run does the whole write and rolls it back, so its counts (new, updated, unchanged,
    stock movements) are exactly what the real import would report."""
    result = ImportResult()
    started = time.monotonic()
    currency = store_currency()
    reference = (reference or f"import:{path.name}")[:64]
    bar = _Progress(progress, path.stat().st_size, on_progress)

    def report(error: RowError) -> None:
        result.errors += 1
        if len(result.first_errors) < 100:
            result.first_errors.append(error)
        if on_error is not None:
            bar.end_line()  # an error printed on the progress bar's terminal gets its own line
            on_error(error)

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Dropped at commit; also here, for an import nested in a larger transaction.
            cursor.execute("DROP TABLE IF EXISTS import_rows")
            cursor.execute(TEMP_TABLE)
            missing = _load(path, cursor, currency, result, report, bar)
            if result.rows and not result.unreadable:
                _check_against_database(cursor, report, result)
            if result.errors:
                raise ImportAbortedError
            _keep_left_out_columns(cursor, missing)
            _write(cursor, result, reference)
            if dry_run:
                raise ImportAbortedError
    except ImportAbortedError:
        pass
    result.seconds = time.monotonic() - started
    return result


def _load(
    path: Path,
    cursor: Any,
    currency: str,
    result: ImportResult,
    report: Callable[[RowError], None],
    progress: _Progress,
) -> frozenset[str]:
    """Read, check and COPY every row; returns the optional columns the file leaves out."""
    raw = path.open("rb")
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors=_DECODE_ERRORS, newline="")
    _undecoded.pending = 0
    line = 1
    try:
        records = _records(text)
        try:
            _, header = next(records)
        except StopIteration:
            report(RowError(1, None, "the file is empty"))
            return frozenset()
        if _undecoded.pending and _undecodable_fields(header):
            report(RowError(1, None, "the file is not UTF-8"))
            return frozenset()
        layout, problems = _read_header(header)
        if layout is None:
            for problem in problems:
                report(RowError(1, None, problem))
            return frozenset()
        in_order, fields = layout.names == COLUMNS, len(layout.names)
        with cursor.cursor.copy(COPY_ROWS) as copy:
            for line, record in records:
                if not record or record == [""]:
                    continue
                result.rows += 1
                undecodable = _undecodable_fields(record) if _undecoded.pending else []
                if len(record) == fields:
                    row = record if in_order else layout.arrange(record)
                    values, errors = validate_row(row, currency)
                else:
                    values = None
                    errors = [(None, f"expected {fields} fields, found {len(record)}")]
                if undecodable:
                    # Reported where they are; the row's other cells are still checked.
                    columns = {layout.column(index) for index, _ in undecodable}
                    errors = [
                        *(
                            (
                                layout.column(index),
                                f"is not UTF-8 (byte 0x{byte:02X}); save the file as UTF-8"
                                if layout.column(index)
                                else f"a cell is not UTF-8 (byte 0x{byte:02X})",
                            )
                            for index, byte in undecodable
                        ),
                        *(error for error in errors if error[0] not in columns),
                    ]
                    values = None
                if values is None:
                    result.bad_rows += 1
                    for column, reason in errors:
                        report(RowError(line, column, reason))
                else:  # still loaded after a bad row, for the whole-file checks below
                    copy.write_row((line, *values))
                if result.rows % PROGRESS_EVERY_ROWS == 0:
                    progress.update(result.rows, raw.tell())
        return layout.missing
    except csv.Error as error:
        result.unreadable = True
        report(RowError(line + 1, None, f"malformed CSV: {error}"))
        return frozenset()
    finally:
        progress.update(result.rows, raw.tell(), final=True)
        text.close()


# A column the file leaves out keeps an existing product's value (a new product gets the empty
# cell's default, set when the row was read). A left-out currency is the store's, as always.
_KEEP_COLUMN = {
    "low_stock_threshold": (
        "UPDATE import_rows r SET low_stock_threshold = s.low_stock_threshold "
        "FROM inventory_stocklevel s WHERE s.product_id = r.product_id"
    ),
    **{
        column: (
            f"UPDATE import_rows r SET {column} = p.{column} "  # noqa: S608 (fixed names)
            "FROM inventory_product p WHERE p.id = r.product_id"
        )
        for column in ("is_active", "description", "metadata")
    },
}


def _keep_left_out_columns(cursor: Any, missing: frozenset[str]) -> None:
    for column in sorted(missing & _KEEP_COLUMN.keys()):
        cursor.execute(_KEEP_COLUMN[column])


def _check_against_database(
    cursor: Any, report: Callable[[RowError], None], result: ImportResult
) -> None:
    cursor.execute("ANALYZE import_rows")
    cursor.execute(
        """
        SELECT line, first_line FROM (
            SELECT line, min(line) OVER (PARTITION BY sku_lower) AS first_line FROM import_rows
        ) numbered
        WHERE line <> first_line ORDER BY line
        """
    )
    duplicate_lines = cursor.fetchall()
    for line, first_line in duplicate_lines:
        report(RowError(line, "sku", f"the same SKU is already on line {first_line}"))
    result.bad_rows += len(duplicate_lines)
    # Link rows to existing products, locking their stock rows (in product-id order) so the
    # reserved counts checked below cannot change before the write.
    cursor.execute(
        """
        UPDATE import_rows r SET product_id = p.id
        FROM inventory_product p WHERE lower(p.sku) = r.sku_lower
        """
    )
    cursor.execute(
        """
        SELECT s.product_id FROM inventory_stocklevel s
        JOIN import_rows r ON r.product_id = s.product_id
        ORDER BY s.product_id FOR UPDATE OF s
        """
    )
    cursor.execute(
        """
        SELECT r.line, s.reserved FROM import_rows r
        JOIN inventory_stocklevel s ON s.product_id = r.product_id
        WHERE r.stock < s.reserved ORDER BY r.line
        """
    )
    for line, reserved in cursor.fetchall():
        result.bad_rows += 1
        report(
            RowError(
                line, "stock", f"{reserved} units are reserved by orders; stock cannot be lower"
            )
        )


# Indexes are far cheaper to build once than to grow row by row (PostgreSQL's "Populating a
# Database" advice): a bulk write drops the product table's secondary indexes and builds them
# again afterwards, inside the transaction (the unique SKU index is rebuilt too, so uniqueness
# is still enforced when the import commits).
BULK_MIN_ROWS = 10_000


@contextmanager
def _bulk_indexes(cursor: Any, *, rows_written: int) -> Iterator[None]:
    """Rebuild the indexes after the write when it touches at least half of the products.

    Dropping an index locks the product table exclusively until the import commits, so this is
    kept for bulk loads (a first import, a full re-price), never for a handful of rows.
    """
    cursor.execute("SELECT count(*) FROM inventory_product")
    existing = cursor.fetchone()[0]
    if rows_written < BULK_MIN_ROWS or rows_written * 2 < existing:
        yield
        return
    cursor.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'inventory_product'::regclass AND NOT i.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY c.relname
        """
    )
    definitions = cursor.fetchall()
    for name, _ in definitions:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    # Deferred foreign-key checks must run before an index can be built in this transaction.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, definition in definitions:
        cursor.execute(definition)


def _write(cursor: Any, result: ImportResult, reference: str) -> None:
    # Categories: few distinct paths; created through the service (tree lock, paths, slugs).
    cursor.execute("SELECT DISTINCT category FROM import_rows ORDER BY category")
    paths = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT count(*) FROM inventory_category")
    categories_before = cursor.fetchone()[0]
    for category_path in paths:
        category_get_or_create_path(full_path=category_path)
    cursor.execute("SELECT count(*) FROM inventory_category")
    result.categories_created = cursor.fetchone()[0] - categories_before
    cursor.execute(
        """
        UPDATE import_rows r SET category_id = c.id
        FROM inventory_category c WHERE lower(c.full_path) = lower(r.category)
        """
    )
    _resolve_slugs(cursor)
    # Which linked rows differ from their product (only those are written).
    cursor.execute(
        """
        UPDATE import_rows r SET changed = true
        FROM inventory_product p
        WHERE p.id = r.product_id AND (
            p.sku, p.name, p.slug, p.description, p.category_id, p.price_cents, p.currency,
            p.metadata, p.is_active
        ) IS DISTINCT FROM (
            r.sku, r.name, r.slug, r.description, r.category_id, r.price_cents, r.currency,
            r.metadata, r.is_active
        )
        """
    )
    changed = cursor.rowcount
    # Linked rows that leave the product alone but move its stock or threshold (only existing
    # products are linked yet).
    cursor.execute(
        """
        SELECT count(*) FROM import_rows r
        JOIN inventory_stocklevel s ON s.product_id = r.product_id
        WHERE NOT r.changed
          AND (s.on_hand, s.low_stock_threshold) IS DISTINCT FROM (r.stock, r.low_stock_threshold)
        """
    )
    result.stock_only = cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FROM import_rows WHERE product_id IS NULL")
    new = cursor.fetchone()[0]
    with _bulk_indexes(cursor, rows_written=changed + new):
        cursor.execute(
            """
            UPDATE inventory_product p SET
                sku = r.sku, name = r.name, slug = r.slug, description = r.description,
                category_id = r.category_id, price_cents = r.price_cents, currency = r.currency,
                metadata = r.metadata, is_active = r.is_active, updated_at = now()
            FROM import_rows r
            WHERE p.id = r.product_id AND r.changed
            """
        )
        result.updated = cursor.rowcount
        # New products, in file order, with an empty stock level (stock is booked below).
        cursor.execute(
            """
            WITH inserted AS (
                INSERT INTO inventory_product (
                    sku, name, slug, description, category_id, price_cents, currency, metadata,
                    is_active, created_at, updated_at
                )
                SELECT sku, name, slug, description, category_id, price_cents, currency,
                       metadata, is_active, now(), now()
                FROM import_rows WHERE product_id IS NULL ORDER BY line
                RETURNING id, lower(sku) AS sku_lower
            )
            UPDATE import_rows r SET product_id = inserted.id
            FROM inserted WHERE r.sku_lower = inserted.sku_lower
            """
        )
        result.created = cursor.rowcount
    cursor.execute(
        """
        INSERT INTO inventory_stocklevel (
            product_id, on_hand, reserved, low_stock_threshold, low_stock_alerted, updated_at
        )
        SELECT r.product_id, 0, 0, r.low_stock_threshold, true, now()
        FROM import_rows r
        WHERE NOT EXISTS (SELECT 1 FROM inventory_stocklevel s WHERE s.product_id = r.product_id)
        ORDER BY r.product_id
        """
    )
    # The ledger first (it needs the old on-hand counts), then the levels.
    cursor.execute(
        """
        INSERT INTO inventory_stockmovement (
            product_id, reason, delta_on_hand, delta_reserved, on_hand_after, reserved_after,
            actor_id, reference, note, created_at
        )
        SELECT s.product_id, 'import', r.stock - s.on_hand, 0, r.stock, s.reserved,
               NULL, %s, '', now()
        FROM import_rows r JOIN inventory_stocklevel s ON s.product_id = r.product_id
        WHERE r.stock <> s.on_hand
        ORDER BY s.product_id
        """,
        [reference],
    )
    result.stock_movements = cursor.rowcount
    cursor.execute(
        """
        UPDATE inventory_stocklevel s SET
            on_hand = r.stock,
            low_stock_threshold = r.low_stock_threshold,
            low_stock_alerted = r.stock - s.reserved <= r.low_stock_threshold,
            updated_at = now()
        FROM import_rows r, inventory_stocklevel old
        WHERE s.product_id = r.product_id AND old.product_id = s.product_id
          AND (s.on_hand, s.low_stock_threshold) IS DISTINCT FROM (r.stock, r.low_stock_threshold)
        RETURNING s.product_id, old.low_stock_alerted, s.low_stock_alerted
        """
    )
    schedule_low_stock_alert(
        [product_id for product_id, was_low, is_low in cursor.fetchall() if is_low and not was_low]
    )
    result.unchanged = result.rows - result.created - result.updated
    catalog_changed()


def _resolve_slugs(cursor: Any) -> None:
    """Turn each row's base slug (`services.product_slug`) into its product's unique slug, by
    the rule the services follow: a product keeps its slug while it derives from the same base
    (`base` or `base-N`), so re-importing a file changes no slug; any other row takes its base
    when no other product holds it and no earlier line wants it, else the first free `base-2`,
    `base-3`, ... in file order. A slug another row of the file is moving away from still counts
    as taken, so no write meets a slug before it is freed.

    Set-based: one statement (one pass over the rows and the products) finds the rows whose
    slug may not simply be their base, which are few: a product keeping a suffixed slug, a base
    that another product holds, a base that several lines share. Those are sorted out in Python
    with a few queries for all of them, and only rows whose slug changes are written."""
    cursor.execute(
        """
        SELECT r.line, r.slug, r.product_id, own.slug,
               EXISTS (
                   SELECT 1 FROM inventory_product p
                   WHERE lower(p.slug) = r.slug AND p.id IS DISTINCT FROM r.product_id
               )
        FROM import_rows r
        LEFT JOIN (SELECT id, lower(slug) AS slug FROM inventory_product) own
               ON own.id = r.product_id
        WHERE own.slug IS DISTINCT FROM r.slug AND (
            (
                left(own.slug, length(r.slug) + 1) = r.slug || '-'
                AND substr(own.slug, length(r.slug) + 2) ~ '^[0-9]+$'
            )
            OR r.slug IN (SELECT slug FROM import_rows GROUP BY slug HAVING count(*) > 1)
            OR EXISTS (
                SELECT 1 FROM inventory_product p
                WHERE lower(p.slug) = r.slug AND p.id IS DISTINCT FROM r.product_id
            )
        )
        ORDER BY r.line
        """
    )
    waiting: list[tuple[int, str, int | None]] = []
    kept: dict[int, str] = {}
    granted: set[str] = set()
    for line, base, product_id, own_slug, held in cursor.fetchall():
        if own_slug is not None and slug_derives_from(own_slug, base):
            kept[line] = own_slug
        elif not held and base not in granted:
            granted.add(base)  # the first line that wants a free base takes it, as it is
        else:
            waiting.append((line, base, product_id))
    if kept:  # products keeping a suffixed slug (`base-2`): written first, so seen as taken
        _set_slugs(cursor, kept)
    if not waiting:
        return
    # Each waiting row's base is taken (by a product or an earlier line): try base-2, base-3...
    # A waiting row's own base, still in the table, is taken by someone else all the same.
    next_number = dict.fromkeys((base for _, base, _ in waiting), 2)
    resolved: dict[int, str] = {}
    assigned: set[str] = set()
    while waiting:
        wanting = Counter(base for _, base, _ in waiting)
        candidates = {
            base: slug_candidates(
                base, start=next_number[base], count=count + SLUG_CANDIDATES_PER_QUERY
            )
            for base, count in wanting.items()
        }
        wanted = [slug for slugs in candidates.values() for slug in slugs]
        cursor.execute(
            "SELECT lower(slug), id FROM inventory_product WHERE lower(slug) = ANY(%s)", [wanted]
        )
        held_by = dict(cursor.fetchall())
        cursor.execute("SELECT slug FROM import_rows WHERE slug = ANY(%s)", [wanted])
        assigned.update(slug for (slug,) in cursor.fetchall())
        still_waiting = []
        for line, base, product_id in waiting:
            free = next(
                (
                    slug
                    for slug in candidates[base]
                    if slug not in assigned and held_by.get(slug, product_id) == product_id
                ),
                None,
            )
            if free is None:
                still_waiting.append((line, base, product_id))
            else:
                resolved[line] = free
                assigned.add(free)
        for base in {base for _, base, _ in still_waiting}:
            next_number[base] += wanting[base] + SLUG_CANDIDATES_PER_QUERY
        waiting = still_waiting
    _set_slugs(cursor, resolved)


def _set_slugs(cursor: Any, slugs: dict[int, str]) -> None:
    cursor.execute(
        """
        UPDATE import_rows r SET slug = v.slug
        FROM unnest(%s::integer[], %s::text[]) AS v(line, slug)
        WHERE r.line = v.line
        """,
        [list(slugs), list(slugs.values())],
    )


# Spreadsheet formula injection (API.md, "Catalog CSV"): a text cell that a spreadsheet would run
# as a formula (it starts with =, +, -, @, a tab or a carriage return), or that starts with ', is
# written with one leading '; `unescape_cell` removes exactly that one on import. SKUs and
# metadata never start with those (a SKU starts alphanumeric, metadata is a JSON object).
def unescape_cell(value: str) -> str:
    """Undo the export's formula escaping: exactly one leading ' goes."""
    return value[1:] if value.startswith("'") else value


EXPORT_QUERY = r"""
COPY (
    SELECT p.sku,
           CASE WHEN left(p.name, 1) IN ('=', '+', '-', '@', E'\t', E'\r', '''')
                THEN '''' || p.name ELSE p.name END,
           CASE WHEN left(c.full_path, 1) IN ('=', '+', '-', '@', E'\t', E'\r', '''')
                THEN '''' || c.full_path ELSE c.full_path END,
           (p.price_cents / 100)::text || '.' || lpad((p.price_cents % 100)::text, 2, '0'),
           p.currency, s.on_hand, s.low_stock_threshold,
           CASE WHEN p.is_active THEN 'true' ELSE 'false' END,
           CASE WHEN left(p.description, 1) IN ('=', '+', '-', '@', E'\t', E'\r', '''')
                THEN '''' || p.description ELSE NULLIF(p.description, '') END,
           CASE WHEN p.metadata = '{}'::jsonb THEN NULL ELSE p.metadata::text END
    FROM inventory_product p
    JOIN inventory_category c ON c.id = p.category_id
    JOIN inventory_stocklevel s ON s.product_id = p.id
    ORDER BY p.id
) TO STDOUT WITH (FORMAT csv)
"""


# The same export limited to some products (the console's filtered or selected list).
EXPORT_SELECTED_QUERY = EXPORT_QUERY.replace("%", "%%").replace(
    "ORDER BY p.id", "WHERE p.id = ANY(%s) ORDER BY p.id"
)


def export_catalog(out: IO[bytes], *, product_ids: Sequence[int] | None = None) -> int:
    """Write every product (or only `product_ids`) in the import format; returns the number of
    bytes written."""
    header = (",".join(COLUMNS) + "\n").encode()
    out.write(header)
    written = len(header)
    query, params = (
        (EXPORT_QUERY, None)
        if product_ids is None
        else (EXPORT_SELECTED_QUERY, [list(product_ids)])
    )
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(query, params) as copy,
    ):
        for chunk in copy:
            out.write(chunk)
            written += len(chunk)
    return written


def catalog_is_empty() -> bool:
    return not StockLevel.objects.exists()
