from __future__ import annotations

from typing import Any

from celery import shared_task

from .emails import render_email


@shared_task
def send_email_task(*, template: str, to: list[str], context: dict[str, Any]) -> None:
    """Render and send one email. Queued through the outbox, which retries a failure (an SMTP
    outage) with backoff."""
    render_email(template=template, to=to, context=context).send()
