"""The nightly rollup (beat, `bulk` queue: see CELERY_BEAT_SCHEDULE and CELERY_TASK_ROUTES)."""

from __future__ import annotations

from celery import shared_task

from .services import rollup_recent


@shared_task
def rollup_recent_days() -> int:
    """After the store's midnight: recompute the last few finished days (a payment settled just
    around midnight corrects its day) and fill any missing day of the last weeks."""
    return rollup_recent()
