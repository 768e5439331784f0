"""Templated emails, sent by a Celery task once the surrounding transaction commits (through the
outbox, so an email queued while Redis is down is sent when it returns).

A template `name` is three files under templates/emails/: `name.subject.txt`, `name.txt` and
`name.html`. The context must be JSON-serialisable (it travels in the Celery message), so pass
ids, names and amounts, never model instances and never secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from . import metrics
from .outbox import enqueue_after_commit


class TemplatedEmail(EmailMultiAlternatives):
    """An email that counts what the mail server answered (`shop_emails_sent` / `_failed`, by
    template) when it is sent: every task that sends one calls `.send()` on what
    `render_email` returns, so this is the one place that sees each delivery."""

    def __init__(self, *, template: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.template = template

    def send(self, *args: Any, **kwargs: Any) -> int:
        try:
            sent = super().send(*args, **kwargs)
        except Exception:
            metrics.email_delivered(template=self.template, sent=False)
            raise
        metrics.email_delivered(template=self.template, sent=bool(sent))
        return sent


def render_email(
    *, template: str, to: Sequence[str], context: Mapping[str, Any]
) -> EmailMultiAlternatives:
    full_context = {"frontend_url": settings.FRONTEND_URL, **context}
    subject = render_to_string(f"emails/{template}.subject.txt", full_context)
    text = render_to_string(f"emails/{template}.txt", full_context)
    html = render_to_string(f"emails/{template}.html", full_context)
    message = TemplatedEmail(
        template=template,
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(to),
    )
    message.attach_alternative(html, "text/html")
    return message


def send_email(*, template: str, to: Sequence[str], context: Mapping[str, Any]) -> None:
    """Queue an email for after the current transaction commits (at once outside one)."""
    from .tasks import send_email_task

    enqueue_after_commit(send_email_task, template=template, to=list(to), context=dict(context))
