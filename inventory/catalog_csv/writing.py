"""The SQL side of an import: the temporary table the rows are copied into, the checks that need
the whole file or the database, and the set-based write of the products, stock levels and ledger.

Everything here runs in the import's one transaction over its temporary table `import_rows`
(`TEMP_TABLE`, dropped at commit): duplicate SKUs and stock below reserved units are found with
a few statements over all rows (`check_against_database`), then, when no row is bad, the
products are upserted by SKU, stock changes are written as `import` ledger rows and the levels
set, each with one statement for all rows (`write`; why: docs/adr/0002-set-based-csv-import.md).
Unchanged rows are not touched, so re-importing a file writes nothing. Slugs are `slugs`'.
This is the one stock write outside `inventory.services.stock`, under the same invariants (see
that module's docstring).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..cache import catalog_changed
from ..services import category_get_or_create_path, schedule_low_stock_alert
from .results import ImportResult, RowError
from .slugs import resolve_slugs

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


def keep_left_out_columns(cursor: Any, missing: frozenset[str]) -> None:
    for column in sorted(missing & _KEEP_COLUMN.keys()):
        cursor.execute(_KEEP_COLUMN[column])


def check_against_database(
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


def write(cursor: Any, result: ImportResult, reference: str) -> None:
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
    resolve_slugs(cursor)
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
