"""The state machine: the table, the one write path, and each named service's stock effects."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from inventory.models import StockLevel, StockMovement
from orders.exceptions import InvalidTransition
from orders.models import Order, OrderEvent
from orders.services import (
    order_cancel,
    order_deliver,
    order_ship,
    order_transition,
)
from orders.tests.helpers import mark_paid, mark_refunded

pytestmark = pytest.mark.django_db

S = Order.Status
ALLOWED = {
    (S.PENDING, S.PAID),
    (S.PENDING, S.CANCELLED),
    (S.PAID, S.SHIPPED),
    (S.PAID, S.CANCELLED),
    (S.PAID, S.REFUNDED),
    (S.SHIPPED, S.DELIVERED),
    (S.SHIPPED, S.REFUNDED),
    (S.DELIVERED, S.REFUNDED),
}


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(S, S)))
def test_can_transition_to_is_exactly_the_contract(from_status, to_status):
    assert Order(status=from_status).can_transition_to(to_status) is (
        (from_status, to_status) in ALLOWED
    )


def level(product):
    return tuple(
        StockLevel.objects.filter(product=product).values_list("on_hand", "reserved").get()
    )


def move_to(order, status, actor):
    """Walk an order along the happy path to `status` through the services."""
    paths: dict[str, list[Callable[..., Order]]] = {
        S.PAID: [mark_paid],
        S.SHIPPED: [mark_paid, order_ship],
        S.DELIVERED: [mark_paid, order_ship, order_deliver],
        S.CANCELLED: [order_cancel],
        S.REFUNDED: [mark_paid, lambda **kw: mark_refunded(**kw, restock=False)],
    }
    for step in paths[status]:
        step(order_id=order.pk, actor=actor)
    order.refresh_from_db()
    assert order.status == status
    return order


def test_mark_paid_turns_the_reservation_into_a_sale(customer, staff, product, place_order):
    order = place_order(customer, [(product, 3)])
    assert level(product) == (10, 3)
    paid = mark_paid(order_id=order.pk, actor=customer, note="card 4242")
    assert paid.status == "paid"
    assert paid.expires_at is None
    assert level(product) == (7, 0)
    sale = StockMovement.objects.get(reason="sale")
    assert (sale.delta_on_hand, sale.delta_reserved, sale.reference) == (
        -3,
        -3,
        f"order:{order.number}",
    )
    event = OrderEvent.objects.filter(order=order).latest("created_at", "id")
    assert (event.from_status, event.to_status, event.actor, event.note) == (
        "pending",
        "paid",
        customer,
        "card 4242",
    )


def test_cancel_of_a_pending_order_releases_its_stock(
    customer, product, place_order, django_capture_on_commit_callbacks
):
    order = place_order(customer, [(product, 4)])
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=order.pk, actor=customer)
    assert Order.objects.get().status == "cancelled"
    assert level(product) == (10, 0)
    assert StockMovement.objects.filter(reason="release").get().delta_reserved == -4
    assert [m.subject for m in mail.outbox] == [f"Order {order.number} cancelled"]
    assert "not paid in time" not in mail.outbox[0].body


def test_cancel_of_a_paid_order_goes_through_the_refund_seam_and_restocks(
    customer, staff, product, place_order
):
    order = move_to(place_order(customer, [(product, 4)]), S.PAID, customer)
    assert level(product) == (6, 0)
    order_cancel(order_id=order.pk, actor=staff, note="customer asked")
    assert level(product) == (10, 0)
    restock = StockMovement.objects.get(reason="restock")
    assert (restock.delta_on_hand, restock.actor) == (4, staff)
    assert not StockMovement.objects.filter(reason="release").exists()


def test_ship_keeps_carrier_and_tracking_and_emails_them(
    customer, staff, product, place_order, django_capture_on_commit_callbacks
):
    order = move_to(place_order(customer, [(product, 1)]), S.PAID, customer)
    with django_capture_on_commit_callbacks(execute=True):
        shipped = order_ship(
            order_id=order.pk, actor=staff, carrier="DHL", tracking_number="JD0123"
        )
    assert (shipped.status, shipped.carrier, shipped.tracking_number) == (
        "shipped",
        "DHL",
        "JD0123",
    )
    (message,) = mail.outbox
    assert message.subject == f"Order {order.number} is on its way"
    assert "with DHL" in message.body
    assert "Tracking number: JD0123" in message.body
    assert "JD0123" in message.alternatives[0][0]  # type: ignore[attr-defined]


def test_a_refused_ship_keeps_no_tracking_number(customer, staff, product, place_order):
    order = place_order(customer, [(product, 1)])
    with pytest.raises(InvalidTransition):
        order_ship(order_id=order.pk, actor=staff, carrier="DHL", tracking_number="JD0123")
    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number) == ("pending", "", "")


def test_deliver(customer, staff, product, place_order):
    order = move_to(place_order(customer, [(product, 1)]), S.SHIPPED, staff)
    assert order_deliver(order_id=order.pk, actor=staff).status == "delivered"


@pytest.mark.parametrize("start", [S.PAID, S.SHIPPED, S.DELIVERED])
def test_refund_with_restock_puts_units_back(
    customer, staff, product, place_order, start, django_capture_on_commit_callbacks
):
    order = move_to(place_order(customer, [(product, 2)]), start, staff)
    assert level(product) == (8, 0)
    with django_capture_on_commit_callbacks(execute=True):
        refunded = mark_refunded(order_id=order.pk, actor=staff, restock=True, note="broken")
    assert refunded.status == "refunded"
    assert level(product) == (10, 0)
    assert mail.outbox[-1].subject == f"Order {order.number} refunded"
    assert "99.98 USD goes back" in mail.outbox[-1].body


def test_refund_without_restock_keeps_stock(customer, staff, product, place_order):
    order = move_to(place_order(customer, [(product, 2)]), S.PAID, staff)
    mark_refunded(order_id=order.pk, actor=staff, restock=False)
    assert level(product) == (8, 0)
    assert not StockMovement.objects.filter(reason="restock").exists()


INVALID = sorted((f, t) for f, t in itertools.product(S, S) if (f, t) not in ALLOWED)


@pytest.mark.parametrize(("start", "target"), INVALID)
def test_any_other_move_is_invalid_and_changes_nothing(
    customer, staff, product, place_order, start, target
):
    order = place_order(customer, [(product, 1)])
    if start != S.PENDING:
        order = move_to(order, start, staff)
    stock, events, movements = (
        level(product),
        OrderEvent.objects.count(),
        StockMovement.objects.count(),
    )
    with pytest.raises(InvalidTransition) as caught:
        order_transition(order_id=order.pk, to_status=target, actor=staff)
    assert caught.value.code == "invalid_transition"
    assert caught.value.status_code == 409
    order.refresh_from_db()
    assert order.status == start
    assert (level(product), OrderEvent.objects.count(), StockMovement.objects.count()) == (
        stock,
        events,
        movements,
    )


def test_every_move_writes_an_event(customer, staff, product, place_order):
    order = move_to(place_order(customer, [(product, 1)]), S.DELIVERED, staff)
    assert list(order.events.values_list("from_status", "to_status", "actor")) == [
        ("", "pending", customer.pk),
        ("pending", "paid", staff.pk),
        ("paid", "shipped", staff.pk),
        ("shipped", "delivered", staff.pk),
    ]


def test_the_database_rejects_unknown_statuses(customer, product, place_order):
    order = place_order(customer, [(product, 1)])
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(status="lost")
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderEvent.objects.create(order=order, from_status="pending", to_status="lost")


def test_unknown_order_raises_does_not_exist(staff):
    import uuid

    with pytest.raises(Order.DoesNotExist):
        order_transition(order_id=uuid.uuid4(), to_status=S.PAID, actor=staff)
