"""The one interface every payment gateway implements, and the values that cross it.

A gateway is the only code that talks to a payment network. It never sees our database, and
what it returns is plain data: the services decide what to store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict, Unpack
from uuid import UUID

EventType = Literal["payment.succeeded", "payment.failed", "payment.refunded", "ignored"]


@dataclass(frozen=True)
class CardDetails:
    """A card as typed by the customer. Lives in memory only: never stored, logged or queued.

    `repr=False` keeps the number and CVC out of tracebacks, error reports and debug output.
    """

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


@dataclass(frozen=True)
class TokenizedCard:
    """What a gateway gives back for a card: safe to store."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    # The gateway's own stable fingerprint of the card, when it has one (for `{token}` input,
    # where we never see the number).
    gateway_fingerprint: str = ""


@dataclass(frozen=True)
class GatewayResult:
    """The outcome of a charge or refund the gateway decided."""

    succeeded: bool
    gateway_reference: str
    failure_code: str | None = None


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook, normalized. `payment_id` is our Payment id, from the gateway metadata."""

    event_id: str
    type: EventType
    payment_id: UUID | None = None
    gateway_reference: str = ""
    failure_code: str | None = None
    raw_type: str = ""


class GatewayError(Exception):
    """The gateway did not decide: timeout, network failure, outage, or still processing.

    The payment stays pending; asking again with the same idempotency key is safe.
    """


class InvalidToken(Exception):  # noqa: N818 - reads as what it is
    """A client-side token the gateway does not know."""


class InvalidSignature(Exception):  # noqa: N818
    """A webhook whose signature is missing, wrong or outside the tolerance."""


class _MoneyMovement(TypedDict):
    """What a charge and a refund both carry; every gateway takes them as keyword arguments."""

    amount_cents: int
    currency: str
    # Our Payment id: asking again with the same key never moves the money twice.
    idempotency_key: str
    timeout: float  # seconds the one network call may take


class ChargeRequest(_MoneyMovement):
    """The keyword arguments of `Gateway.charge`."""

    token: str  # a saved card's `TokenizedCard.token`


class RefundRequest(_MoneyMovement):
    """The keyword arguments of `Gateway.refund`."""

    gateway_reference: str  # the charge's `GatewayResult.gateway_reference`


class Gateway(Protocol):
    name: str

    def tokenize(self, card: CardDetails) -> TokenizedCard:
        """Hand a card to the gateway at once; get back a reusable token."""
        ...

    def describe_token(self, token: str) -> TokenizedCard:
        """Look up a token made by client-side tokenization. Raises InvalidToken."""
        ...

    def charge(self, **request: Unpack[ChargeRequest]) -> GatewayResult:
        """Charge once per idempotency key: asking again returns the first outcome.

        Raises GatewayError when the outcome is unknown."""
        ...

    def refund(self, **request: Unpack[RefundRequest]) -> GatewayResult:
        """Refund part or all of a charge, once per idempotency key. Raises GatewayError."""
        ...

    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        """Check the signature of a webhook and parse it. Raises InvalidSignature."""
        ...
