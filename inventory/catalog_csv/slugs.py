"""Unique product slugs for an import's rows, by the services' rule, set-based.

Each row arrives with its base slug (`services.product_slug`); `resolve_slugs` turns it into the
product's unique slug in the temporary table before the write, with a few queries for the whole
file, never one per row.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..services import SLUG_CANDIDATES_PER_QUERY, slug_candidates, slug_derives_from


def resolve_slugs(cursor: Any) -> None:
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
