"""`manage.py generate_catalog --products N --seed S [--prefix P] -o file.csv`: a deterministic
catalog (the same options give the same file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.catalog_generator import PREFIX_PATTERN, write_catalog


class Command(BaseCommand):
    help = (
        "Write a synthetic but realistic catalog CSV (three-level categories, metadata such as "
        "color and size). The same --products and --seed always give the same file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("-o", "--output", type=Path, help="File to write (default: stdout)")
        parser.add_argument(
            "--prefix",
            default="",
            help=(
                "Put this before every SKU (B- gives B-HP-000001). Without it the same --products "
                "and --seed give the same SKUs, so importing a second file changes the products "
                "of the first instead of adding new ones."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count, seed, output = options["products"], options["seed"], options["output"]
        prefix: str = options["prefix"]
        if not PREFIX_PATTERN.match(prefix):
            raise CommandError(
                f"--prefix {prefix!r}: use at most 48 letters, digits, '-' or '_', starting with "
                "a letter or digit."
            )
        if output is None:
            write_catalog(sys.stdout, products=count, seed=seed, prefix=prefix)
            return
        with output.open("w", encoding="utf-8", newline="") as out:
            write_catalog(out, products=count, seed=seed, prefix=prefix)
        self.stderr.write(f"Wrote {count:,} products to {output}.")
