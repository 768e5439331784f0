"""Catalog CSV import speed against PostgreSQL's own COPY of the same file, in the same run.

    DATABASE_URL=postgres://... python -m bench catalog_import

Works in a scratch database `<your database>_bench` (created, migrated, dropped at the end), so
your data is never touched. Each run: generate 100,000 products (seed 1) and the same SKUs with
other values (seed 2); import seed 1 into an empty catalog, import seed 2 (every row an update),
import seed 2 again (nothing changes); COPY the seed-1 file into a plain table with the same
columns. Prints rows/s for each and the ratio import/COPY per run; the medians over
BENCH_RUNS runs (default 3) are what the README quotes. BENCH_PRODUCTS overrides 100,000.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stack import scratch_database, setup_django_on_database_url

RESULTS = Path(__file__).resolve().parent / "results"


def generate(path: Path, *, products: int, seed: int) -> None:
    from inventory.catalog_generator import write_catalog

    with path.open("w", encoding="utf-8", newline="") as out:
        write_catalog(out, products=products, seed=seed)


def empty_catalog() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE inventory_stockmovement, inventory_stocklevel, inventory_product, "
            "inventory_category RESTART IDENTITY CASCADE"
        )
        cursor.execute("VACUUM ANALYZE inventory_product")


def copy_baseline(path: Path) -> float:
    """Seconds for PostgreSQL to COPY the file into a plain table with the same columns."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_copy")
        cursor.execute(
            "CREATE TABLE bench_copy (sku text, name text, category text, price text, "
            "currency text, stock text, low_stock_threshold text, is_active text, "
            "description text, metadata text)"
        )
        started = time.perf_counter()
        with (
            cursor.cursor.copy("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as data,
        ):
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return seconds


def sql_floor(path: Path) -> float:
    """Seconds for PostgreSQL alone to COPY the file and INSERT ... SELECT it into the product
    table (its generated search vector, indexes and checks): the floor for any importer writing
    these rows into this schema. Rolled back afterwards."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_category (name, slug, description, tree_path, full_path, "
            "depth) VALUES ('Floor', 'floor-bench', '', '', 'Floor-bench', 0) RETURNING id"
        )
        category_id = cursor.fetchone()[0]
        started = time.perf_counter()
        cursor.execute(
            "CREATE TEMP TABLE floor_copy (sku text, name text, category text, price text, "
            "currency text, stock text, low_stock_threshold text, is_active text, "
            "description text, metadata text) ON COMMIT DROP"
        )
        with (
            cursor.cursor.copy("COPY floor_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as data,
        ):
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        cursor.execute(
            "INSERT INTO inventory_product (sku, name, slug, description, category_id, "
            "price_cents, currency, metadata, is_active, created_at, updated_at) "
            "SELECT sku, name, lower(sku), description, %s, (price::numeric * 100)::bigint, "
            "currency, coalesce(nullif(metadata, ''), '{}')::jsonb, is_active::boolean, now(), "
            "now() FROM floor_copy",
            [category_id],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def timed_import(path: Path) -> tuple[float, Any]:
    from inventory.catalog_csv import import_catalog

    started = time.perf_counter()
    result = import_catalog(path)
    seconds = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"import failed: {result.first_errors[:5]}")
    return seconds, result


def main() -> None:
    if not setup_django_on_database_url():
        return
    products = int(os.environ.get("BENCH_PRODUCTS", "100000"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    with tempfile.TemporaryDirectory() as tmp, scratch_database():
        first, second = Path(tmp) / "seed1.csv", Path(tmp) / "seed2.csv"
        generate(first, products=products, seed=1)
        generate(second, products=products, seed=2)
        print(f"{products:,} products, {first.stat().st_size / 1e6:.1f} MB; {runs} runs")
        rows: list[dict[str, float]] = []
        for run in range(1, runs + 1):
            empty_catalog()
            floor_s = sql_floor(first)
            empty_catalog()
            create_s, created = timed_import(first)
            update_s, updated = timed_import(second)
            same_s, unchanged = timed_import(second)
            copy_s = copy_baseline(first)
            assert created.created == products
            assert updated.updated == products
            assert unchanged.updated == 0
            assert unchanged.stock_movements == 0
            row = {
                "create_rows_per_s": products / create_s,
                "update_rows_per_s": products / update_s,
                "unchanged_rows_per_s": products / same_s,
                "copy_rows_per_s": products / copy_s,
                "sql_floor_rows_per_s": products / floor_s,
            }
            row["create_vs_copy"] = row["create_rows_per_s"] / row["copy_rows_per_s"]
            row["update_vs_copy"] = row["update_rows_per_s"] / row["copy_rows_per_s"]
            row["create_vs_sql_floor"] = row["create_rows_per_s"] / row["sql_floor_rows_per_s"]
            rows.append(row)
            print(
                f"run {run}: create {row['create_rows_per_s']:,.0f} rows/s, "
                f"update {row['update_rows_per_s']:,.0f}, unchanged "
                f"{row['unchanged_rows_per_s']:,.0f}, COPY {row['copy_rows_per_s']:,.0f}, "
                f"COPY+INSERT floor {row['sql_floor_rows_per_s']:,.0f} -> create/COPY "
                f"{row['create_vs_copy']:.2f}, update/COPY {row['update_vs_copy']:.2f}, "
                f"create/floor {row['create_vs_sql_floor']:.2f}",
                flush=True,
            )
    median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    print(
        f"median: create {median['create_rows_per_s']:,.0f} rows/s "
        f"({median['create_vs_copy']:.2f} of COPY), update {median['update_rows_per_s']:,.0f} "
        f"({median['update_vs_copy']:.2f} of COPY), unchanged "
        f"{median['unchanged_rows_per_s']:,.0f}, COPY {median['copy_rows_per_s']:,.0f} rows/s, "
        f"COPY+INSERT floor {median['sql_floor_rows_per_s']:,.0f} rows/s "
        f"(create is {median['create_vs_sql_floor']:.2f} of the floor)"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog_import.json").write_text(
        json.dumps({"products": products, "runs": rows, "median": median}, indent=2)
    )


if __name__ == "__main__":
    sys.exit(main())
