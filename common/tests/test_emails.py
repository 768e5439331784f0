import smtplib

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction

from common.emails import send_email
from common.models import OutboxMessage

pytestmark = pytest.mark.django_db


class FlakySMTPBackend(EmailBackend):
    """Stands in for an SMTP relay that fails the first attempt (we cannot reach a real one)."""

    attempts = 0

    def send_messages(self, messages):
        type(self).attempts += 1
        if type(self).attempts == 1:
            raise smtplib.SMTPServerDisconnected("relay went away")
        return super().send_messages(messages)


def test_email_is_sent_only_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        send_email(template="_test", to=["ann@example.com"], context={"name": "Ann"})
        assert mail.outbox == []
    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Test email for Ann"
    assert message.to == ["ann@example.com"]
    assert "Hello Ann, see http://localhost:3000/x" in message.body
    html, mimetype = message.alternatives[0]  # type: ignore[attr-defined]
    assert mimetype == "text/html"
    assert '<a href="http://localhost:3000/x">' in html


def test_no_email_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    def fail_after_queueing():
        with transaction.atomic():
            send_email(template="_test", to=["ann@example.com"], context={"name": "Ann"})
            raise RuntimeError("rolled back")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        fail_after_queueing()
    assert callbacks == []
    assert mail.outbox == []


def test_smtp_failure_is_retried_by_the_outbox(
    settings, django_capture_on_commit_callbacks, run_outbox
):
    settings.EMAIL_BACKEND = f"{__name__}.FlakySMTPBackend"
    FlakySMTPBackend.attempts = 0
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        send_email(template="_test", to=["ann@example.com"], context={"name": "Ann"})
    # The first attempt failed into the outbox row (never into the caller), with a backoff.
    message = OutboxMessage.objects.get()
    assert (FlakySMTPBackend.attempts, mail.outbox) == (1, [])
    assert message.done_at is None
    assert message.attempts == 1
    assert "relay went away" in message.last_error
    assert message.available_at > message.created_at
    assert run_outbox() == 1
    assert FlakySMTPBackend.attempts == 2
    assert len(mail.outbox) == 1
    assert OutboxMessage.objects.get().done_at is not None
    assert run_outbox() == 0  # done: never sent again
