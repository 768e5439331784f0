"""`manage.py export_catalog [-o file]`: every product in the import format (round-trips)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inventory.catalog_csv import export_catalog


class Command(BaseCommand):
    help = "Export the catalog as CSV in the format import_catalog reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", type=Path, help="File to write (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        output: Path | None = options["output"]
        if output is None:
            self.stdout.flush()
            export_catalog(sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        with output.open("wb") as out:
            written = export_catalog(out)
        self.stderr.write(f"Wrote {written:,} bytes to {output}.")
