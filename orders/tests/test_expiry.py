from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from inventory.models import StockLevel, StockMovement
from inventory.services import stock_release
from orders.models import Order, OrderEvent
from orders.services import cancel, order_expire_unpaid
from orders.tasks import expire_unpaid_orders
from orders.tests.helpers import mark_paid

pytestmark = pytest.mark.django_db


def make_due(*orders):
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def reserved(product):
    return StockLevel.objects.get(product=product).reserved


def test_expiry_cancels_due_orders_and_releases_their_stock(
    customer, product, place_order, django_capture_on_commit_callbacks
):
    due = place_order(customer, [(product, 2)])
    not_yet = place_order(customer, [(product, 3)])
    paid = place_order(customer, [(product, 1)])
    mark_paid(order_id=paid.pk, actor=customer)
    make_due(due)
    Order.objects.filter(pk=paid.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    assert reserved(product) == 5
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_unpaid_orders.delay().get() == 1
    statuses = dict(Order.objects.values_list("number", "status"))
    assert statuses == {due.number: "cancelled", not_yet.number: "pending", paid.number: "paid"}
    event = OrderEvent.objects.filter(order=due).latest("created_at", "id")
    assert (event.from_status, event.to_status, event.actor, event.note) == (
        "pending",
        "cancelled",
        None,
        "expired",
    )
    assert reserved(product) == 3
    release = StockMovement.objects.get(reason="release")
    assert (release.delta_reserved, release.reference) == (-2, f"order:{due.number}")
    (message,) = mail.outbox
    assert message.subject == f"Order {due.number} cancelled"
    assert "because it was not paid in time" in message.body


def test_running_expiry_twice_is_harmless(customer, product, place_order):
    orders = [place_order(customer, [(product, 1)]) for _ in range(3)]
    make_due(*orders)
    assert order_expire_unpaid() == 3
    assert order_expire_unpaid() == 0
    assert StockMovement.objects.filter(reason="release").count() == 3
    assert OrderEvent.objects.filter(to_status="cancelled").count() == 3
    assert reserved(product) == 0


def test_a_run_is_bounded_and_the_next_one_continues(customer, product, place_order):
    orders = [place_order(customer, [(product, 1)]) for _ in range(3)]
    make_due(*orders)
    assert order_expire_unpaid(limit=2) == 2
    assert order_expire_unpaid(limit=2) == 1
    assert reserved(product) == 0


def test_one_order_that_fails_does_not_block_the_ones_due_after_it(
    customer, product, place_order, monkeypatch, caplog
):
    """A poison order (here: its cancel raises) used to stop every run at the first order due."""
    orders = [place_order(customer, [(product, 1)]) for _ in range(3)]
    for position, order in enumerate(orders):  # due in this order
        Order.objects.filter(pk=order.pk).update(
            expires_at=timezone.now() - timedelta(minutes=10 - position)
        )
    poison = orders[0]
    real_cancel = cancel.order_cancel  # what expiry calls for each due order

    def cancel_or_fail(*, order_id, **kwargs):
        if order_id == poison.pk:
            raise RuntimeError("a row the cancel cannot handle")
        return real_cancel(order_id=order_id, **kwargs)

    monkeypatch.setattr(cancel, "order_cancel", cancel_or_fail)
    assert order_expire_unpaid() == 2
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses[poison.pk] == Order.Status.PENDING  # untouched, tried again next run
    assert [statuses[o.pk] for o in orders[1:]] == [Order.Status.CANCELLED] * 2
    assert "could not expire an order" in caplog.text
    assert reserved(product) == 1  # only the poison order's unit is still reserved
    monkeypatch.undo()
    assert order_expire_unpaid() == 1  # fixed: the next run expires it
    assert reserved(product) == 0


def test_a_crash_halfway_leaves_each_order_done_or_untouched(
    customer, product, place_order, monkeypatch
):
    orders = [place_order(customer, [(product, 1)]) for _ in range(3)]
    make_due(*orders)
    real_release = stock_release  # what a pending order's cancel releases its stock with
    calls = []

    def release_then_die(**kwargs):
        calls.append(kwargs["reference"])
        if len(calls) == 2:  # stands in for the worker dying in the middle of the second order
            raise SystemExit("worker killed")
        real_release(**kwargs)

    monkeypatch.setattr(cancel, "stock_release", release_then_die)
    with pytest.raises(SystemExit):
        order_expire_unpaid()
    assert Order.objects.filter(status="cancelled").count() == 1
    assert reserved(product) == 2
    monkeypatch.setattr(cancel, "stock_release", real_release)
    assert order_expire_unpaid() == 2
    assert Order.objects.filter(status="cancelled").count() == 3
    assert StockMovement.objects.filter(reason="release").count() == 3
    assert reserved(product) == 0


@pytest.mark.django_db(transaction=True)
def test_two_expiry_runs_at_once_cancel_each_order_once(customer, make_product, place_order):
    product = make_product(on_hand=50)
    orders = [place_order(customer, [(product, 1)]) for _ in range(12)]
    make_due(*orders)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            counts.append(order_expire_unpaid())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == 12
    assert Order.objects.filter(status="cancelled").count() == 12
    assert OrderEvent.objects.filter(to_status="cancelled").count() == 12
    assert StockMovement.objects.filter(reason="release").count() == 12
    assert reserved(product) == 0
