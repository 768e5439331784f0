"""The import: `import_catalog` runs the phases in order, in one transaction, and reports.

The file is streamed once: each record is read (`reading`), checked (`rows`) and, if good,
streamed with COPY into the temporary table; bad rows are reported as they are found (line,
column, reason). Then the checks that need the whole file or the database run in SQL, and only
when no row is bad is the catalog written (`writing`). Memory stays flat: rows are never held in
a list. A dry run does the whole write and rolls it back, so its counts are the real import's.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.db import connection, transaction

from ..models import StockLevel, store_currency
from .columns import COLUMNS
from .reading import open_text, read_header, records, undecodable_fields
from .results import ImportResult, RowError
from .rows import validate_row
from .writing import (
    COPY_ROWS,
    TEMP_TABLE,
    check_against_database,
    keep_left_out_columns,
    write,
)

# Rows between two looks at the clock for the progress report.
PROGRESS_EVERY_ROWS = 2048

# (rows read, bytes read, file size): called as the file is read, at most a few times a second.
ProgressCallback = Callable[[int, int, int], None]


class ImportAbortedError(Exception):
    """Raised inside the transaction to roll it back (bad rows, or a dry run)."""


class _Progress:
    """A one-line progress report on a terminal, by bytes read (and/or to a callback: the
    console's import job records it for its progress page)."""

    def __init__(
        self, out: IO[str] | None, total_bytes: int, callback: ProgressCallback | None = None
    ) -> None:
        self.out, self.total = out, max(total_bytes, 1)
        self.callback = callback
        self.last = 0.0
        self.line_open = False  # the bar is on screen without its newline

    def end_line(self) -> None:
        """End the bar's line, so that what is written next starts on a fresh line."""
        if self.line_open and self.out is not None:
            self.out.write("\n")
            self.out.flush()
        self.line_open = False

    def update(self, rows: int, position: int, *, final: bool = False) -> None:
        if self.out is None and self.callback is None:
            return
        now = time.monotonic()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        if self.callback is not None:
            self.callback(rows, min(position, self.total), self.total)
        if self.out is None:
            return
        percent = min(100, position * 100 // self.total)
        bar = "#" * (percent // 4)
        self.out.write(f"\r[{bar:<25}] {percent:3d}% {rows:,} rows")
        self.line_open = True
        if final:
            self.end_line()
        self.out.flush()


def import_catalog(
    path: Path,
    *,
    dry_run: bool = False,
    on_error: Callable[[RowError], None] | None = None,
    progress: IO[str] | None = None,
    reference: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Validate the whole file, then (unless any row is bad, or a dry run) upsert it.

    A dry run does the whole write and rolls it back, so its counts (new, updated, unchanged,
    stock movements) are exactly what the real import would report."""
    result = ImportResult()
    started = time.monotonic()
    currency = store_currency()
    reference = (reference or f"import:{path.name}")[:64]
    bar = _Progress(progress, path.stat().st_size, on_progress)

    def report(error: RowError) -> None:
        result.errors += 1
        if len(result.first_errors) < 100:
            result.first_errors.append(error)
        if on_error is not None:
            bar.end_line()  # an error printed on the progress bar's terminal gets its own line
            on_error(error)

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # Dropped at commit; also here, for an import nested in a larger transaction.
            cursor.execute("DROP TABLE IF EXISTS import_rows")
            cursor.execute(TEMP_TABLE)
            missing = _load(path, cursor, currency, result, report, bar)
            if result.rows and not result.unreadable:
                check_against_database(cursor, report, result)
            if result.errors:
                raise ImportAbortedError
            keep_left_out_columns(cursor, missing)
            write(cursor, result, reference)
            if dry_run:
                raise ImportAbortedError
    except ImportAbortedError:
        pass
    result.seconds = time.monotonic() - started
    return result


def _load(
    path: Path,
    cursor: Any,
    currency: str,
    result: ImportResult,
    report: Callable[[RowError], None],
    progress: _Progress,
) -> frozenset[str]:
    """Read, check and COPY every row; returns the optional columns the file leaves out."""
    raw = path.open("rb")
    text = open_text(raw)
    line = 1
    try:
        file_records = records(text)
        try:
            _, header = next(file_records)
        except StopIteration:
            report(RowError(1, None, "the file is empty"))
            return frozenset()
        if undecodable_fields(header):
            report(RowError(1, None, "the file is not UTF-8"))
            return frozenset()
        layout, problems = read_header(header)
        if layout is None:
            for problem in problems:
                report(RowError(1, None, problem))
            return frozenset()
        in_order, fields = layout.names == COLUMNS, len(layout.names)
        with cursor.cursor.copy(COPY_ROWS) as copy:
            for line, record in file_records:
                if not record or record == [""]:
                    continue
                result.rows += 1
                undecodable = undecodable_fields(record)
                if len(record) == fields:
                    row = record if in_order else layout.arrange(record)
                    values, errors = validate_row(row, currency)
                else:
                    values = None
                    errors = [(None, f"expected {fields} fields, found {len(record)}")]
                if undecodable:
                    # Reported where they are; the row's other cells are still checked.
                    columns = {layout.column(index) for index, _ in undecodable}
                    errors = [
                        *(
                            (
                                layout.column(index),
                                f"is not UTF-8 (byte 0x{byte:02X}); save the file as UTF-8"
                                if layout.column(index)
                                else f"a cell is not UTF-8 (byte 0x{byte:02X})",
                            )
                            for index, byte in undecodable
                        ),
                        *(error for error in errors if error[0] not in columns),
                    ]
                    values = None
                if values is None:
                    result.bad_rows += 1
                    for column, reason in errors:
                        report(RowError(line, column, reason))
                else:  # still loaded after a bad row, for the whole-file checks below
                    copy.write_row((line, *values))
                if result.rows % PROGRESS_EVERY_ROWS == 0:
                    progress.update(result.rows, raw.tell())
        return layout.missing
    except csv.Error as error:
        result.unreadable = True
        report(RowError(line + 1, None, f"malformed CSV: {error}"))
        return frozenset()
    finally:
        progress.update(result.rows, raw.tell(), final=True)
        text.close()


def catalog_is_empty() -> bool:
    return not StockLevel.objects.exists()
