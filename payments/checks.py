"""System checks for the payments configuration (`manage.py check`, and `check --deploy`).

Always: an unknown gateway (payments.E001), Stripe without its API key (payments.E002).
Deploy: payment keys still derived from SECRET_KEY (payments.E003), Stripe without a webhook
secret (payments.E004), the test gateway with DEBUG off (payments.W001), an older encryption
key still derived from SECRET_KEY, left from a rotation (payments.W003), and, with a database to
ask (`check --deploy --database default`), saved cards of another gateway than the configured one,
which can no longer pay (payments.W004).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError
from django.db.models import Count

from .crypto import FIELD_ENCRYPTION_KEY_SALT, FINGERPRINT_KEY_SALT, derive_key
from .gateways import GATEWAYS


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
    if settings.PAYMENT_GATEWAY == "test" and not settings.DEBUG:
        messages.append(
            Warning(
                "The built-in test gateway is in use: it takes only test cards and moves no money.",
                hint="Set PAYMENT_GATEWAY=stripe with STRIPE_SECRET_KEY in production.",
                id="payments.W001",
            )
        )
    if settings.PAYMENT_GATEWAY == "stripe" and not settings.STRIPE_WEBHOOK_SECRET:
        messages.append(
            Error(
                "PAYMENT_GATEWAY is 'stripe' but STRIPE_WEBHOOK_SECRET is not set: no Stripe "
                "webhook is trusted, so payments settle only when reconciliation asks Stripe.",
                hint="Set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret (whsec_…).",
                id="payments.E004",
            )
        )
    messages.extend(_derived_keys())
    return messages


@register(Tags.security, Tags.database, deploy=True)
def check_methods_of_other_gateways(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Cards saved under another gateway (the test gateway's, before the switch to Stripe): their
    tokens mean nothing to the configured one, so paying with them is refused. Like Django's own
    database checks, it asks only when a database is named (`--database`)."""
    if not databases:
        return []
    from .models import PaymentMethod

    try:
        counts = dict(
            PaymentMethod.objects.exclude(gateway=settings.PAYMENT_GATEWAY)
            .values("gateway")
            .annotate(count=Count("id"))
            .values_list("gateway", "count")
        )
    except DatabaseError:
        return []  # not migrated yet, or unreachable: other checks and commands say so
    if not counts:
        return []
    found = ", ".join(f"{count} of {name!r}" for name, count in sorted(counts.items()))
    return [
        Warning(
            f"Saved cards of another gateway than {settings.PAYMENT_GATEWAY!r} exist ({found}); "
            "they cannot pay (payment_method_unusable).",
            hint="Ask those customers to add their cards again; the old ones may be deleted.",
            id="payments.W004",
        )
    ]


def _derived_keys() -> list[CheckMessage]:
    """What settings use when the key variables are unset: keys derived from SECRET_KEY."""
    secret_key = settings.SECRET_KEY
    messages: list[CheckMessage] = []
    if derive_key(FINGERPRINT_KEY_SALT, secret_key) == settings.PAYMENT_FINGERPRINT_KEY:
        messages.append(_derived_error("PAYMENT_FINGERPRINT_KEY"))
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    derived = derive_key(FIELD_ENCRYPTION_KEY_SALT, secret_key)
    if keys and keys[0] == derived:
        messages.append(_derived_error("FIELD_ENCRYPTION_KEYS"))
    elif derived in keys:
        messages.append(
            Warning(
                "An older key of FIELD_ENCRYPTION_KEYS is derived from SECRET_KEY.",
                hint="Run `manage.py rotate_payment_keys`, then drop that key.",
                id="payments.W003",
            )
        )
    return messages


def _derived_error(name: str) -> Error:
    return Error(
        f"{name} is derived from SECRET_KEY (it is unset).",
        hint=(
            f"Set {name} explicitly in production (README, Security): rotating SECRET_KEY would "
            "otherwise change card fingerprints and lock out encrypted billing details."
        ),
        id="payments.E003",
    )
