"""Reading the file: bytes to text, text to CSV records, and the header to a column layout.

Columns are found by their header name, in any order (`read_header` → `Layout`); `Layout.arrange`
puts a record's cells in `COLUMNS` order for the row checks. Bytes that are not UTF-8 do not stop
the read: they are kept, counted, and found again in the record and field that hold them
(`undecodable_fields`), so they are reported on their line and in their column, like any other
bad cell.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .columns import COLUMNS, REQUIRED_COLUMNS


def records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(text, strict=True)
    start = 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


# Bytes that are not UTF-8 are decoded as lone surrogates (U+DC80..U+DCFF, as Python's
# `surrogateescape` does), which no UTF-8 text can contain, so the record and the field that hold
# one are found after the CSV parser has split the line; the handler counts them, so only records
# read while some are pending are searched (a clean file costs nothing).
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_DECODE_ERRORS = "inventory.catalog_csv.undecodable"
_undecoded = threading.local()


def _count_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):  # pragma: no cover - only decoding uses it
        raise error
    _undecoded.pending = getattr(_undecoded, "pending", 0) + error.end - error.start
    # What `surrogateescape` gives: each byte b as the lone surrogate U+DC00 + b (b >= 0x80).
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(_DECODE_ERRORS, _count_undecodable)


def open_text(raw: IO[bytes]) -> io.TextIOWrapper:
    """The file's bytes as text for `records`: UTF-8 (a byte-order mark skipped), with bytes that
    are not UTF-8 kept and counted for `undecodable_fields`."""
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors=_DECODE_ERRORS, newline="")
    _undecoded.pending = 0
    return text


def undecodable_fields(record: list[str]) -> list[tuple[int, int]]:
    """(field index, first bad byte) for each field holding bytes that are not UTF-8; searched
    only while the text read so far holds some not yet found."""
    if not getattr(_undecoded, "pending", 0):
        return []
    found = []
    for index, value in enumerate(record):
        bad = _UNDECODABLE.findall(value)
        if bad:
            _undecoded.pending -= len(bad)
            found.append((index, ord(bad[0]) - 0xDC00))
    return found


@dataclass(frozen=True)
class Layout:
    """Where each of COLUMNS is in the file's records (the header names them, in any order)."""

    names: tuple[str, ...]  # the file's header, trimmed and lower-cased
    positions: tuple[int | None, ...]  # per column of COLUMNS; None: left out (optional)

    @property
    def missing(self) -> frozenset[str]:
        return frozenset(
            column
            for column, position in zip(COLUMNS, self.positions, strict=True)
            if position is None
        )

    def arrange(self, record: list[str]) -> list[str]:
        """The record's cells (as many as the header's) in COLUMNS order, a left-out column read
        as an empty cell."""
        return [record[position] if position is not None else "" for position in self.positions]

    def column(self, index: int) -> str | None:
        return self.names[index] if index < len(self.names) and self.names[index] else None


def read_header(header: list[str]) -> tuple[Layout | None, list[str]]:
    """The layout, or the header's problems: every unknown, repeated or missing column."""
    names = tuple(name.strip().lower() for name in header)
    problems = []
    for index, name in enumerate(names):
        if not name:
            problems.append(f"column {index + 1} of the header has no name")
        elif name not in COLUMNS:
            problems.append(f'unknown column "{name}"')
    for name, count in Counter(name for name in names if name in COLUMNS).items():
        if count > 1:
            problems.append(f'column "{name}" appears {count} times')
    problems.extend(f'missing column "{name}"' for name in REQUIRED_COLUMNS if name not in names)
    if problems:
        return None, problems
    positions = tuple(names.index(column) if column in names else None for column in COLUMNS)
    return Layout(names, positions), []
