"""`manage.py generate_catalog --products N --seed S -o file.csv`: a deterministic catalog."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inventory.catalog_generator import write_catalog


class Command(BaseCommand):
    help = (
        "Write a synthetic but realistic catalog CSV (three-level categories, metadata such as "
        "color and size). The same --products and --seed always give the same file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, required=True)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("-o", "--output", type=Path, help="File to write (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        count, seed, output = options["products"], options["seed"], options["output"]
        if output is None:
            write_catalog(sys.stdout, products=count, seed=seed)
            return
        with output.open("w", encoding="utf-8", newline="") as out:
            write_catalog(out, products=count, seed=seed)
        self.stderr.write(f"Wrote {count:,} products to {output}.")
