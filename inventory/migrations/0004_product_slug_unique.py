"""Product slugs become a lookup key (`products/{id or slug}/`): unique regardless of case, and
never all digits.

Existing rows are made to fit first, deterministically: a slug of digits only (or an empty one)
gets a `p-` prefix, every slug is lowercased, and among products sharing a slug the lowest id keeps
it while each other one, in id order, takes the first free `slug-2`, `slug-3`, ... (the rule
`inventory.services` follows for new products). Only the duplicates are read into Python.
"""

from collections import Counter
from typing import Any

import django.db.models.functions.text
from django.db import migrations, models

# Candidates tried per query beyond one per duplicate (some may be held already).
SPARE_CANDIDATES = 20


def make_slugs_unique(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE inventory_product
            SET slug = 'p-' || CASE WHEN slug = '' THEN id::text ELSE slug END
            WHERE slug ~ '^[0-9]*$'
            """
        )
        cursor.execute("UPDATE inventory_product SET slug = lower(slug) WHERE slug <> lower(slug)")
        cursor.execute(
            """
            SELECT id, slug FROM (
                SELECT id, slug, row_number() OVER (PARTITION BY slug ORDER BY id) AS nth
                FROM inventory_product
            ) numbered
            WHERE nth > 1
            ORDER BY slug, id
            """
        )
        waiting: list[tuple[int, str]] = cursor.fetchall()
        next_number = dict.fromkeys((slug for _, slug in waiting), 2)
        assigned: set[str] = set()
        renamed: dict[int, str] = {}
        while waiting:
            wanting = Counter(slug for _, slug in waiting)
            candidates = {
                base: [
                    f"{base}-{n}"
                    for n in range(next_number[base], next_number[base] + count + SPARE_CANDIDATES)
                ]
                for base, count in wanting.items()
            }
            wanted = [slug for slugs in candidates.values() for slug in slugs]
            cursor.execute("SELECT slug FROM inventory_product WHERE slug = ANY(%s)", [wanted])
            taken = {slug for (slug,) in cursor.fetchall()} | assigned
            still_waiting = []
            for product_id, base in waiting:
                free = next((slug for slug in candidates[base] if slug not in taken), None)
                if free is None:
                    still_waiting.append((product_id, base))
                else:
                    renamed[product_id] = free
                    taken.add(free)
                    assigned.add(free)
            for base in {base for _, base in still_waiting}:
                next_number[base] += wanting[base] + SPARE_CANDIDATES
            waiting = still_waiting
        if renamed:
            cursor.execute(
                """
                UPDATE inventory_product p SET slug = v.slug
                FROM unnest(%s::bigint[], %s::text[]) AS v(id, slug)
                WHERE p.id = v.id
                """,
                [list(renamed), list(renamed.values())],
            )
        # The updates queue the deferred foreign-key checks of the product's rows; run them now,
        # as PostgreSQL alters no table with checks pending (the constraints below).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [("inventory", "0003_product_images")]

    operations = [
        migrations.RunPython(make_slugs_unique, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="product",
            name="slug",
            field=models.SlugField(db_index=False, max_length=255),
        ),
        migrations.AddConstraint(
            model_name="product",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("slug"),
                name="inventory_product_slug_ci_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="product",
            constraint=models.CheckConstraint(
                condition=models.Q(("slug__regex", "^[0-9]*$"), _negated=True),
                name="inventory_product_slug_not_numeric",
            ),
        ),
    ]
