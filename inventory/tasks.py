"""Background work of the inventory app."""

from __future__ import annotations

from celery import shared_task

from .services import stock_low_alert_send


@shared_task
def send_low_stock_alert(*, product_ids: list[int], total: int | None = None) -> bool:
    """Tell staff, in one email, which products crossed their low-stock threshold."""
    return stock_low_alert_send(product_ids=product_ids, total=total)


@shared_task
def make_image_renditions(*, image_id: int) -> bool:
    """The WebP thumbnail and medium size of a new product image (bulk queue, via the outbox)."""
    from .images import image_renditions_make

    return image_renditions_make(image_id=image_id)


@shared_task
def delete_image_files(*, names: list[str]) -> int:
    """Remove a deleted product image's files once its deletion committed (bulk queue)."""
    from .images import stored_files_delete

    return stored_files_delete(names=names)


@shared_task
def run_catalog_import_job(*, job_id: int) -> None:
    """Check or import a large catalog file uploaded in the staff console (bulk queue, via the
    outbox); the job's row says which, and a second delivery of the message does nothing."""
    from .bulk import import_job_run

    import_job_run(job_id=job_id)
