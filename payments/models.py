"""Gateway customers, saved payment methods (no card data), payments (charges and refunds),
disputes and seen webhook events.

A Payment names its order by `order_id` only: payments never imports orders.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.models import TimeStampedModel
from common.money import format_money_display

from .cards import BRAND_LABELS
from .fields import EncryptedJSONField


class GatewayCustomer(TimeStampedModel):
    """A user's customer at a gateway (a Stripe Customer): made on first need, with the user's
    email and id, and every card the user saves is attached to it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gateway_customers"
    )
    gateway = models.CharField(max_length=32)
    customer_id = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "gateway"], name="payments_gatewaycustomer_one_per_user"
            ),
            models.UniqueConstraint(
                fields=["gateway", "customer_id"], name="payments_gatewaycustomer_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.customer_id}"


class PaymentMethod(TimeStampedModel):
    """A card saved at the gateway. We keep its token, brand, last4, expiry and a keyed
    fingerprint; never the number or the CVC."""

    class Kind(models.TextChoices):
        CARD = "card", "Card"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_methods"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CARD)
    gateway = models.CharField(max_length=32)
    gateway_token = models.CharField(max_length=255)
    brand = models.CharField(max_length=16, choices=list(BRAND_LABELS.items()))
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    fingerprint = models.CharField(
        max_length=64, help_text="HMAC-SHA256 of the card number with PAYMENT_FINGERPRINT_KEY."
    )
    billing_details = EncryptedJSONField(default=dict, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(is_default=True),
                name="payments_method_one_default_per_user",
            ),
            models.UniqueConstraint(
                fields=["user", "fingerprint"], name="payments_method_user_fingerprint_unique"
            ),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12),
                name="payments_method_exp_month_valid",
            ),
            models.CheckConstraint(
                condition=Q(last4__regex=r"^[0-9]{4}$"), name="payments_method_last4_digits"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_brand_display()} •••• {self.last4}"

    @property
    def masked(self) -> str:
        return (
            f"{self.get_brand_display()} •••• {self.last4} ({self.exp_month:02d}/{self.exp_year})"
        )


class Payment(TimeStampedModel):
    """One charge or refund at the gateway, for one order."""

    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="payments",
        help_text="Whose money: the order's customer, also for refunds.",
    )
    order_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_code = models.CharField(max_length=64, blank=True)
    gateway = models.CharField(max_length=32)
    gateway_reference = models.CharField(max_length=255, blank=True)
    # The columns added for Stripe carry database defaults too, so rows written by SQL (the
    # reports bench) need not know them.
    # What the gateway is told: "Order SO-00042" for a charge, the reason for a refund.
    description = models.CharField(max_length=255, blank=True, db_default="")
    order_number = models.CharField(max_length=32, blank=True, db_default="")
    # Checkout (the customer is there and may authenticate) or a merchant-initiated charge.
    customer_present = models.BooleanField(default=True, db_default=True)
    # The card's gateway token when the charge began: deleting the card never stops us from
    # asking the gateway what became of the charge.
    method_token = models.CharField(max_length=255, blank=True, db_default="")
    # While the customer must authenticate (3-D Secure): lets their browser finish THIS payment.
    client_secret = models.CharField(max_length=255, blank=True, db_default="")
    payment_method = models.ForeignKey(
        PaymentMethod,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refunds",
        help_text="For a refund: the charge it gives money back from.",
    )
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gt=0), name="payments_payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed"]),
                name="payments_payment_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["charge", "refund"]), name="payments_payment_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="payments_payment_currency_iso"
            ),
            models.CheckConstraint(
                condition=Q(kind="refund") | Q(parent__isnull=True),
                name="payments_payment_only_refunds_have_parent",
            ),
            models.CheckConstraint(
                condition=Q(status="failed") | Q(failure_code=""),
                name="payments_payment_failure_code_only_when_failed",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(client_secret=""),
                name="payments_payment_client_secret_only_when_pending",
            ),
            models.UniqueConstraint(
                fields=["order_id"],
                condition=Q(kind="charge", status="pending"),
                name="payments_payment_one_pending_charge_per_order",
            ),
            # A refund made in the gateway's dashboard is recorded once, however often it is told.
            models.UniqueConstraint(
                fields=["gateway", "gateway_reference"],
                condition=Q(kind="refund") & ~Q(gateway_reference=""),
                name="payments_payment_refund_reference_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="payments_payment_user_created"),
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="payments_pay_pending_created",
            ),
            # Reconciliation's sweep and the reports look payments up by when they settled.
            models.Index(
                fields=["settled_at"],
                condition=Q(status="succeeded"),
                name="payments_pay_succeeded_settled",
            ),
        ]

    def __str__(self) -> str:
        """ "Charge $99.98 (succeeded)": how staff read a payment (admin, history, logs)."""
        amount = format_money_display(cents=self.amount_cents, currency=self.currency)
        return f"{self.get_kind_display()} {amount} ({self.get_status_display().lower()})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING


class Dispute(TimeStampedModel):
    """A charge the customer disputed with their bank (a chargeback), as the gateway reports it.

    `status` is "open" until the gateway closes it (then its outcome: won, lost, ...)."""

    OPEN = "open"
    LOST = "lost"  # a closed dispute's status when the bank gave the money to the customer

    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        related_name="disputes",
        help_text="The disputed charge.",
    )
    gateway_reference = models.CharField(max_length=255, unique=True)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, default=OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-opened_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_cents__gte=0), name="payments_dispute_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        amount = format_money_display(cents=self.amount_cents, currency=self.currency)
        return f"Dispute {amount} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class WebhookEvent(models.Model):
    """A gateway event we have handled. The unique id makes a replay a no-op."""

    gateway = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=64)
    payment_id = models.UUIDField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-received_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "event_id"], name="payments_webhookevent_unique_per_gateway"
            )
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.event_id} ({self.event_type})"
