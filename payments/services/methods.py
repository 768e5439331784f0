"""Saved payment methods and the gateway customer they belong to.

Each user has one customer per gateway (`GatewayCustomer`: a Stripe Customer with the user's
email and id), made on first need and reused for every card. A card is saved three ways, all
attached to that customer: typed (`card`: handed to the gateway at once), confirmed in the
browser through a setup intent (`token`: Stripe.js `pm_…`), or told by the gateway's
`setup.succeeded` webhook (`payment_method_from_setup`, idempotent with the browser's POST).
A deleted card is detached at the gateway once the deletion commits.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.db import IntegrityError, transaction

from accounts.models import User

from ..crypto import card_fingerprint, token_fingerprint
from ..exceptions import (
    DuplicatePaymentMethod,
    InvalidPaymentToken,
    PaymentDeclined,
    PaymentGatewayError,
)
from ..gateways import get_gateway
from ..gateways.base import (
    CardDetails,
    CardRefused,
    Gateway,
    GatewayError,
    InvalidToken,
    SetupIntentResult,
    TokenizedCard,
)
from ..models import GatewayCustomer, PaymentMethod
from ._shared import UNREACHABLE, _constraint_name, _lock_user, _own_method, logger

ONE_FINGERPRINT = "payments_method_user_fingerprint_unique"


def _customer_for(user: User, gateway: Gateway) -> str:
    """The user's customer at the gateway, made (and recorded) the first time it is needed.

    No transaction is held while the gateway answers. Two first requests at once may both make
    one: the first recorded wins, the other stays unused at the gateway (logged)."""
    found = (
        GatewayCustomer.objects.filter(user=user, gateway=gateway.name)
        .values_list("customer_id", flat=True)
        .first()
    )
    if found:
        return found
    try:
        customer_id = gateway.customer_create(email=user.email, user_id=str(user.pk))
    except GatewayError as error:
        raise PaymentGatewayError(UNREACHABLE) from error
    try:
        with transaction.atomic():
            GatewayCustomer.objects.create(user=user, gateway=gateway.name, customer_id=customer_id)
    except IntegrityError:
        recorded = GatewayCustomer.objects.get(user=user, gateway=gateway.name).customer_id
        if recorded != customer_id:
            logger.warning(
                "two gateway customers made at once; the first recorded is used",
                extra={"user_id": user.pk, "unused_customer": customer_id},
            )
        return recorded
    return customer_id


def payment_setup_intent_create(*, user: User) -> SetupIntentResult:
    """A card-saving session (off-session use, strong customer authentication) for the user's
    customer: the browser confirms it (Stripe.js `confirmSetup`) with its client secret."""
    gateway = get_gateway()
    customer = _customer_for(user, gateway)
    try:
        return gateway.setup_intent_create(customer=customer)
    except GatewayError as error:
        raise PaymentGatewayError(UNREACHABLE) from error


def payment_method_create(
    *,
    user: User,
    card: CardDetails | None = None,
    token: str | None = None,
    billing_details: dict[str, Any] | None = None,
    is_default: bool = False,
) -> PaymentMethod:
    """Save a card: hand it to the gateway at once, keep only what the gateway gives back.

    Exactly one of `card` (already validated) and `token` (confirmed client-side). A card the
    gateway declines is `PaymentDeclined` (402, its code). The same confirmed method posted
    again (or already stored by the `setup.succeeded` webhook) is the saved one; another method
    for the same card is `DuplicatePaymentMethod`."""
    if (card is None) == (token is None):
        raise ValueError("Pass exactly one of card and token.")
    gateway = get_gateway()
    if card is not None:
        fingerprint = card_fingerprint(card.number)
        # Refused before the gateway is even asked, so a duplicate leaves no token behind.
        if PaymentMethod.objects.filter(user=user, fingerprint=fingerprint).exists():
            raise DuplicatePaymentMethod
    customer = _customer_for(user, gateway)
    try:
        if card is not None:
            tokenized = gateway.tokenize(card, customer=customer)
        else:
            assert token is not None
            tokenized = gateway.attach(token=token, customer=customer)
            fingerprint = _token_fingerprint(gateway, tokenized)
    except InvalidToken:
        raise InvalidPaymentToken from None
    except CardRefused as refused:
        raise PaymentDeclined(refused.code) from None
    except GatewayError as error:
        raise PaymentGatewayError(UNREACHABLE) from error
    try:
        return _payment_method_save(
            user=user,
            gateway=gateway.name,
            tokenized=tokenized,
            fingerprint=fingerprint,
            billing_details=billing_details or {},
            is_default=is_default,
            on_duplicate="refuse" if card is not None else "same_method",
        )
    except DuplicatePaymentMethod:
        _detach(gateway.name, tokenized.token)  # the gateway keeps no copy we refused
        raise


def payment_method_from_setup(*, gateway_name: str, customer_id: str, token: str) -> None:
    """A card confirmed through a setup intent, as the gateway's webhook tells it: stored for
    the customer's user, unless it is already (the browser posted it first: nothing changes).
    A new gateway method for a card the user already has (same fingerprint) is detached at the
    gateway once stored nothing, as the API does for a duplicate.

    Unknown customers and refused or unknown cards are logged and dropped; an unknown outcome
    is `PaymentGatewayError` (the gateway sends the webhook again)."""
    extra = {"gateway": gateway_name, "customer": customer_id}
    owner = (
        GatewayCustomer.objects.select_related("user")
        .filter(gateway=gateway_name, customer_id=customer_id)
        .first()
    )
    if owner is None:
        logger.warning("card saved for a customer that is not ours", extra=extra)
        return
    gateway = get_gateway(gateway_name)
    try:
        tokenized = gateway.attach(token=token, customer=customer_id)
    except (InvalidToken, CardRefused) as error:
        logger.warning("card from a setup intent not saved: %r", error, extra=extra)
        return
    except GatewayError as error:
        raise PaymentGatewayError(UNREACHABLE) from error
    saved = _payment_method_save(
        user=owner.user,
        gateway=gateway_name,
        tokenized=tokenized,
        fingerprint=_token_fingerprint(gateway, tokenized),
        billing_details={},
        is_default=False,
        on_duplicate="existing",
    )
    if saved.gateway_token != tokenized.token:
        logger.info("a card saved twice through setup intents; the new one detached", extra=extra)
        transaction.on_commit(lambda: _detach(gateway_name, tokenized.token))


def _token_fingerprint(gateway: Gateway, tokenized: TokenizedCard) -> str:
    return token_fingerprint(gateway.name, tokenized.gateway_fingerprint or tokenized.token)


@transaction.atomic
def _payment_method_save(
    *,
    user: User,
    gateway: str,
    tokenized: TokenizedCard,
    fingerprint: str,
    billing_details: dict[str, Any],
    is_default: bool,
    on_duplicate: Literal["refuse", "same_method", "existing"],
) -> PaymentMethod:
    """Store a tokenized card. A card already saved (same fingerprint) is `DuplicatePaymentMethod`
    (`refuse`), returned if it is the very same gateway method (`same_method`: a confirmed
    method posted again, or after the webhook saved it), or returned (`existing`: the
    webhook)."""
    _lock_user(user)
    existing = PaymentMethod.objects.filter(user=user, fingerprint=fingerprint).first()
    if existing is not None:
        same = on_duplicate == "same_method" and existing.gateway_token == tokenized.token
        if same or on_duplicate == "existing":
            if is_default and not existing.is_default:
                _make_default(user, existing)
            return existing
        raise DuplicatePaymentMethod
    has_default = PaymentMethod.objects.filter(user=user, is_default=True).exists()
    make_default = is_default or not has_default  # a user's first card is the default
    if make_default and has_default:
        PaymentMethod.objects.filter(user=user, is_default=True).update(is_default=False)
    fields: dict[str, Any] = {
        "user": user,
        "gateway": gateway,
        "gateway_token": tokenized.token,
        "brand": tokenized.brand,
        "last4": tokenized.last4,
        "exp_month": tokenized.exp_month,
        "exp_year": tokenized.exp_year,
        "fingerprint": fingerprint,
        "billing_details": billing_details,  # encrypted by its field
        "is_default": make_default,
    }
    try:
        with transaction.atomic():
            method = PaymentMethod.objects.create(**fields)
    except IntegrityError as error:
        if _constraint_name(error) == ONE_FINGERPRINT:
            raise DuplicatePaymentMethod from None
        raise
    logger.info(
        "payment method saved",
        extra={"payment_method_id": str(method.pk), "user_id": user.pk, "brand": method.brand},
    )
    return method


def _make_default(user: User, method: PaymentMethod) -> None:
    PaymentMethod.objects.filter(user=user, is_default=True).update(is_default=False)
    method.is_default = True
    method.save(update_fields=["is_default", "updated_at"])


@transaction.atomic
def payment_method_set_default(*, user: User, payment_method_id: UUID) -> PaymentMethod:
    _lock_user(user)
    method = _own_method(user, payment_method_id)
    if not method.is_default:
        _make_default(user, method)
    return method


@transaction.atomic
def payment_method_delete(*, user: User, payment_method_id: UUID) -> None:
    """Forget a saved card; the newest other card becomes the default if this one was. Once
    the deletion commits the card is detached at its gateway, so it can never be charged again
    (a charge begun with it is still looked up by the token it began with)."""
    _lock_user(user)
    method = _own_method(user, payment_method_id)
    was_default = method.is_default
    gateway_name, token = method.gateway, method.gateway_token
    method.delete()
    if was_default:
        successor = PaymentMethod.objects.filter(user=user).order_by("-created_at").first()
        if successor is not None:
            successor.is_default = True
            successor.save(update_fields=["is_default", "updated_at"])
    transaction.on_commit(lambda: _detach(gateway_name, token))


def _detach(gateway_name: str, token: str) -> None:
    """Detach a card at its gateway; a failure is logged (the card is gone here either way)."""
    try:
        get_gateway(gateway_name).detach(token=token)
    except (GatewayError, LookupError) as error:
        logger.error(
            "could not detach a deleted card at the gateway: %s",
            error,
            extra={"gateway": gateway_name},
        )
