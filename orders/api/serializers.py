from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from common.exceptions import BIGINT_MAX
from common.parsers import JSONInputSerializer
from orders.models import CartItem, Order, OrderEvent, OrderItem
from orders.pricing import PricedLine, line_total_cents, totals_for
from orders.selectors import OrderDetail
from payments.api.serializers import PaymentOutputSerializer
from payments.models import Payment

# --- cart --------------------------------------------------------------------------------------


class CartProductOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    price_cents = serializers.IntegerField()


class CartItemOutputSerializer(serializers.ModelSerializer[CartItem]):
    product = CartProductOutputSerializer()
    line_total_cents = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField()

    class Meta:
        model = CartItem
        fields = ("id", "product", "quantity", "line_total_cents", "available")

    def get_line_total_cents(self, item: CartItem) -> int:
        return line_total_cents(unit_price_cents=item.product.price_cents, quantity=item.quantity)

    def get_available(self, item: CartItem) -> int:
        return int(item.product.stock.available)


class CartOutputSerializer(serializers.Serializer[Any]):
    items = CartItemOutputSerializer(many=True)
    subtotal_cents = serializers.IntegerField()
    currency = serializers.CharField()


class CartItemAddInputSerializer(JSONInputSerializer):
    product = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)


class CartItemUpdateInputSerializer(JSONInputSerializer):
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)


# --- orders ------------------------------------------------------------------------------------


class ShippingAddressSerializer(JSONInputSerializer):
    name = serializers.CharField(max_length=200)
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20)
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$",
        help_text="ISO 3166-1 alpha-2 code, e.g. `DE`.",
        error_messages={"invalid": "Enter a two-letter ISO 3166-1 country code, e.g. DE."},
    )

    def validate_country(self, value: str) -> str:
        return value.upper()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Check out the cart",
            value={
                "shipping_address": {
                    "name": "Ada Lovelace",
                    "line1": "Friedrichstraße 123",
                    "line2": "3rd floor",
                    "city": "Berlin",
                    "postal_code": "10117",
                    "country": "DE",
                },
                "note": "Please leave the parcel with the concierge.",
            },
            request_only=True,
        )
    ]
)
class OrderPlaceInputSerializer(JSONInputSerializer):
    shipping_address = ShippingAddressSerializer()
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


# What `OrderPlaceInputSerializer` accepts without a doubt, checked without running it (the
# serializer costs more than the rest of the view's own work): (field, max length, required).
_ADDRESS_FIELDS = (
    ("name", 200, True),
    ("line1", 200, True),
    ("line2", 200, False),
    ("city", 100, True),
    ("postal_code", 20, True),
)
_NOTE_MAX_LENGTH = 1000
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")  # CharField's null and surrogate checks
_COUNTRY = re.compile("[A-Za-z]{2}")


def order_place_input(data: Any) -> dict[str, Any] | None:
    """`OrderPlaceInputSerializer(data=data).validated_data` for a body it certainly accepts
    (strings only, each within its length as sent, then trimmed, without null or surrogate
    characters), or None whenever in doubt: the caller then runs the serializer, which accepts
    or words the 400 (so every error body is the serializer's). A test holds the two equal."""
    if type(data) is not dict:
        return None
    given = data.get("shipping_address")
    if type(given) is not dict:
        return None
    address: dict[str, str] = {}
    for field, max_length, required in _ADDRESS_FIELDS:
        if field not in given:
            if required:
                return None
            address[field] = ""
            continue
        value = given[field]
        if type(value) is not str or len(value) > max_length:  # the length as sent
            return None
        value = value.strip()
        if (required and not value) or _REFUSED_CHARACTERS.search(value):
            return None
        address[field] = value
    country = given.get("country")
    if type(country) is not str:
        return None
    country = country.strip()
    if _COUNTRY.fullmatch(country) is None:
        return None
    address["country"] = country.upper()
    note = data.get("note", "")
    if type(note) is not str or len(note) > _NOTE_MAX_LENGTH:
        return None
    note = note.strip()
    if _REFUSED_CHARACTERS.search(note):
        return None
    return {"shipping_address": address, "note": note}


class OrderShipInputSerializer(JSONInputSerializer):
    carrier = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    tracking_number = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )


class OrderCustomerOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class OrderItemOutputSerializer(serializers.ModelSerializer[OrderItem]):
    class Meta:
        model = OrderItem
        fields = ("product", "sku", "name", "unit_price_cents", "quantity", "line_total_cents")


class OrderEventOutputSerializer(serializers.ModelSerializer[OrderEvent]):
    from_status = serializers.SerializerMethodField()
    actor = serializers.PrimaryKeyRelatedField[Any](
        read_only=True, allow_null=True, help_text="Who made the move; null for the system."
    )

    class Meta:
        model = OrderEvent
        fields = ("from_status", "to_status", "actor", "note", "created_at")

    @extend_schema_field(serializers.ChoiceField(choices=Order.Status.choices, allow_null=True))
    def get_from_status(self, event: OrderEvent) -> str | None:
        """Null on the first event (the order was placed)."""
        return event.from_status or None


class OrderListOutputSerializer(serializers.ModelSerializer[Order]):
    customer = OrderCustomerOutputSerializer(source="user")

    class Meta:
        model = Order
        fields = (
            "id",
            "number",
            "status",
            "customer",
            "subtotal_cents",
            "total_cents",
            "currency",
            "expires_at",
            "created_at",
            "updated_at",
        )


# An order's detail, from what `selectors.order_get` returns (an `OrderDetail`): the order's
# fields, and its payments beside it. (A comment: a docstring would describe it in the schema.)
class OrderOutputSerializer(OrderListOutputSerializer):
    items = OrderItemOutputSerializer(many=True)
    shipping_address = ShippingAddressSerializer()
    events = OrderEventOutputSerializer(many=True)
    payments = serializers.SerializerMethodField()
    payment_confirming = serializers.SerializerMethodField(
        help_text=(
            "True while a charge's outcome is not known yet (the payment provider did not answer "
            "in time): the payment is being confirmed with the provider, the customer is never "
            "charged twice, and the order does not expire meanwhile."
        )
    )

    class Meta(OrderListOutputSerializer.Meta):
        fields = (  # type: ignore[assignment]
            "id",
            "number",
            "status",
            "customer",
            "items",
            "subtotal_cents",
            "total_cents",
            "currency",
            "shipping_address",
            "note",
            "carrier",
            "tracking_number",
            "events",
            "payments",
            "payment_confirming",
            "expires_at",
            "created_at",
            "updated_at",
        )

    def __init__(self, detail: OrderDetail | None = None, **kwargs: Any) -> None:
        """`detail` is None only where no order is shown (the schema)."""
        super().__init__(None if detail is None else detail.order, **kwargs)
        self._payments: list[Payment] = [] if detail is None else detail.payments

    def get_payment_confirming(self, order: Order) -> bool:
        return any(
            payment.kind == Payment.Kind.CHARGE and payment.status == Payment.Status.PENDING
            for payment in self._payments
        )

    @extend_schema_field(PaymentOutputSerializer(many=True))
    def get_payments(self, order: Order) -> list[dict[str, Any]]:
        """The order's charges and refunds, oldest first (`selectors.order_get` loads them)."""
        return PaymentOutputSerializer(self._payments, many=True).data  # type: ignore[return-value]


def cart_representation(items: list[CartItem]) -> dict[str, Any]:
    totals = totals_for(
        PricedLine(unit_price_cents=item.product.price_cents, quantity=item.quantity)
        for item in items
    )
    return {
        "items": items,
        "subtotal_cents": totals.subtotal_cents,
        "currency": settings.STORE_CURRENCY,
    }


class OrderPayInputSerializer(JSONInputSerializer):
    payment_method = serializers.UUIDField(help_text="One of your saved payment methods.")


class OrderPayActionOutputSerializer(serializers.Serializer[Any]):
    """202: the card's bank wants the customer to authenticate (3-D Secure). The order stays
    pending (and does not expire) until the gateway reports the outcome; asking to pay again
    meanwhile answers the same."""

    status = serializers.ChoiceField(choices=["requires_action"])
    client_secret = serializers.CharField(
        help_text="For Stripe.js `handleNextAction`: it lets this browser finish this payment."
    )
    payment = serializers.UUIDField(help_text="The charge waiting for authentication.")


def order_pay_action_representation(*, payment_id: Any, client_secret: str) -> dict[str, Any]:
    return {
        "status": "requires_action",
        "client_secret": client_secret,
        "payment": str(payment_id),
    }


class OrderRefundPendingOutputSerializer(serializers.Serializer[Any]):
    """202: the gateway accepted the refund but has not decided it yet. The order keeps its
    status; once the refund succeeds it moves as for any refund (a full one: `refunded`, a
    cancel's units back on hand), and a refund that fails leaves it as it is."""

    status = serializers.ChoiceField(choices=["refund_pending"])
    payment = serializers.UUIDField(help_text="The refund, pending at the gateway.")


def order_refund_pending_representation(*, payment_id: Any) -> dict[str, Any]:
    return {"status": "refund_pending", "payment": str(payment_id)}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Full refund, units back on hand",
            value={"restock": True, "reason": "Customer returned the parcel unopened."},
            request_only=True,
        ),
        OpenApiExample(
            "Partial refund",
            value={"amount_cents": 1500, "restock": False, "reason": "Damaged in transit."},
            request_only=True,
        ),
    ]
)
class OrderRefundInputSerializer(JSONInputSerializer):
    amount_cents = serializers.IntegerField(
        min_value=1,
        max_value=BIGINT_MAX,
        required=False,
        help_text="Omit for a full refund of what is still captured.",
    )
    restock = serializers.BooleanField(
        help_text="Put the order's units back on hand (full refunds only)."
    )
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


_DATETIME = serializers.DateTimeField()


def order_placed_representation(order: Order) -> dict[str, Any]:
    """What `OrderOutputSerializer` shows for an order `services.order_place` just returned (its
    items and event loaded, no payments yet), built without a query or a serializer: the 201 of
    a checkout. A test holds it equal to the order's detail."""
    user = order.user
    address = order.shipping_address
    created_at = _DATETIME.to_representation(order.created_at)
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "customer": {"id": user.pk, "email": user.email},
        "items": [
            {
                "product": item.product_id,
                "sku": item.sku,
                "name": item.name,
                "unit_price_cents": item.unit_price_cents,
                "quantity": item.quantity,
                "line_total_cents": item.line_total_cents,
            }
            for item in order.items.all()
        ],
        "subtotal_cents": order.subtotal_cents,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "shipping_address": {
            field: address.get(field, "")
            for field in ("name", "line1", "line2", "city", "postal_code", "country")
        },
        "note": order.note,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "events": [
            {
                "from_status": event.from_status or None,
                "to_status": event.to_status,
                "actor": event.actor_id,
                "note": event.note,
                "created_at": _DATETIME.to_representation(event.created_at),
            }
            for event in order.events.all()
        ],
        "payments": [],
        "payment_confirming": False,
        "expires_at": order.expires_at and _DATETIME.to_representation(order.expires_at),
        "created_at": created_at,
        "updated_at": _DATETIME.to_representation(order.updated_at),
    }
