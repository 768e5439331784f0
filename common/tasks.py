from __future__ import annotations

import smtplib
from typing import Any

from celery import shared_task

from .emails import render_email


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=6,
)
def send_email_task(*, template: str, to: list[str], context: dict[str, Any]) -> None:
    """Render and send one email; an SMTP failure is retried with backoff."""
    render_email(template=template, to=to, context=context).send()
