"""Catalog CSV import and export (`manage.py import_catalog` / `export_catalog`, and the staff
console's CSV pages through `inventory.bulk`). The format is API.md's "Catalog CSV".

An import streams the file once, in one transaction: each row is read and checked in Python and,
if good, copied into a temporary table; bad rows are reported as they are found (line, column,
reason). Checks that need the whole file or the database then run as SQL over that table, and
only when no row is bad are the products upserted by SKU with a few set-based statements; stock
changes are written as `import` ledger rows. Re-importing a file writes nothing. Why set-based:
docs/adr/0002-set-based-csv-import.md.

Each phase has its module, in the order an import runs them:

- `columns`: the columns (`COLUMNS`, which may be left out) and the formula escaping that both
  directions share;
- `reading`: bytes to text (bytes that are not UTF-8 reported where they are), CSV records, and
  the header to the columns' positions;
- `rows`: one row's checks, each cell by the services' validator of its field
  (`inventory.services.validation`), reported with that validator's message;
- `writing`: the temporary table, the whole-file checks in SQL and the set-based write;
- `slugs`: unique slugs for the written rows, by the services' rule;
- `importer`: `import_catalog`, which runs the phases and reports progress and results
  (`results`);
- `export`: `export_catalog`, the catalog in the same format, streamed by COPY.

The names other code uses are imported here, so `inventory.catalog_csv.import_catalog` and the
like are the paths to use; a test that patches a module's tunable patches it in its own module
(`writing.BULK_MIN_ROWS`, `importer.PROGRESS_EVERY_ROWS`).
"""

from __future__ import annotations

# The metadata nesting limit, the services' rule (`inventory.services.validation`), kept here for
# the callers that read it with the format.
from ..services import METADATA_MAX_DEPTH
from .columns import COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS, unescape_cell
from .export import export_catalog
from .importer import ProgressCallback, catalog_is_empty, import_catalog
from .results import ImportResult, RowError
from .rows import validate_row

__all__ = [
    "COLUMNS",
    "METADATA_MAX_DEPTH",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ImportResult",
    "ProgressCallback",
    "RowError",
    "catalog_is_empty",
    "export_catalog",
    "import_catalog",
    "unescape_cell",
    "validate_row",
]
