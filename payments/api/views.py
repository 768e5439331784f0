"""Thin views: validate, call one service or selector, serialize."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from common.openapi import domain_error_responses
from payments import selectors, services
from payments.exceptions import (
    DuplicatePaymentMethod,
    InvalidPaymentToken,
    InvalidWebhook,
    PaymentDeclined,
    PaymentGatewayError,
    WebhookRetryLater,
)
from payments.gateways import get_gateway
from payments.gateways.base import InvalidSignature
from payments.models import Payment, PaymentMethod
from payments.throttles import PaymentMethodAddressThrottle, PaymentMethodUserThrottle

from .filters import PaymentFilter
from .serializers import (
    PaymentMethodCreateInputSerializer,
    PaymentMethodOutputSerializer,
    PaymentOutputSerializer,
    SetupIntentOutputSerializer,
    WebhookAckSerializer,
)


def _user(request: Request) -> User:
    assert isinstance(request.user, User)
    return request.user


@extend_schema_view(
    list=extend_schema(summary="Your saved payment methods (default first)"),
    destroy=extend_schema(summary="Forget a saved payment method"),
)
class PaymentMethodViewSet(
    mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet[PaymentMethod]
):
    queryset = PaymentMethod.objects.all()
    serializer_class = PaymentMethodOutputSerializer

    def get_throttles(self) -> list[Any]:
        """Saving a card (and starting to) is also limited per user and per address (card
        testing)."""
        throttles = super().get_throttles()
        if self.action in ("create", "setup_intent"):
            throttles += [PaymentMethodUserThrottle(), PaymentMethodAddressThrottle()]
        return throttles

    def get_queryset(self) -> QuerySet[PaymentMethod]:
        if getattr(self, "swagger_fake_view", False):
            return PaymentMethod.objects.none()
        return selectors.payment_method_list(user=_user(self.request))

    @extend_schema(
        summary="Save a card (or a client-side token)",
        description=(
            "The card is validated (Luhn, brand, expiry, CVC), handed to the gateway at once, "
            "and never stored: only the gateway's token, brand, last4, expiry and a keyed "
            "fingerprint are kept. A card the gateway declines is a 402 with its code. "
            "`{token}` is a method confirmed client-side (Stripe.js after `setup-intent/`); "
            "posting one the gateway's webhook already saved answers with the saved method."
        ),
        request=PaymentMethodCreateInputSerializer,
        responses={
            201: PaymentMethodOutputSerializer,
            **domain_error_responses(
                DuplicatePaymentMethod, InvalidPaymentToken, PaymentDeclined, PaymentGatewayError
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = PaymentMethodCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        method = services.payment_method_create(
            user=_user(request),
            card=serializer.card_details(),
            token=data.get("token"),
            billing_details=data.get("billing_details"),
            is_default=data["is_default"],
        )
        return Response(PaymentMethodOutputSerializer(method).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Start saving a card with strong customer authentication",
        description=(
            "A setup intent at the gateway for the caller's customer (made on first need), for "
            "off-session use: Stripe.js confirms it with `client_secret` (`confirmSetup`, 3-D "
            "Secure when the bank asks), then POST `payment-methods/` `{token}` with the "
            "confirmed method (the gateway's `setup_intent.succeeded` webhook saves it too). "
            "Throttled like saving a card."
        ),
        request=None,
        responses={201: SetupIntentOutputSerializer, **domain_error_responses(PaymentGatewayError)},
    )
    @action(detail=False, methods=["post"], url_path="setup-intent")
    def setup_intent(self, request: Request) -> Response:
        intent = services.payment_setup_intent_create(user=_user(request))
        body = {"client_secret": intent.client_secret, "gateway": settings.PAYMENT_GATEWAY}
        return Response(SetupIntentOutputSerializer(body).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: PaymentMethod) -> None:
        services.payment_method_delete(user=_user(self.request), payment_method_id=instance.pk)

    @extend_schema(
        summary="Make this the default payment method",
        request=None,
        responses={200: PaymentMethodOutputSerializer},
    )
    @action(detail=True, methods=["post"], url_path="set-default")
    def set_default(self, request: Request, pk: str | None = None) -> Response:
        method = services.payment_method_set_default(
            user=_user(request), payment_method_id=self.get_object().pk
        )
        return Response(PaymentMethodOutputSerializer(method).data)


@extend_schema_view(
    list=extend_schema(summary="Payments: your own, or all for staff (newest first)"),
    retrieve=extend_schema(summary="One payment"),
)
class PaymentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Payment]
):
    queryset = Payment.objects.all()
    serializer_class = PaymentOutputSerializer
    filterset_class = PaymentFilter

    def get_queryset(self) -> QuerySet[Payment]:
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        return selectors.payment_list(user=self.request.user)


class PaymentWebhookView(APIView):
    """Events from a payment gateway. Authenticated by the body's signature, not a user."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []  # the gateway retries on 429; its signature is the gate

    @extend_schema(
        summary="Receive a signed gateway event",
        description=(
            'Test gateway: `X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` '
            "with `PAYMENT_WEBHOOK_SECRET`, five minutes of tolerance. Stripe: "
            "`Stripe-Signature`. An event id seen before answers 200 and does nothing; so does "
            "an event about no payment of ours (logged). An event about a charge not settled "
            "here yet (a dashboard refund or dispute before the charge's success) is 409, and "
            "a card the gateway could not describe 502: both are sent again by the gateway."
        ),
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(
                "X-Signature",
                str,
                OpenApiParameter.HEADER,
                description="The test gateway's signature (`PAYMENT_GATEWAY=test`).",
            ),
            OpenApiParameter(
                "Stripe-Signature",
                str,
                OpenApiParameter.HEADER,
                description="Stripe's signature (`PAYMENT_GATEWAY=stripe`).",
            ),
        ],
        responses={
            200: WebhookAckSerializer,
            **domain_error_responses(InvalidWebhook, WebhookRetryLater, PaymentGatewayError),
        },
        auth=[],
    )
    def post(self, request: Request, gateway: str) -> Response:
        if gateway != settings.PAYMENT_GATEWAY:
            raise NotFound("No such payment gateway.")
        raw_body = request.body  # the exact bytes that were signed (never parsed first)
        try:
            event = get_gateway(gateway).verify_webhook(headers=request.headers, raw_body=raw_body)
        except InvalidSignature as error:
            raise InvalidWebhook(str(error)) from None
        processed = services.webhook_event_handle(gateway=gateway, event=event)
        return Response(WebhookAckSerializer({"received": True, "duplicate": not processed}).data)
