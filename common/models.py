import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TimeStampedModel(models.Model):
    """Adds `created_at` and `updated_at`, both set by the database layer on save."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class IdempotencyKey(models.Model):
    """A claimed `Idempotency-Key`: one row per (user, key), kept 24 h (see common/idempotency.py).

    The row is inserted before the request runs (the unique constraint is the claim), and the
    response is written to it when the request succeeds. `response_status` is null while the
    first request is still running.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(db_index=True)
    locked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="common_idempotency_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


class OutboxMessage(models.Model):
    """A Celery task to run once the transaction that wrote this row commits (common/outbox.py).

    Written in the caller's transaction, so the work exists exactly when the change that asked
    for it does; relayed to the broker after commit and again by `relay_outbox` until a worker
    has run it. PostgreSQL, not Redis, is where queued work lives until it is done.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.CharField(max_length=200)
    kwargs = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(
        default=timezone.now, help_text="Not relayed before this time (retry backoff)."
    )
    relayed_at = models.DateTimeField(
        null=True, blank=True, help_text="Last handed to the broker; relayed again if not done."
    )
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is running it until this time."
    )
    attempts = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="Given up after the task's last attempt."
    )
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("created_at",)
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=Q(done_at__isnull=True, failed_at__isnull=True),
                name="common_outbox_due",
            ),
            models.Index(
                fields=["done_at"], condition=Q(done_at__isnull=False), name="common_outbox_done"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} ({self.pk})"
