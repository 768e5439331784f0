"""Payment gateways: one module per network, all behind `payments.gateways.base.Gateway`.

`get_gateway()` returns the one named by `PAYMENT_GATEWAY`; `get_gateway(name)` a given one
(a Payment is always executed and settled by the gateway that took it).
"""

from __future__ import annotations

from django.conf import settings

from .base import Gateway

GATEWAYS = ("test", "stripe")


def get_gateway(name: str | None = None) -> Gateway:
    name = name or settings.PAYMENT_GATEWAY
    if name == "test":
        from .test import from_settings as test_gateway

        return test_gateway()
    if name == "stripe":
        from .stripe import from_settings as stripe_gateway

        return stripe_gateway()
    raise LookupError(f"Unknown payment gateway {name!r}; expected one of {GATEWAYS}.")
