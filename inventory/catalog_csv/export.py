"""Export: the catalog (or some products) as a CSV the import reads back unchanged.

One `COPY ... TO STDOUT` streams the rows straight from PostgreSQL, so memory stays flat however
large the catalog; text cells a spreadsheet would run as a formula are escaped in the query, as
`columns.unescape_cell` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from django.db import connection, transaction

from .columns import COLUMNS

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
