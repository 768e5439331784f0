"""The one interface every payment gateway implements, and the values that cross it.

A gateway is the only code that talks to a payment network. It never sees our database, and
what it returns is plain data: the services decide what to store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict, Unpack
from uuid import UUID

EventType = Literal[
    "payment.succeeded",  # a charge succeeded
    "payment.failed",  # a charge failed (or was canceled)
    "payment.requires_action",  # a charge waits for the customer to authenticate (3-D Secure)
    "payment.refunded",  # one of our refunds succeeded
    "refund.failed",  # one of our refunds failed, possibly after it had succeeded
    "refund.external",  # a refund made outside the API (the gateway's dashboard)
    "dispute.created",
    "dispute.closed",
    "setup.succeeded",  # a card saved through a setup intent (client-side confirmation)
    "ignored",
]


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
    """The outcome of a charge or refund as the gateway states it.

    Exactly one of: `succeeded`; failed for good (`failure_code`: a decline, or a final error
    of the gateway such as `amount_too_small`, `resource_missing`,
    `gateway_authentication_failed`); `requires_action` (the customer must authenticate,
    3-D Secure; the payment stays pending and `client_secret` lets their browser finish it);
    or `pending` (refunds only: the gateway accepted it but has not decided; the payment stays
    pending with `gateway_reference`, and a webhook or a lookup settles it).
    An outcome that is not known is a `GatewayError`, never a result."""

    succeeded: bool
    gateway_reference: str
    failure_code: str | None = None
    requires_action: bool = False
    # Refunds only (a charge still `processing` is a GatewayError): accepted, not decided yet.
    pending: bool = False
    client_secret: str = field(default="", repr=False)
    # What the gateway says it moved, when it says (lookups; checked against our Payment).
    amount_cents: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class SetupIntentResult:
    """A card-saving session at the gateway: Stripe.js confirms it with `client_secret`."""

    id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class GatewayEvent:
    """A verified webhook, normalized. `payment_id` is our Payment id, from the gateway metadata
    (None when the object carries none, or a malformed one: `raw_type` and the references still
    tell what it was). `gateway_reference` is the object's own id (a PaymentIntent `pi_…`, a
    Refund `re_…`, a Dispute `dp_…`, or for `setup.succeeded` the saved PaymentMethod `pm_…`);
    `payment_intent` the PaymentIntent it belongs to."""

    event_id: str
    type: EventType
    payment_id: UUID | None = None
    gateway_reference: str = ""
    failure_code: str | None = None  # a decline code, refund failure reason, dispute reason/status
    raw_type: str = ""
    payment_intent: str = ""
    amount_cents: int | None = None
    currency: str | None = None  # upper case, ISO 4217
    customer: str = ""  # setup.succeeded: the gateway customer the card belongs to


class GatewayError(Exception):
    """The gateway did not decide: timeout, network failure, outage, or still processing.

    The payment stays pending; asking again with the same idempotency key is safe.
    """


class GatewayNotFound(GatewayError):  # noqa: N818 - the name the services use
    """A lookup found no such object at the gateway (Stripe: 404 `resource_missing` on
    retrieve, or an empty search / list). Every other lookup failure is a plain GatewayError."""


class InvalidToken(Exception):  # noqa: N818 - reads as what it is
    """A client-side token the gateway does not know."""


class InvalidSignature(Exception):  # noqa: N818
    """A webhook whose signature is missing, wrong or outside the tolerance."""


class CardRefused(Exception):  # noqa: N818
    """The gateway refused to save a card (a decline when it is checked): final, with its code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


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
    # True for checkout (the customer is there: the gateway may ask for 3-D Secure and the
    # result is then `requires_action`); False only for merchant-initiated charges.
    customer_present: bool
    description: str  # what the shop calls it ("Order SO-00042")
    # Always `payment_id` (the idempotency key), `order_id` and `order_number`.
    metadata: dict[str, str]
    receipt_email: str  # "" sends none


class RefundRequest(_MoneyMovement):
    """The keyword arguments of `Gateway.refund`."""

    gateway_reference: str  # the charge's `GatewayResult.gateway_reference`
    reason: str  # "" or requested_by_customer / duplicate / fraudulent; else only in metadata
    metadata: dict[str, str]


class ChargeLookup(TypedDict):
    """The keyword arguments of `Gateway.lookup_charge`: what we know of a charge we asked for."""

    idempotency_key: str  # our Payment id (Stripe: `metadata.payment_id`)
    gateway_reference: str  # "" when the create call never answered
    token: str  # the card's token as it was when the charge began
    timeout: float


class RefundLookup(TypedDict):
    """The keyword arguments of `Gateway.lookup_refund`."""

    idempotency_key: str
    gateway_reference: str  # the refund's, "" when unknown
    charge_reference: str  # the charge's PaymentIntent
    timeout: float


class Gateway(Protocol):
    name: str

    # --- customers and cards -------------------------------------------------------------------
    def customer_create(self, *, email: str, user_id: str) -> str:
        """A gateway customer for one of our users (every card of theirs is attached to it)."""
        ...

    def setup_intent_create(self, *, customer: str) -> SetupIntentResult:
        """A session for saving a card with strong customer authentication (off-session use)."""
        ...

    def tokenize(self, card: CardDetails, *, customer: str) -> TokenizedCard:
        """Hand a typed card to the gateway at once, attached to `customer`; get back a
        reusable token. Raises CardRefused, GatewayError."""
        ...

    def attach(self, *, token: str, customer: str) -> TokenizedCard:
        """A card confirmed client-side (Stripe.js `pm_…`), attached to `customer` (again: a
        no-op). Raises InvalidToken, CardRefused, GatewayError."""
        ...

    def detach(self, *, token: str) -> None:
        """The card can no longer be charged (already detached or unknown: fine)."""
        ...

    # --- money ---------------------------------------------------------------------------------
    def charge(self, **request: Unpack[ChargeRequest]) -> GatewayResult:
        """Charge once per idempotency key. Raises GatewayError when the outcome is unknown."""
        ...

    def refund(self, **request: Unpack[RefundRequest]) -> GatewayResult:
        """Refund part or all of a charge, once per idempotency key. Raises GatewayError."""
        ...

    def cancel_charge(
        self, *, gateway_reference: str, idempotency_key: str, timeout: float
    ) -> GatewayResult:
        """Cancel a charge that waits for the customer (3-D Secure): failed `canceled` when
        canceled; its state when it cannot be (it succeeded meanwhile). Raises GatewayError
        when the outcome is unknown."""
        ...

    def lookup_charge(self, **lookup: Unpack[ChargeLookup]) -> GatewayResult:
        """The charge's state at the gateway now, read (never by creating it again). Raises
        GatewayNotFound when the gateway has no such charge (never created, or not searchable
        yet), GatewayError while it is otherwise unknown (processing, unreachable)."""
        ...

    def lookup_refund(self, **lookup: Unpack[RefundLookup]) -> GatewayResult:
        """The refund's state at the gateway now. Raises GatewayNotFound / GatewayError like
        `lookup_charge`."""
        ...

    # --- webhooks ------------------------------------------------------------------------------
    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        """Check the signature of a webhook and parse it. Raises InvalidSignature (only for a
        bad signature or a body that is not an event)."""
        ...
