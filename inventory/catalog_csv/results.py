"""What an import reports: each bad cell (`RowError`) and the counts of the run (`ImportResult`).

The command prints them, the console's import jobs store them (`inventory.bulk`), and the
benchmarks read them; the importer's phases fill them in as they go.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
