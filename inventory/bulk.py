"""Bulk work of the staff console: changes to many products at once, and catalog CSV import jobs.

The console (inventory/admin*.py) only asks and shows; the rules are here, and every change goes
through `inventory.services` (`product_update`) or the `import_catalog` command's own code
(`inventory.catalog_csv`), so the console can do nothing the API or the command could not.

- **Bulk changes** (activate, deactivate, move to a category, change prices by a percentage) are
  planned first, so the confirmation page lists exactly what will change, then applied: planned
  again on the products locked in the same transaction (a price changed meanwhile is not
  overwritten with a stale one), one `product_update` per product, no stock ledger rows.
- **Import jobs** keep the uploaded file in PostgreSQL (`CatalogImportJob.content`): it is checked
  by a dry run (the preview), then imported once staff confirm. Small files run in the request;
  large ones on a worker (`inventory.tasks.run_catalog_import_job`, bulk queue, through the
  outbox), which records its progress for the page that polls it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from rest_framework import status

from common.exceptions import ConflictError, DomainError
from common.money import store_money
from common.outbox import enqueue_after_commit

from .catalog_csv import ImportResult, import_catalog
from .models import CatalogImportJob, Category, Product
from .services import ProductChanges, product_update

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# =============================================================================
# Prices by a percentage
# =============================================================================
PERCENT_MIN = Decimal(-100)
PERCENT_MAX = Decimal(1000)


def price_after_percent(cents: int, percent: Decimal) -> int:
    """`cents` changed by `percent` (+10, -15, 2.5), rounded half up to the cent, never below 0.

    Integer arithmetic on hundredths of a percent, like every amount here (common/money.py): a
    price is never a float. $19.99 + 10 % = $21.989 → $21.99; $0.05 - 50 % = $0.025 → $0.03."""
    hundredths = int((percent * 100).to_integral_value(rounding=ROUND_HALF_UP))
    scaled = cents * (10_000 + hundredths)
    if scaled <= 0:
        return 0
    return (scaled + 5_000) // 10_000


# =============================================================================
# Bulk changes
# =============================================================================
class BulkChangeRefused(DomainError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    code = "bulk_change_refused"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "This bulk change cannot be made."


@dataclass(frozen=True)
class PlannedChange:
    """What one product's row will look like: the service's changes and how staff read them."""

    product: Product
    changes: ProductChanges
    before: str
    after: str


class BulkChange(ABC):
    """One kind of change to many products. `change_for` is None for a product it leaves as is."""

    @abstractmethod
    def describe(self) -> str:
        """The change in staff's words, for the confirmation page and the message after it."""

    @abstractmethod
    def change_for(self, product: Product) -> PlannedChange | None: ...

    def plan(self, products: Iterable[Product]) -> list[PlannedChange]:
        return [change for product in products if (change := self.change_for(product))]


@dataclass(frozen=True)
class SetActive(BulkChange):
    active: bool

    def describe(self) -> str:
        return "Activate" if self.active else "Deactivate"

    def change_for(self, product: Product) -> PlannedChange | None:
        if product.is_active == self.active:
            return None
        return PlannedChange(
            product,
            ProductChanges(is_active=self.active),
            before=_active_word(product.is_active),
            after=_active_word(self.active),
        )


def _active_word(active: bool) -> str:
    return "active" if active else "inactive"


@dataclass(frozen=True)
class MoveToCategory(BulkChange):
    category: Category

    def describe(self) -> str:
        return f"Move to {self.category.full_path}"

    def change_for(self, product: Product) -> PlannedChange | None:
        if product.category_id == self.category.pk:
            return None
        return PlannedChange(
            product,
            ProductChanges(category=self.category),
            before=product.category.full_path,
            after=self.category.full_path,
        )


@dataclass(frozen=True)
class ChangePrice(BulkChange):
    percent: Decimal

    def __post_init__(self) -> None:
        if not PERCENT_MIN <= self.percent <= PERCENT_MAX:
            raise BulkChangeRefused(
                f"The percentage must be between {PERCENT_MIN} and {PERCENT_MAX}."
            )

    def describe(self) -> str:
        return f"Change prices by {self.percent:+}%"

    def change_for(self, product: Product) -> PlannedChange | None:
        price = price_after_percent(product.price_cents, self.percent)
        if price == product.price_cents:
            return None
        return PlannedChange(
            product,
            ProductChanges(price_cents=price),
            before=store_money(product.price_cents),
            after=store_money(price),
        )


def products_for_bulk(product_ids: Iterable[int]) -> QuerySet[Product]:
    """The products a bulk change reads (their category too: the plan names it), in id order."""
    return Product.objects.select_related("category").filter(pk__in=list(product_ids))


@transaction.atomic
def bulk_apply(change: BulkChange, *, product_ids: Sequence[int]) -> list[PlannedChange]:
    """Apply `change` to the products, each through `product_update`; returns what changed.

    The products are locked (in id order, so two bulk changes never deadlock) and planned again
    here: what is written follows the rows as they are now, not as the confirmation page saw
    them."""
    products = products_for_bulk(product_ids).select_for_update(of=("self",)).order_by("pk")
    planned = change.plan(products)
    for item in planned:
        product_update(product=item.product, changes=item.changes)
    return planned


# =============================================================================
# Catalog CSV import jobs
# =============================================================================
# A file above either limit is checked and imported by a worker, with a progress page.
LARGE_FILE_BYTES = 1024 * 1024
LARGE_FILE_ROWS = 2_000
# The console refuses larger uploads (the command has no limit): 100,000 rows are about 31 MB.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
# How often a running job writes its progress.
PROGRESS_EVERY_SECONDS = 1.0

Status = CatalogImportJob.Status
# The state a job's run starts from → (the state while it runs, whether it is the dry run).
# A running state is there too: a worker that died mid-run left it so, and the outbox runs the
# message again (the import is one transaction: it either committed, with the job's final state,
# or did not happen).
_RUNS: dict[str, tuple[str, bool]] = {
    Status.PREVIEW_QUEUED: (Status.PREVIEWING, True),
    Status.PREVIEWING: (Status.PREVIEWING, True),
    Status.IMPORT_QUEUED: (Status.IMPORTING, False),
    Status.IMPORTING: (Status.IMPORTING, False),
}
FINAL = frozenset({Status.DONE, Status.REJECTED, Status.FAILED})
WAITING = frozenset(_RUNS)


class ImportJobNotReady(ConflictError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    code = "import_not_ready"
    message = "This file is not checked, has bad rows or was imported already."


class UploadTooLarge(DomainError):  # noqa: N818
    code = "upload_too_large"
    status_code = status.HTTP_400_BAD_REQUEST
    message = f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."


def is_large_file(content: bytes) -> bool:
    return len(content) > LARGE_FILE_BYTES or content.count(b"\n") > LARGE_FILE_ROWS


def import_job_create(*, content: bytes, file_name: str, actor: User | None) -> CatalogImportJob:
    """Keep the uploaded file and check it (a dry run): now for a small file, on a worker for a
    large one. Nothing in the catalog changes until `import_job_confirm`."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge()
    job = CatalogImportJob.objects.create(
        created_by=actor,
        file_name=Path(file_name).name[:255] or "catalog.csv",
        content=content,
        size=len(content),
        status=Status.PREVIEW_QUEUED,
        in_background=is_large_file(content),
    )
    _start(job)
    job.refresh_from_db()
    return job


def import_job_confirm(*, job_id: int) -> CatalogImportJob:
    """Import a checked file that has no bad rows, by the `import_catalog` command's code.

    The status moves in one conditional UPDATE, so a double click or two staff confirming the same
    file import it once."""
    started = CatalogImportJob.objects.filter(
        pk=job_id, status=Status.PREVIEWED, error_count=0
    ).update(status=Status.IMPORT_QUEUED, updated_at=timezone.now())
    if not started:
        raise ImportJobNotReady()
    job = CatalogImportJob.objects.get(pk=job_id)
    _start(job)
    job.refresh_from_db()
    return job


def _start(job: CatalogImportJob) -> None:
    if job.in_background:
        from .tasks import run_catalog_import_job

        enqueue_after_commit(run_catalog_import_job, job_id=job.pk)
    else:
        import_job_run(job_id=job.pk)


def import_job_run(*, job_id: int) -> None:
    """Run a waiting job's next step (the dry run, or the import). Idempotent: a job that is not
    waiting (done, or moved on meanwhile) is left alone."""
    job = CatalogImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status not in _RUNS:
        return
    running, dry_run = _RUNS[job.status]
    claimed = CatalogImportJob.objects.filter(pk=job.pk, status=job.status).update(
        status=running,
        started_at=timezone.now(),
        finished_at=None,
        rows_read=0,
        bytes_read=0,
        updated_at=timezone.now(),
    )
    if not claimed:
        return
    recorder = _ProgressRecorder(job.pk) if job.in_background else None
    try:
        with transaction.atomic():  # the import and the job's outcome commit together
            result = _run_import(job, dry_run=dry_run, recorder=recorder)
            _record_result(job.pk, result, dry_run=dry_run)
    except Exception as error:
        logger.exception("catalog import job failed", extra={"job_id": job.pk})
        CatalogImportJob.objects.filter(pk=job.pk).update(
            status=Status.FAILED,
            failure=f"{type(error).__name__}: {error}"[:2000],
            content=b"",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
    finally:
        if recorder is not None:
            recorder.close()


def _run_import(
    job: CatalogImportJob, *, dry_run: bool, recorder: _ProgressRecorder | None
) -> ImportResult:
    """`import_catalog` on the stored file, named as uploaded: the ledger's `import:<name>`
    reference is the one the command would write for the same file."""
    with tempfile.TemporaryDirectory(prefix="catalog-import-") as directory:
        path = Path(directory) / job.file_name
        path.write_bytes(bytes(job.content))
        return import_catalog(
            path, dry_run=dry_run, on_progress=recorder, reference=f"import:{job.file_name}"
        )


def _record_result(job_id: int, result: ImportResult, *, dry_run: bool) -> None:
    outcome = (Status.PREVIEWED if dry_run else Status.DONE) if result.ok else Status.REJECTED
    fields: dict[str, Any] = {
        "status": outcome,
        "rows": result.rows,
        "rows_read": result.rows,
        "bytes_read": F("size"),
        "bad_rows": result.bad_rows,
        "error_count": result.errors,
        "created": result.created,
        "changed": result.rows_changed,
        "unchanged": result.rows_unchanged,
        "stock_movements": result.stock_movements,
        "categories_created": result.categories_created,
        "errors": [
            {"line": error.line, "column": error.column, "reason": error.reason}
            for error in result.first_errors
        ],
        "finished_at": timezone.now(),
        "updated_at": timezone.now(),
    }
    if outcome in FINAL:
        fields["content"] = b""  # nothing will read the file again
    CatalogImportJob.objects.filter(pk=job_id).update(**fields)


class _ProgressRecorder:
    """Writes a running job's progress on a database connection of its own: the import runs in
    one transaction, whose writes nobody sees until it commits, and the progress page must see
    this one now. Best effort: a failed write costs a progress step, never the import."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.connection: Any = None
        self.last = 0.0

    def __call__(self, rows: int, position: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_SECONDS:
            return
        self.last = now
        try:
            if self.connection is None:
                self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {CatalogImportJob._meta.db_table} "  # noqa: S608 (our table)
                    "SET rows_read = %s, bytes_read = %s WHERE id = %s",
                    [rows, position, self.job_id],
                )
        except DatabaseError:
            logger.warning("could not record an import job's progress", exc_info=True)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
