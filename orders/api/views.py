"""Thin views: validate, call one service or selector, serialize."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsStaff
from accounts.security import client_ip
from common.idempotency import (
    IDEMPOTENCY_ERRORS,
    IDEMPOTENCY_KEY_PARAMETER,
    idempotent,
    idempotent_atomic,
)
from common.openapi import domain_error_responses
from inventory.exceptions import InsufficientStock
from orders import selectors, services
from orders.exceptions import (
    CartEmpty,
    EmailNotVerified,
    InvalidTransition,
    OrderDisputed,
    OrderExpired,
    OrderTotalTooLarge,
    PartialRestock,
    ProductUnavailable,
    RefundFailed,
)
from orders.models import CartItem, Order
from payments.exceptions import (
    PaymentDeclined,
    PaymentGatewayError,
    PaymentInProgress,
    PaymentMethodNotFound,
    PaymentMethodUnusable,
    RefundExceedsCaptured,
)
from payments.throttles import PaymentDeclineLimit

from .filters import OrderFilter
from .serializers import (
    CartItemAddInputSerializer,
    CartItemOutputSerializer,
    CartItemUpdateInputSerializer,
    CartOutputSerializer,
    OrderListOutputSerializer,
    OrderOutputSerializer,
    OrderPayActionOutputSerializer,
    OrderPayInputSerializer,
    OrderPlaceInputSerializer,
    OrderRefundInputSerializer,
    OrderRefundPendingOutputSerializer,
    OrderShipInputSerializer,
    cart_representation,
    order_pay_action_representation,
    order_place_input,
    order_placed_representation,
    order_refund_pending_representation,
)


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran first
    return request.user


# --- cart --------------------------------------------------------------------------------------


class CartView(APIView):
    @extend_schema(responses=CartOutputSerializer, operation_id="cart_retrieve")
    def get(self, request: Request) -> Response:
        items = list(selectors.cart_item_list(user=_user(request)))
        return Response(CartOutputSerializer(cart_representation(items)).data)

    @extend_schema(responses={204: None}, operation_id="cart_clear")
    def delete(self, request: Request) -> Response:
        services.cart_clear(user=_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CartItemListView(APIView):
    @extend_schema(
        request=CartItemAddInputSerializer,
        responses={
            201: CartItemOutputSerializer,
            **domain_error_responses(ProductUnavailable, InsufficientStock),
        },
        operation_id="cart_items_create",
    )
    def post(self, request: Request) -> Response:
        data = CartItemAddInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.cart_item_add(
            user=_user(request),
            product_id=data.validated_data["product"],
            quantity=data.validated_data["quantity"],
        )
        return Response(CartItemOutputSerializer(item).data, status=status.HTTP_201_CREATED)


class CartItemDetailView(APIView):
    @extend_schema(
        request=CartItemUpdateInputSerializer,
        responses={
            200: CartItemOutputSerializer,
            **domain_error_responses(ProductUnavailable, InsufficientStock),
        },
        operation_id="cart_items_partial_update",
    )
    def patch(self, request: Request, item_id: int) -> Response:
        # A partial update, as PATCH is: a body without `quantity` changes nothing.
        data = CartItemUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            if "quantity" in data.validated_data:
                item = services.cart_item_update(
                    user=_user(request), item_id=item_id, quantity=data.validated_data["quantity"]
                )
            else:
                item = selectors.cart_item_list(user=_user(request)).get(pk=item_id)
        except CartItem.DoesNotExist:
            raise Http404 from None
        return Response(CartItemOutputSerializer(item).data)

    @extend_schema(responses={204: None}, operation_id="cart_items_destroy")
    def delete(self, request: Request, item_id: int) -> Response:
        try:
            services.cart_item_remove(user=_user(request), item_id=item_id)
        except CartItem.DoesNotExist:
            raise Http404 from None
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- orders ------------------------------------------------------------------------------------


class OrderViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Order]
):
    """Customers see their own orders, staff every order; anyone else's order answers 404."""

    filterset_class = OrderFilter

    def get_queryset(self) -> QuerySet[Order]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Order.objects.none()
        if self.action == "retrieve":
            return selectors.order_detail_queryset(user=self.request.user)
        return selectors.order_list(user=self.request.user)

    def get_serializer_class(self) -> type[OrderListOutputSerializer]:
        return OrderOutputSerializer if self.action == "retrieve" else OrderListOutputSerializer

    def _detail(self, order_id: UUID, *, status_code: int = status.HTTP_200_OK) -> Response:
        try:
            detail = selectors.order_get(user=self.request.user, order_id=order_id)
        except Order.DoesNotExist:
            raise Http404 from None
        return Response(OrderOutputSerializer(detail).data, status=status_code)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            order_id = UUID(kwargs["pk"])  # what the id column accepts (UUIDField.to_python)
        except ValueError:
            raise Http404 from None  # a malformed id names no order
        return self._detail(order_id)

    @extend_schema(
        request=OrderPlaceInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: OrderOutputSerializer,
            **domain_error_responses(
                CartEmpty,
                ProductUnavailable,
                OrderTotalTooLarge,
                EmailNotVerified,
                InsufficientStock,
                *IDEMPOTENCY_ERRORS,
            ),
        },
    )
    @idempotent_atomic
    def create(self, request: Request) -> Response:
        """Check out the cart: an order `pending` payment, its stock reserved, the cart emptied."""
        validated = order_place_input(request.data)
        if validated is None:  # an unusual body, or a 400: the serializer decides and words it
            data = OrderPlaceInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            validated = data.validated_data
        order = services.order_place(
            user=_user(request),
            shipping_address=validated["shipping_address"],
            note=validated["note"],
        )
        # Built from what the service holds (items and event loaded): no read, no serializer.
        return Response(order_placed_representation(order), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            200: OrderOutputSerializer,
            202: OrderRefundPendingOutputSerializer,
            **domain_error_responses(
                InvalidTransition, PaymentInProgress, RefundFailed, PaymentGatewayError
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Owner or staff. Pending: the reserved stock is released. Paid: refunded and restocked
        (202 `refund_pending` while the gateway has not decided the refund: the order stays
        paid until it does)."""
        order = self.get_object()
        outcome = services.order_cancel_attempt(order_id=order.pk, actor=_user(request))
        return self._refunded(order.pk, outcome)

    def _refunded(self, order_id: UUID, outcome: services.RefundOutcome) -> Response:
        if outcome.pending:
            assert outcome.refund is not None
            return Response(
                order_refund_pending_representation(payment_id=outcome.refund.pk),
                status=status.HTTP_202_ACCEPTED,
            )
        return self._detail(order_id)

    @extend_schema(
        request=OrderShipInputSerializer,
        responses={
            200: OrderOutputSerializer,
            **domain_error_responses(InvalidTransition, OrderDisputed),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def ship(self, request: Request, pk: str) -> Response:
        """Staff: paid → shipped, with the carrier and tracking number. Refused while the
        customer disputes the payment (409 `order_disputed`)."""
        data = OrderShipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_object()
        services.order_ship(order_id=order.pk, actor=_user(request), **data.validated_data)
        return self._detail(order.pk)

    @extend_schema(
        request=None,
        responses={200: OrderOutputSerializer, **domain_error_responses(InvalidTransition)},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    def deliver(self, request: Request, pk: str) -> Response:
        """Staff: shipped → delivered."""
        order = self.get_object()
        services.order_deliver(order_id=order.pk, actor=_user(request))
        return self._detail(order.pk)

    @extend_schema(
        request=OrderPayInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: OrderOutputSerializer,
            202: OrderPayActionOutputSerializer,
            **domain_error_responses(
                PaymentMethodNotFound,
                PaymentMethodUnusable,
                InvalidTransition,
                OrderExpired,
                PaymentInProgress,
                PaymentDeclined,
                PaymentGatewayError,
                *IDEMPOTENCY_ERRORS,
            ),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def pay(self, request: Request, pk: str) -> Response:
        """Owner: charge the order's total with a saved method; pending → paid, stock sold.
        A decline answers 402 with the gateway's code and the order stays pending. A card that
        needs authentication (3-D Secure) answers 202 with the client secret that finishes it;
        the order stays pending until the gateway confirms it."""
        data = OrderPayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_object()
        # Card testing: declines are limited per user and per address (payments/throttles.py);
        # over the limit this is a 429 before the gateway is asked.
        attempt = PaymentDeclineLimit().begin(
            address=client_ip(request) or "", user_id=_user(request).pk
        )
        declined = False
        try:
            outcome = services.order_pay_attempt(
                order_id=order.pk,
                user=_user(request),
                payment_method_id=data.validated_data["payment_method"],
            )
        except PaymentDeclined as error:
            # `gateway_*`: the shop's own setup failed (its keys, its account), not the card.
            declined = not error.code.startswith("gateway_")
            raise
        except Order.DoesNotExist:
            raise Http404 from None  # staff may see the order, but only its owner pays it
        finally:
            if declined:
                attempt.failed()  # the slot stays taken: one decline counted
            else:
                attempt.succeeded()
        if outcome.requires_action:
            return Response(
                order_pay_action_representation(
                    payment_id=outcome.payment.pk, client_secret=outcome.client_secret
                ),
                status=status.HTTP_202_ACCEPTED,
            )
        return self._detail(order.pk)

    @extend_schema(
        request=OrderRefundInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: OrderOutputSerializer,
            202: OrderRefundPendingOutputSerializer,
            **domain_error_responses(
                RefundExceedsCaptured,
                PartialRestock,
                InvalidTransition,
                RefundFailed,
                PaymentGatewayError,
                *IDEMPOTENCY_ERRORS,
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[IsStaff])
    @idempotent
    def refund(self, request: Request, pk: str) -> Response:
        """Staff: refund a paid, shipped or delivered order, in full (→ refunded) or in part.
        202 `refund_pending` when the gateway accepted the refund without deciding it yet: the
        order keeps its status until it does."""
        data = OrderRefundInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_object()
        outcome = services.order_refund_attempt(
            order_id=order.pk,
            actor=_user(request),
            amount_cents=data.validated_data.get("amount_cents"),
            restock=data.validated_data["restock"],
            reason=data.validated_data["reason"],
        )
        return self._refunded(order.pk, outcome)
