"""Against card testing (API.md, "Payments"): someone with a list of stolen card numbers tries
them by saving them as payment methods, or by paying with them, to learn which ones work.

- Saving cards (`POST payment-methods/`) is limited per user and per client address
  (`THROTTLE_PAYMENT_METHOD`, the `payment_method` scope; 10 an hour by default).
- Paying is limited by *declines*: each pay attempt takes a slot per user and per address
  (`THROTTLE_PAYMENT_DECLINE`, the `payment_decline` scope; 5 an hour by default) that a decline
  keeps and any other outcome gives back, so honest customers are never slowed by their own
  successful payments; over the limit, pay answers 429 before the gateway is asked.

Both count in Redis for the whole deployment (a fixed window per counter, one round trip per
count) and fail open (common/throttling.py).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from common.throttling import Attempt, FailureLimit, SimpleRateThrottle, digest, rate_of


class _PaymentMethodThrottle(SimpleRateThrottle):
    scope = "payment_method"

    def get_rate(self) -> str | None:
        """Read when asked, not when the class was made (tests and settings changes see it)."""
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)


class PaymentMethodUserThrottle(_PaymentMethodThrottle):
    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": "payment_method_user", "ident": request.user.pk}


class PaymentMethodAddressThrottle(_PaymentMethodThrottle):
    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {
            "scope": "payment_method_address",
            "ident": self.get_ident(request),
        }


class PaymentDeclineLimit(FailureLimit):
    """Declined pay attempts per user and per client address (see the module's doc)."""

    scope = "payment_decline"

    def begin(self, *, address: str, user_id: Any) -> Attempt:
        number, seconds = rate_of(self.scope)
        return self._begin(
            [
                (f"throttle_payment_declines_address_{digest(address)}", number, seconds),
                (f"throttle_payment_declines_user_{digest(str(user_id))}", number, seconds),
            ]
        )
