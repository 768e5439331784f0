"""System checks for the payments configuration (`manage.py check`, and `check --deploy`)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .gateways import GATEWAYS

# Keys that default to values derived from SECRET_KEY: fine for development, but in production
# they must be set on their own, or rotating SECRET_KEY would change card fingerprints and lock
# out every encrypted billing address.
DERIVED_KEYS = ("PAYMENT_FINGERPRINT_KEY", "FIELD_ENCRYPTION_KEYS")


@register(Tags.security)
def check_gateway(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.PAYMENT_GATEWAY not in GATEWAYS:
        return [
            Error(
                f"PAYMENT_GATEWAY is {settings.PAYMENT_GATEWAY!r}.",
                hint=f"Use one of: {', '.join(GATEWAYS)}.",
                id="payments.E001",
            )
        ]
    if settings.PAYMENT_GATEWAY == "stripe" and not settings.STRIPE_SECRET_KEY:
        return [
            Error(
                "PAYMENT_GATEWAY is 'stripe' but STRIPE_SECRET_KEY is not set.",
                hint="Set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET for webhooks).",
                id="payments.E002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_production_payments(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if settings.PAYMENT_GATEWAY == "test":
        messages.append(
            Warning(
                "The built-in test gateway is in use: it takes only test cards and moves no money.",
                hint="Set PAYMENT_GATEWAY=stripe with STRIPE_SECRET_KEY in production.",
                id="payments.W001",
            )
        )
    messages.extend(
        Warning(
            f"{name} is derived from SECRET_KEY.",
            hint=f"Set {name} explicitly in production (see README, Payments).",
            id="payments.W002",
        )
        for name in DERIVED_KEYS
        if not os.environ.get(name)
    )
    return messages
