"""Checkout: `order_place` turns the user's cart into a pending order, reserving every line's
stock, in one transaction written out in SQL (the one write path that runs at every sale).

Locks: the cart row, then (last, inside `inventory.services.stock_reserve`) the stock rows in
product-id order, so a stock row is locked only from its statement to the commit right after it
(see the package's docstring and bench/bench_checkout.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from common import metrics
from common.emails import send_email
from common.exceptions import BIGINT_MAX, ErrorItem
from common.idempotency import savepoint_needed
from inventory.exceptions import InsufficientStock
from inventory.services import StockLine, stock_reserve

from .. import models as order_models
from ..exceptions import CartEmpty, EmailNotVerified, OrderTotalTooLarge, ProductUnavailable
from ..models import Order, OrderEvent, OrderItem
from ..pricing import PricedLine, totals_for
from ._shared import _email_context, _reference

_NUMBER_ATTEMPTS = 5

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
