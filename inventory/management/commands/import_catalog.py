"""`manage.py import_catalog products.csv [--dry-run] [--if-empty]`: upsert the catalog by SKU."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.catalog_csv import RowError, catalog_is_empty, import_catalog


class Command(BaseCommand):
    help = (
        "Import products from a catalog CSV (see API.md, 'Catalog CSV'; columns by header "
        "name, in any order). Every row is checked first; if any is bad, every bad row is "
        "reported and nothing is written. On a catalog that has products, says first how many "
        "of them the file changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and report; write nothing."
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the catalog already has products (used by `make run`).",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar, even on a terminal."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["if_empty"] and not catalog_is_empty():
            self.stdout.write("The catalog already has products; nothing imported.")
            return
        show_progress = not options["no_progress"] and sys.stderr.isatty()
        # Products already there that the file may change: said before the summary, so that a
        # file whose SKUs collide with the catalog's does not pass for a file of new products.
        had_products = not catalog_is_empty()

        def on_error(error: RowError) -> None:
            # The import ends the progress bar's line first (`\r`-redrawn on stderr).
            self.stderr.write(str(error))

        result = import_catalog(
            path,
            dry_run=options["dry_run"],
            on_error=on_error,
            progress=sys.stderr if show_progress else None,
        )
        if not result.ok:
            raise CommandError(
                f"{result.bad_rows} of {result.rows} rows are bad ({result.errors} problems); "
                "nothing was imported."
            )
        if had_products:
            self.stdout.write(_changes_line(result.rows_changed))
        verb = "Would import" if options["dry_run"] else "Imported"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {path.name}: {result.rows} rows, {result.created} new, "
                f"{result.updated} updated, {result.unchanged} unchanged, "
                f"{result.stock_movements} stock movements, "
                f"{result.categories_created} new categories ({result.seconds:.2f} s)."
            )
        )


def _changes_line(changed: int) -> str:
    """How many existing products the file changes (catalog fields, stock or threshold)."""
    if changed == 0:
        return "This file changes no existing products."
    return f"This file changes {changed:,} existing product{'s' if changed != 1 else ''}."
