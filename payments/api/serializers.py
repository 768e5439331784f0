"""Input and output shapes of the payments API. Card input is validated here (Luhn, brand,
expiry, CVC) with messages that never repeat what was typed."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from common.parsers import JSONInputSerializer
from payments.cards import (
    brand_from_number,
    cvc_length,
    is_expired,
    is_well_formed,
    luhn_valid,
    normalize_number,
)
from payments.gateways.base import CardDetails
from payments.models import Payment, PaymentMethod


class CardInputSerializer(JSONInputSerializer):
    number = serializers.CharField(write_only=True, max_length=32, trim_whitespace=True)
    exp_month = serializers.IntegerField(min_value=1, max_value=12)
    exp_year = serializers.IntegerField(min_value=2000, max_value=2100)
    cvc = serializers.CharField(write_only=True, max_length=8, trim_whitespace=True)

    def validate_number(self, value: str) -> str:
        number = normalize_number(value)
        if not is_well_formed(number):
            raise serializers.ValidationError("Enter a card number of 12 to 19 digits.")
        if not luhn_valid(number):
            raise serializers.ValidationError("This card number is not valid.")
        if brand_from_number(number) == "unknown":
            raise serializers.ValidationError("This card brand is not supported.")
        return number

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        month, year = attrs["exp_month"], attrs["exp_year"]
        today = timezone.now().date()
        if is_expired(month, year, today=today):
            field = "exp_year" if year < today.year else "exp_month"
            raise serializers.ValidationError({field: "The card has expired."})
        digits = cvc_length(brand_from_number(attrs["number"]))
        cvc = attrs["cvc"]
        if not (cvc.isdigit() and len(cvc) == digits):
            raise serializers.ValidationError(
                {"cvc": f"Enter the {digits}-digit security code of the card."}
            )
        return attrs


class BillingAddressSerializer(JSONInputSerializer):
    line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    state = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, min_length=2, required=False)


class BillingDetailsSerializer(JSONInputSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    address = BillingAddressSerializer(required=False)


def _test_card(title: str, number: str, description: str) -> OpenApiExample:
    """A card the test gateway answers by number (README, "Payments")."""
    return OpenApiExample(
        title,
        description=description,
        value={
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            "billing_details": {"name": "Ada Lovelace", "address": {"country": "DE"}},
            "is_default": True,
        },
        request_only=True,
    )


@extend_schema_serializer(
    examples=[
        _test_card("Test card: succeeds", "4242424242424242", "Every payment succeeds."),
        _test_card("Test card: declined", "4000000000000002", "Payments fail: `card_declined`."),
        _test_card(
            "Test card: insufficient funds",
            "4000000000009995",
            "Payments fail: `insufficient_funds`.",
        ),
        _test_card(
            "Test card: processing error",
            "4000000000000119",
            "Payments fail: `processing_error`.",
        ),
        OpenApiExample(
            "Stripe token",
            description="With `PAYMENT_GATEWAY=stripe`: a PaymentMethod made by Stripe.js.",
            value={"token": "pm_card_visa"},
            request_only=True,
        ),
    ]
)
class PaymentMethodCreateInputSerializer(JSONInputSerializer):
    card = CardInputSerializer(required=False)
    token = serializers.CharField(required=False, max_length=255)
    billing_details = BillingDetailsSerializer(required=False)
    is_default = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("card" in attrs) == ("token" in attrs):
            raise serializers.ValidationError("Send either a card or a token, not both.")
        return attrs

    def card_details(self) -> CardDetails | None:
        card = self.validated_data.get("card")
        if card is None:
            return None
        return CardDetails(
            number=card["number"],
            exp_month=card["exp_month"],
            exp_year=card["exp_year"],
            cvc=card["cvc"],
        )


class PaymentMethodOutputSerializer(serializers.ModelSerializer[PaymentMethod]):
    billing_details = BillingDetailsSerializer(read_only=True)

    class Meta:
        model = PaymentMethod
        fields = (
            "id",
            "kind",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "is_default",
            "billing_details",
            "created_at",
        )
        read_only_fields = fields


class PaymentOutputSerializer(serializers.ModelSerializer[Payment]):
    order = serializers.UUIDField(source="order_id", read_only=True)

    class Meta:
        model = Payment
        fields = (
            "id",
            "order",
            "kind",
            "amount_cents",
            "currency",
            "status",
            "failure_code",
            "created_at",
        )
        read_only_fields = fields


class SetupIntentOutputSerializer(serializers.Serializer[dict[str, Any]]):
    client_secret = serializers.CharField(
        help_text="For Stripe.js `confirmSetup`: lets the browser finish this one setup intent."
    )
    gateway = serializers.CharField(help_text="The configured gateway (`test` or `stripe`).")


class WebhookAckSerializer(serializers.Serializer[dict[str, Any]]):
    received = serializers.BooleanField()
    duplicate = serializers.BooleanField(help_text="True when this event id was seen before.")
