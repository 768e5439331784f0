"""Every state change of carts and orders.

Why one long module: the order state machine and every move on it (checkout, pay, cancel,
refund, expiry, reconciliation) share the lock order below and the private helpers that keep
it; one place for these rules is the point (docs/ARCHITECTURE.md, "where rules live").

Locks are always taken in the same order, so no two services can deadlock: the cart row (per
user), then the order row, then (last, inside `inventory.services`) the stock rows in product-id
order. The stock call comes **last** in each transaction: a stock row's lock is then held only
from that statement to the commit right after it, never across our own work. This is what lets
a hot product sell at nearly the rate of many cold ones (see bench/bench_checkout.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import User
from common import metrics
from common.emails import send_email
from common.exceptions import BIGINT_MAX, ErrorItem
from common.idempotency import savepoint_needed
from inventory.exceptions import InsufficientStock, Shortage
from inventory.models import Product
from inventory.selectors import product_get_for_sale
from inventory.services import (
    StockLine,
    stock_commit_sale,
    stock_release,
    stock_reserve,
    stock_restock,
)
from payments.exceptions import (
    PaymentDeclined,
    PaymentGatewayError,
    PaymentInProgress,
    RefundExceedsCaptured,
)
from payments.models import Payment
from payments.selectors import (
    payment_get,
    payment_succeeded_charge,
    payment_succeeded_charges_since,
    pending_charges,
)
from payments.services import (
    payment_captured_cents,
    payment_charge_begin,
    payment_charge_execute,
    payment_refund_begin,
    payment_refund_execute,
    payment_settle,
)

from . import models as order_models
from .exceptions import (
    CartEmpty,
    EmailNotVerified,
    InvalidTransition,
    OrderExpired,
    OrderTotalTooLarge,
    PartialRestock,
    ProductUnavailable,
    RefundFailed,
)
from .models import Cart, CartItem, Order, OrderEvent, OrderItem
from .pricing import PricedLine, format_money, totals_for
from .selectors import PaymentMismatch, payment_audit

_NUMBER_ATTEMPTS = 5
_STATUS_EMAILS: dict[str, str] = {
    Order.Status.SHIPPED: "order_shipped",
    Order.Status.CANCELLED: "order_cancelled",
    Order.Status.REFUNDED: "order_refunded",
}
EXPIRED_NOTE = "expired"
# Statuses from which money can go back (API.md: refund on paid, shipped or delivered).
_REFUNDABLE = frozenset({Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED})

logger = logging.getLogger(__name__)


# --- cart --------------------------------------------------------------------------------------


def _cart_lock(*, user: User) -> Cart:
    """The user's cart, created on first use, locked: a user's cart changes one at a time."""
    cart, _ = Cart.objects.get_or_create(user=user)
    return Cart.objects.select_for_update().get(pk=cart.pk)


def _for_sale(*, product_id: int) -> Product:
    try:
        return product_get_for_sale(product_id=product_id)
    except Product.DoesNotExist:
        raise ProductUnavailable(
            items=[ErrorItem(f"Product {product_id} is not for sale.", attr="product")]
        ) from None


def _check_available(*, product: Product, quantity: int) -> None:
    """A cart reserves nothing; this refuses lines that could not be checked out right now."""
    available = product.stock.available
    if quantity > available:
        raise InsufficientStock(
            shortages=[
                Shortage(
                    product_id=product.pk,
                    sku=product.sku,
                    requested=quantity,
                    available=available,
                )
            ]
        )


@transaction.atomic
def cart_item_add(*, user: User, product_id: int, quantity: int) -> CartItem:
    """Put `quantity` of a product in the cart; the same product again adds to its line."""
    product = _for_sale(product_id=product_id)
    cart = _cart_lock(user=user)
    item = CartItem.objects.filter(cart=cart, product=product).first()
    new_quantity = quantity + (item.quantity if item else 0)
    _check_available(product=product, quantity=new_quantity)
    if item is None:
        item = CartItem.objects.create(cart=cart, product=product, quantity=new_quantity)
    else:
        item.quantity = new_quantity
        item.save(update_fields=["quantity", "updated_at"])
    item.product = product
    return item


@transaction.atomic
def cart_item_update(*, user: User, item_id: int, quantity: int) -> CartItem:
    """Set a line's quantity. Another user's line raises `CartItem.DoesNotExist` (→ 404)."""
    cart = _cart_lock(user=user)
    item = CartItem.objects.get(pk=item_id, cart=cart)
    product = _for_sale(product_id=item.product_id)
    _check_available(product=product, quantity=quantity)
    item.quantity = quantity
    item.save(update_fields=["quantity", "updated_at"])
    item.product = product
    return item


@transaction.atomic
def cart_item_remove(*, user: User, item_id: int) -> None:
    cart = _cart_lock(user=user)
    deleted, _ = CartItem.objects.filter(pk=item_id, cart=cart).delete()
    if not deleted:
        raise CartItem.DoesNotExist


@transaction.atomic
def cart_clear(*, user: User) -> None:
    CartItem.objects.filter(cart__user=user).delete()


# --- orders: checkout --------------------------------------------------------------------------


# Checkout's SQL, written out: the ORM's per-row work and savepoints cost more than the
# statements themselves on the one write path that runs at every sale.
_CART_LOCK = 'SELECT "id" FROM "orders_cart" WHERE "user_id" = %s FOR UPDATE'
# Reads the cart's lines and empties it in one statement (after the lock above, so it sees every
# committed change); any error later rolls the lines back into the cart.
_CART_TAKE = (
    'DELETE FROM "orders_cartitem" AS ci USING "inventory_product" AS p '
    'WHERE ci."cart_id" = %s AND p."id" = ci."product_id" '
    'RETURNING ci."product_id", ci."quantity", p."sku", p."name", p."price_cents", p."is_active"'
)
_ORDER_INSERT = (
    'INSERT INTO "orders_order" ("id", "number", "user_id", "status", "currency", '
    '"subtotal_cents", "total_cents", "shipping_address", "note", "expires_at", "carrier", '
    '"tracking_number", "created_at", "updated_at") '
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, '', '', %s, %s) "
    'ON CONFLICT ON CONSTRAINT "orders_order_number_unique" DO NOTHING RETURNING "id"'
)
# The order's items and its first event in one statement (one row per item back, with the ids).
_ITEMS_AND_EVENT_INSERT = (
    'WITH "i" AS (INSERT INTO "orders_orderitem" ("order_id", "product_id", "sku", "name", '
    '"unit_price_cents", "quantity") VALUES {items} RETURNING "id", "product_id"), '
    '"e" AS (INSERT INTO "orders_orderevent" ("order_id", "from_status", "to_status", '
    '"actor_id", "note", "created_at") VALUES (%s, \'\', %s, %s, \'\', %s) RETURNING "id") '
    'SELECT "i"."id", "i"."product_id", "e"."id" FROM "i", "e"'
)
_ITEM_VALUES = "(%s, %s, %s, %s, %s, %s)"


def _order_insert(cursor: Any, order: Order) -> None:
    """Insert the order under a fresh random number, trying another one on a collision (`ON
    CONFLICT DO NOTHING`: no savepoint, nothing to roll back)."""
    address = json.dumps(order.shipping_address)
    for _ in range(_NUMBER_ATTEMPTS):
        order.number = order_models.order_number_generate()
        cursor.execute(
            _ORDER_INSERT,
            [
                order.pk,
                order.number,
                order.user_id,
                order.status,
                order.currency,
                order.subtotal_cents,
                order.total_cents,
                address,
                order.note,
                order.expires_at,
                order.created_at,
                order.updated_at,
            ],
        )
        if cursor.fetchone() is not None:
            order._state.adding = False
            order._state.db = connection.alias
            return
    raise RuntimeError(f"No free order number after {_NUMBER_ATTEMPTS} attempts.")


def _items_and_event_insert(cursor: Any, *, items: list[OrderItem], event: OrderEvent) -> None:
    """Insert the order's items and its event in one statement; they get their ids."""
    cursor.execute(
        _ITEMS_AND_EVENT_INSERT.format(items=", ".join([_ITEM_VALUES] * len(items))),
        [
            *(
                value
                for item in items
                for value in (
                    item.order_id,
                    item.product_id,
                    item.sku,
                    item.name,
                    item.unit_price_cents,
                    item.quantity,
                )
            ),
            event.order_id,
            event.to_status,
            event.actor_id,
            event.created_at,
        ],
    )
    rows = cursor.fetchall()
    ids = {product_id: item_id for item_id, product_id, _ in rows}
    for item in items:  # one line per product: a cart holds each product once
        item.pk = ids[item.product_id]
    event.pk = rows[0][2]
    for instance in (*items, event):
        instance._state.adding = False
        instance._state.db = connection.alias


@dataclass(frozen=True)
class _CartLine:
    product_id: int
    quantity: int
    sku: str
    name: str
    price_cents: int
    is_active: bool


def order_place(*, user: User, shipping_address: Mapping[str, str], note: str = "") -> Order:
    """Check out the user's cart: one order, every line's stock reserved, the cart emptied.

    All or nothing: a short product (every one is named in the 409) leaves the cart, the stock
    and the orders exactly as they were. The order comes back with its items and its event
    loaded (`order.items.all()`, `order.events.all()` run no query): the 201 is built from them.
    """
    started = time.perf_counter()
    if not user.email_verified:
        raise EmailNotVerified
    # No savepoint under `Idempotency-Key` (checkout runs in the key's transaction, which rolls
    # back whole on any error here); a savepoint anywhere else a caller is inside a transaction.
    with transaction.atomic(savepoint=savepoint_needed()), connection.cursor() as cursor:
        cursor.execute(_CART_LOCK, [user.pk])
        cart = cursor.fetchone()
        lines: list[_CartLine] = []
        if cart is not None:
            cursor.execute(_CART_TAKE, [cart[0]])
            lines = sorted((_CartLine(*row) for row in cursor.fetchall()), key=_by_product)
        if not lines:
            raise CartEmpty
        inactive = [line for line in lines if not line.is_active]
        if inactive:
            raise ProductUnavailable(
                items=[
                    ErrorItem(f"{line.sku} is no longer for sale.", attr="items")
                    for line in inactive
                ]
            )
        totals = totals_for(
            PricedLine(unit_price_cents=line.price_cents, quantity=line.quantity) for line in lines
        )
        if totals.total_cents > BIGINT_MAX:  # a 64-bit column, and more than any card can pay
            raise OrderTotalTooLarge
        now = timezone.now()
        order = Order(
            id=uuid4(),
            user=user,
            currency=settings.STORE_CURRENCY,
            subtotal_cents=totals.subtotal_cents,
            total_cents=totals.total_cents,
            shipping_address=dict(shipping_address),
            note=note,
            expires_at=now + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES),
            created_at=now,
            updated_at=now,
        )
        _order_insert(cursor, order)
        items = [
            OrderItem(
                order=order,
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                unit_price_cents=line.price_cents,
                quantity=line.quantity,
            )
            for line in lines
        ]
        event = OrderEvent(
            order=order, from_status="", to_status=order.status, actor=user, note="", created_at=now
        )
        _items_and_event_insert(cursor, items=items, event=event)
        send_email(
            template="order_confirmation",
            to=[user.email],
            context=_email_context(order, user=user, items=items),
        )
        # Last: each stock row is locked by its own UPDATE, and only until the commit right after.
        try:
            stock_reserve(
                lines=[
                    StockLine(product_id=line.product_id, quantity=line.quantity) for line in lines
                ],
                actor=user,
                reference=_reference(order),
                savepoint=False,  # any error rolls back the whole checkout
            )
        except InsufficientStock:
            metrics.checkout_conflict()
            raise
        metrics.order_placed(total_cents=order.total_cents, started=started)
    _loaded(order, items=items, events=[event])
    return order


def _by_product(line: _CartLine) -> int:
    return line.product_id


def _loaded(order: Order, *, items: list[OrderItem], events: list[OrderEvent]) -> None:
    """Mark the order's items and events as loaded (what `prefetch_related` would do)."""
    cache: dict[str, Any] = {}
    for name, rows in (("items", items), ("events", events)):
        queryset = getattr(order, name).get_queryset()
        queryset._result_cache = rows
        queryset._prefetch_done = True
        cache[name] = queryset
    order._prefetched_objects_cache = cache  # type: ignore[attr-defined]


# --- orders: the state machine -----------------------------------------------------------------


def _order_lock(order_id: Any) -> Order:
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("user")
        .prefetch_related("items")
        .get(pk=order_id)
    )


@transaction.atomic
def order_transition(*, order_id: Any, to_status: str, actor: User | None, note: str = "") -> Order:
    """The one place that changes `Order.status`: lock, check the table, write, log, notify.

    Raises `Order.DoesNotExist` and `InvalidTransition`. Stock effects belong to the named
    services that call this (`order_cancel`, `order_mark_paid`, …).
    """
    return _transition(_order_lock(order_id), to_status=to_status, actor=actor, note=note)


def _transition(order: Order, *, to_status: str, actor: User | None, note: str = "") -> Order:
    """`order_transition` of an order its caller locked (`_order_lock`) in the transaction it is
    in: no second lock, no savepoint (an error rolls back the caller's whole transaction)."""
    if not order.can_transition_to(to_status):
        raise InvalidTransition(
            f"Order {order.number} is {order.status}; it cannot become {to_status}."
        )
    from_status = order.status
    order.status = to_status
    order.expires_at = None  # only a pending order expires
    order.save(update_fields=["status", "expires_at", "updated_at"])
    OrderEvent.objects.create(
        order=order, from_status=from_status, to_status=to_status, actor=actor, note=note
    )
    template = _STATUS_EMAILS.get(to_status)
    if template is not None:
        send_email(
            template=template,
            to=[order.user.email],
            context=_email_context(
                order, user=order.user, items=list(order.items.all()), note=note
            ),
        )
    return order


def order_cancel(*, order_id: Any, actor: User | None, note: str = "") -> Order:
    """pending → cancelled releases the reserved stock; paid → cancelled refunds in full through
    the gateway and puts the units back on hand (see `_refund_through_gateway`)."""
    with transaction.atomic():
        order = _order_lock(order_id)
        charge = (
            payment_succeeded_charge(order_id=order.pk)
            if order.status == Order.Status.PENDING
            else None
        )
        if charge is not None:
            # Paid at the gateway, its outcome not applied yet: apply it, then cancel a paid
            # order (refund and restock) below. Never release stock the customer paid for.
            order = _apply_charge(order, charge=charge, actor=actor)
        if order.status != Order.Status.PAID:
            if _charge_in_flight(order):
                raise PaymentInProgress(
                    f"Order {order.number} is being paid right now; try again in a moment."
                )
            order = _transition(order, to_status=Order.Status.CANCELLED, actor=actor, note=note)
            stock_release(
                lines=_stock_lines(order),
                actor=actor,
                reference=_reference(order),
                note=note or "order cancelled",
                savepoint=False,
            )
            return order
    return _refund_through_gateway(
        order_id=order_id, actor=actor, amount_cents=None, restock=True, note=note, cancel=True
    )


@transaction.atomic
def order_mark_paid(*, order_id: Any, actor: User | None, note: str = "") -> Order:
    """pending → paid: the reserved units become sold (`stock_commit_sale`)."""
    return _mark_paid(_order_lock(order_id), actor=actor, note=note)


def _mark_paid(order: Order, *, actor: User | None, note: str) -> Order:
    """`order_mark_paid` of an order locked by the caller, in its transaction."""
    order = _transition(order, to_status=Order.Status.PAID, actor=actor, note=note)
    stock_commit_sale(
        lines=_stock_lines(order), actor=actor, reference=_reference(order), savepoint=False
    )
    metrics.order_paid(total_cents=order.total_cents)
    return order


@transaction.atomic
def order_ship(
    *, order_id: Any, actor: User | None, carrier: str = "", tracking_number: str = ""
) -> Order:
    """paid → shipped, keeping the carrier and tracking number (the shipped email shows them)."""
    # Written first so the email sees them; a refused move rolls them back with everything else.
    Order.objects.filter(pk=order_id).update(carrier=carrier, tracking_number=tracking_number)
    return order_transition(order_id=order_id, to_status=Order.Status.SHIPPED, actor=actor)


@transaction.atomic
def order_deliver(*, order_id: Any, actor: User | None) -> Order:
    """shipped → delivered."""
    return order_transition(order_id=order_id, to_status=Order.Status.DELIVERED, actor=actor)


@transaction.atomic
def order_mark_refunded(
    *, order_id: Any, actor: User | None, restock: bool, note: str = ""
) -> Order:
    """paid | shipped | delivered → refunded; `restock` puts the units back on hand."""
    return _mark_refunded(_order_lock(order_id), actor=actor, restock=restock, note=note)


def _mark_refunded(order: Order, *, actor: User | None, restock: bool, note: str) -> Order:
    """`order_mark_refunded` of an order locked by the caller, in its transaction."""
    order = _transition(order, to_status=Order.Status.REFUNDED, actor=actor, note=note)
    if restock:
        stock_restock(
            lines=_stock_lines(order),
            actor=actor,
            reference=_reference(order),
            note=note or "order refunded",
            savepoint=False,
        )
    return order


def order_expire_unpaid(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Cancel pending orders past `expires_at` (event note "expired"), releasing their stock.

    One short transaction per order, so a crash halfway leaves every order either fully
    cancelled or untouched (and still due). `SKIP LOCKED` lets two runs at once share the work
    without waiting and without touching the same order; an order being paid at this moment is
    locked and skipped, and the status check under the lock settles any race. A due order whose
    charge succeeded (its outcome not applied yet: a late webhook, a failed handler) is marked
    paid instead: never cancelled over. Returns how many orders were cancelled (at most `limit`
    orders are handled per run; the rest wait for the next minute). An order that fails is
    logged and left for the next run, never in the way of the orders due after it.
    """
    cutoff = now or timezone.now()
    cancelled = handled = 0
    failed: list[UUID] = []
    while handled < limit:
        order_id: UUID | None = None
        try:
            with transaction.atomic():
                due = (
                    Order.objects.select_for_update(skip_locked=True)
                    .filter(status=Order.Status.PENDING, expires_at__lte=cutoff)
                    # An order whose charge is in flight waits for its outcome (reconciliation).
                    .exclude(Exists(pending_charges().filter(order_id=OuterRef("pk"))))
                    .exclude(pk__in=failed)
                    .order_by("expires_at")
                    .only("id")
                    .first()
                )
                if due is None:
                    break
                order_id = due.pk
                cancelled += _expire_one(order_id)
        except Exception:
            if order_id is None:
                raise  # the database itself: nothing to skip, let the task fail and retry
            logger.exception(
                "could not expire an order; the next run tries again",
                extra={"order_id": str(order_id)},
            )
            failed.append(order_id)
        handled += 1
    return cancelled


def _expire_one(order_id: UUID) -> int:
    """Under the order's lock: cancel it (1), or mark it paid if its charge succeeded (0)."""
    charge = payment_succeeded_charge(order_id=order_id)
    if charge is None:
        order_cancel(order_id=order_id, actor=None, note=EXPIRED_NOTE)
        return 1
    logger.warning(
        "due order has a succeeded charge; marking it paid, not cancelling it",
        extra={"order_id": str(order_id), "payment_id": str(charge.pk)},
    )
    _apply_charge(_order_lock(order_id), charge=charge, actor=None)
    return 0


# --- payments: pay, refund, and outcomes the gateway reports later ----------------------------
#
# No transaction or row lock is held while a gateway answers. Each flow is three steps: a short
# transaction under the order's lock records a pending payment; the gateway is called outside
# any transaction (the payment id is its idempotency key); a second short transaction under the
# order's lock settles the payment and moves the order. A crash or timeout between the steps
# leaves a pending payment, which reconciliation settles later and `order_on_payment_event`
# applies: no order is paid without a succeeded charge, no succeeded charge is left on an order
# that is not paid (it is refunded). Locks: the order row first, then payment rows.


def order_pay(*, order_id: Any, user: User, payment_method_id: UUID) -> Order:
    """pending → paid by charging exactly the order's total with one of the user's methods.

    Raises `Order.DoesNotExist` for another user's order, `InvalidTransition` unless pending,
    `OrderExpired`, `PaymentInProgress` while another charge of the order is in flight,
    `PaymentDeclined` (the failed charge is recorded first) and `PaymentGatewayError`.

    A retry after a timeout (the gateway did not answer within `PAYMENT_GATEWAY_TIMEOUT_SECONDS`,
    the charge is still pending) resumes that charge with the same card: the gateway is asked
    again under the same idempotency key, so the customer is charged once and learns the outcome.
    """
    with transaction.atomic():
        order = _order_lock(order_id)
        if order.user_id != user.pk:
            raise Order.DoesNotExist
        if not order.can_transition_to(Order.Status.PAID):
            raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot be paid.")
        charge = _charge_to_resume(order, payment_method_id=payment_method_id)
        if charge is None:
            if order.expires_at is not None and order.expires_at <= timezone.now():
                raise OrderExpired(f"Order {order.number} expired unpaid.")
            charge = payment_charge_begin(
                user=user,
                payment_method_id=payment_method_id,
                order_id=order.pk,
                amount_cents=order.total_cents,
                currency=order.currency,
            )
    result = payment_charge_execute(payment_id=charge.pk)
    with transaction.atomic():
        order = _order_lock(order_id)
        charge = payment_settle(payment_id=charge.pk, result=result)
        order = _apply_charge(order, charge=charge, actor=user)
    if charge.status == Payment.Status.FAILED:
        raise PaymentDeclined(charge.failure_code or "card_declined")
    return order


def order_refund(
    *,
    order_id: Any,
    actor: User | None,
    amount_cents: int | None = None,
    restock: bool = False,
    reason: str = "",
) -> Order:
    """Refund a paid, shipped or delivered order through the gateway, in full (the default) or
    in part. A refund that leaves nothing captured moves the order to `refunded` (restocking
    its units if asked); a partial one keeps the status and is recorded as a refund payment.
    Never more than what was captured and not yet refunded (`RefundExceedsCaptured`)."""
    return _refund_through_gateway(
        order_id=order_id,
        actor=actor,
        amount_cents=amount_cents,
        restock=restock,
        note=reason,
        cancel=False,
    )


def _refund_through_gateway(
    *,
    order_id: Any,
    actor: User | None,
    amount_cents: int | None,
    restock: bool,
    note: str,
    cancel: bool,
) -> Order:
    with transaction.atomic():
        order = _order_lock(order_id)
        allowed = {Order.Status.PAID} if cancel else _REFUNDABLE
        if order.status not in allowed:
            action = "cancelled" if cancel else "refunded"
            raise InvalidTransition(
                f"Order {order.number} is {order.status}; it cannot be {action}."
            )
        refundable = payment_captured_cents(order_id=order.pk)
        if cancel and refundable == 0:
            # Paid without money captured here (e.g. marked paid by hand): nothing to send back.
            return _cancel_paid(order, actor=actor, note=note)
        amount = refundable if amount_cents is None else amount_cents
        if restock and amount < refundable:
            raise PartialRestock
        refund = payment_refund_begin(order_id=order.pk, amount_cents=amount, user=actor)
    result = payment_refund_execute(payment_id=refund.pk)
    with transaction.atomic():
        order = _order_lock(order_id)
        refund = payment_settle(payment_id=refund.pk, result=result)
        if refund.status == Payment.Status.SUCCEEDED:
            order = _apply_refund(order, actor=actor, restock=restock, note=note, cancel=cancel)
    if refund.status == Payment.Status.FAILED:
        raise RefundFailed(f"The gateway refused the refund ({refund.failure_code}).")
    return order


def order_on_payment_event(*, payment_id: UUID, order_id: UUID) -> None:
    """Apply a payment outcome learnt later (a webhook, reconciliation). Idempotent: applying
    the same outcome twice, or after the synchronous flow applied it, changes nothing."""
    with transaction.atomic():
        try:
            order = _order_lock(order_id)
        except Order.DoesNotExist:
            logger.error("payment event for an unknown order", extra={"order_id": str(order_id)})
            return
        payment = payment_get(payment_id=payment_id)
        if payment.status != Payment.Status.SUCCEEDED:
            return  # a failed charge leaves the order pending; a failed refund changes nothing
        if payment.kind == Payment.Kind.CHARGE:
            _apply_charge(order, charge=payment, actor=None)
        else:
            _apply_refund(
                order,
                actor=None,
                restock=order.status == Order.Status.PAID,  # the units never left the shelf
                note="refund settled by the gateway",
                cancel=False,
            )


def order_payments_reconcile(*, since: timedelta = timedelta(days=2), limit: int = 100) -> int:
    """Resolve orders whose status and money disagree (what `audit_payments` reports), for
    charges that succeeded in the last `since`. Beat runs it on the critical queue every
    `PAYMENT_RECONCILE_INTERVAL_SECONDS`. Returns how many orders it resolved.

    - a pending order with a succeeded charge is marked paid (the outcome arrived, its handler
      did not run: never a reason to cancel);
    - a cancelled order with a succeeded charge not refunded is refunded (begun under the
      order's lock, then sent to the gateway outside any transaction);
    - a paid order without its succeeded charge cannot be put right by a machine: logged as an
      error for a person (and reported by `audit_payments`).
    """
    candidates = payment_succeeded_charges_since(since=since)
    resolved = 0
    for mismatch in payment_audit(order_ids=candidates)[:limit]:
        try:
            resolved += _resolve_mismatch(mismatch)
        except Exception:  # one order must not keep the others waiting; the next run retries
            logger.exception(
                "could not resolve an order's payments", extra={"order_id": str(mismatch.order_id)}
            )
    return resolved


def _resolve_mismatch(mismatch: PaymentMismatch) -> bool:
    extra = {"order_id": str(mismatch.order_id), "status": mismatch.status}
    if mismatch.status == Order.Status.PENDING:
        with transaction.atomic():
            order = _order_lock(mismatch.order_id)
            charge = payment_succeeded_charge(order_id=order.pk)
            if order.status != Order.Status.PENDING or charge is None:
                return False
            logger.warning("succeeded charge on an unpaid order; marking it paid", extra=extra)
            _apply_charge(order, charge=charge, actor=None)
        return True
    if mismatch.status == Order.Status.CANCELLED:
        return _refund_kept_charge(mismatch.order_id)
    logger.error("order is %s without a succeeded charge", mismatch.status, extra=extra)
    return False


def _refund_kept_charge(order_id: UUID) -> bool:
    """A cancelled order still holding captured money: refund what no refund covers yet, and
    send every pending refund of the order to the gateway now."""
    with transaction.atomic():
        order = _order_lock(order_id)
        if order.status != Order.Status.CANCELLED:
            return False
        owed = payment_captured_cents(order_id=order.pk)
        if owed > 0:
            with contextlib.suppress(RefundExceedsCaptured):  # pending refunds cover it
                payment_refund_begin(order_id=order.pk, amount_cents=owed, user=None)
        pending = list(
            Payment.objects.filter(
                order_id=order.pk, kind=Payment.Kind.REFUND, status=Payment.Status.PENDING
            ).values_list("pk", flat=True)
        )
    logger.warning(
        "succeeded charge on a cancelled order; refunding it", extra={"order_id": str(order_id)}
    )
    for refund_id in pending:
        try:
            result = payment_refund_execute(payment_id=refund_id)
        except PaymentGatewayError:
            continue  # unknown outcome: payment reconciliation asks again
        payment_settle(payment_id=refund_id, result=result)
    return True


def _apply_charge(order: Order, *, charge: Payment, actor: User | None) -> Order:
    """`order` is locked by the caller. A succeeded charge pays a pending order; on an order that
    is no longer payable (cancelled meanwhile) the money goes back (reconciliation refunds it)."""
    if charge.status != Payment.Status.SUCCEEDED:
        return order
    if order.status == Order.Status.PENDING:
        return _mark_paid(order, actor=actor, note="payment received")
    if order.status in _REFUNDABLE:
        return order  # already applied
    logger.warning(
        "charge succeeded on an order that is no longer payable; refunding it",
        extra={"order_id": str(order.pk), "payment_id": str(charge.pk), "status": order.status},
    )
    with contextlib.suppress(RefundExceedsCaptured):  # already being refunded
        payment_refund_begin(order_id=order.pk, amount_cents=charge.amount_cents, user=None)
    return order


def _apply_refund(
    order: Order, *, actor: User | None, restock: bool, note: str, cancel: bool
) -> Order:
    """Under the order's lock, after a refund succeeded: cancel (a paid order's cancel) or mark
    refunded once nothing captured is left; a partial refund leaves the order as it is."""
    if cancel and order.status == Order.Status.PAID:
        return _cancel_paid(order, actor=actor, note=note)
    if payment_captured_cents(order_id=order.pk) == 0 and order.can_transition_to(
        Order.Status.REFUNDED
    ):
        return _mark_refunded(order, actor=actor, restock=restock, note=note or "refunded")
    return order


def _cancel_paid(order: Order, *, actor: User | None, note: str) -> Order:
    """paid → cancelled: the sold units go back on hand."""
    order = _transition(order, to_status=Order.Status.CANCELLED, actor=actor, note=note)
    stock_restock(
        lines=_stock_lines(order),
        actor=actor,
        reference=_reference(order),
        note="order cancelled after payment",
        savepoint=False,
    )
    return order


def _charge_to_resume(order: Order, *, payment_method_id: UUID) -> Payment | None:
    """The order's pending charge with this card, if the request that began it has certainly
    stopped waiting for the gateway (older than the gateway timeout). A younger one is still in
    flight (`PaymentInProgress`); one with another card too."""
    pending = pending_charges().filter(order_id=order.pk).first()
    if pending is None:
        return None
    waited = timezone.now() - pending.created_at
    if pending.payment_method_id != payment_method_id or waited < timedelta(
        seconds=settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS
    ):
        raise PaymentInProgress(f"Order {order.number} is being paid right now.")
    return pending


def _charge_in_flight(order: Order) -> bool:
    return pending_charges().filter(order_id=order.pk).exists()


# --- helpers -----------------------------------------------------------------------------------


def _reference(order: Order) -> str:
    return f"order:{order.number}"


def _stock_lines(order: Order) -> list[StockLine]:
    return [
        StockLine(product_id=item.product_id, quantity=item.quantity) for item in order.items.all()
    ]


def _email_context(
    order: Order, *, user: User, items: list[OrderItem], note: str = ""
) -> dict[str, Any]:
    """JSON-serialisable (it travels in the Celery message): names and amounts, no instances."""
    return {
        "name": user.first_name or user.email,
        "number": order.number,
        "status": order.status,
        "items": [
            {
                "sku": item.sku,
                "name": item.name,
                "quantity": item.quantity,
                "line_total": format_money(cents=item.line_total_cents, currency=order.currency),
            }
            for item in items
        ],
        "total": format_money(cents=order.total_cents, currency=order.currency),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "expired": note == EXPIRED_NOTE,
        "expires_at": f"{order.expires_at:%Y-%m-%d %H:%M} UTC" if order.expires_at else None,
        "order_url": f"{settings.FRONTEND_URL}/orders/{order.pk}",
    }
