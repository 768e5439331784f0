from __future__ import annotations

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction

from inventory.exceptions import InsufficientStock, ReservationMismatch, Shortage, UnknownProduct
from inventory.models import StockLevel, StockMovement
from inventory.services import (
    StockLine,
    stock_adjust,
    stock_commit_sale,
    stock_release,
    stock_reserve,
    stock_restock,
)


def levels(*products):
    return [
        (level.on_hand, level.reserved)
        for level in StockLevel.objects.filter(product__in=products).order_by("product_id")
    ]


def test_product_create_makes_stock_level_and_receipt(product):
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved, level.available) == (10, 0, 10)
    movement = StockMovement.objects.get(product=product)
    assert (movement.reason, movement.delta_on_hand, movement.on_hand_after) == ("receipt", 10, 10)


def test_reserve_many_lines_sums_same_product_and_writes_ledger(make_product, staff):
    a = make_product(on_hand=5)
    b = make_product(on_hand=3)
    stock_reserve(
        lines=[StockLine(b.pk, 1), StockLine(a.pk, 2), StockLine(b.pk, 2)],
        actor=staff,
        reference="order:SO-1",
        note="checkout",
    )
    assert levels(a, b) == [(5, 2), (3, 3)]
    rows = list(
        StockMovement.objects.filter(reason="reservation")
        .order_by("product_id")
        .values_list(
            "product_id",
            "delta_on_hand",
            "delta_reserved",
            "on_hand_after",
            "reserved_after",
            "actor",
            "reference",
            "note",
        )
    )
    assert rows == [
        (a.pk, 0, 2, 5, 2, staff.pk, "order:SO-1", "checkout"),
        (b.pk, 0, 3, 3, 3, staff.pk, "order:SO-1", "checkout"),
    ]


def test_reserve_reports_every_shortage_and_changes_nothing(make_product):
    a = make_product(sku="A-1", on_hand=5)
    b = make_product(sku="B-1", on_hand=1)
    c = make_product(sku="C-1", on_hand=0)
    stock_reserve(lines=[StockLine(b.pk, 1)], actor=None, reference="order:SO-0")
    ledger_before = StockMovement.objects.count()
    with pytest.raises(InsufficientStock) as caught:
        stock_reserve(
            lines=[StockLine(a.pk, 5), StockLine(b.pk, 1), StockLine(c.pk, 2)],
            actor=None,
            reference="order:SO-2",
        )
    assert caught.value.shortages == (
        Shortage(product_id=b.pk, sku="B-1", requested=1, available=0),
        Shortage(product_id=c.pk, sku="C-1", requested=2, available=0),
    )
    assert [(item.detail, item.attr) for item in caught.value.items] == [
        ("B-1: 0 available, 1 requested.", "items"),
        ("C-1: 0 available, 2 requested.", "items"),
    ]
    assert caught.value.code == "insufficient_stock"
    assert caught.value.status_code == 409
    assert levels(a, b, c) == [(5, 0), (1, 1), (0, 0)]
    assert StockMovement.objects.count() == ledger_before


def test_reserve_unknown_product(product):
    with pytest.raises(UnknownProduct):
        stock_reserve(lines=[StockLine(product.pk + 999, 1)], actor=None, reference="x")
    assert levels(product) == [(10, 0)]


@pytest.mark.parametrize("quantity", [0, -1])
def test_reserve_rejects_non_positive_quantity(product, quantity):
    with pytest.raises(Exception, match="positive"):
        stock_reserve(lines=[StockLine(product.pk, quantity)], actor=None, reference="x")
    assert levels(product) == [(10, 0)]


def test_reserve_requires_lines(db):
    with pytest.raises(Exception, match="At least one line"):
        stock_reserve(lines=[], actor=None, reference="x")


def test_release_then_commit_sale_then_restock(product):
    stock_reserve(lines=[StockLine(product.pk, 4)], actor=None, reference="order:1")
    stock_release(lines=[StockLine(product.pk, 1)], actor=None, reference="order:1")
    assert levels(product) == [(10, 3)]
    stock_commit_sale(lines=[StockLine(product.pk, 3)], actor=None, reference="order:1")
    assert levels(product) == [(7, 0)]
    stock_restock(lines=[StockLine(product.pk, 2)], actor=None, reference="order:1")
    assert levels(product) == [(9, 0)]
    rows = list(
        StockMovement.objects.filter(reference="order:1")
        .order_by("id")
        .values_list("reason", "delta_on_hand", "delta_reserved", "on_hand_after", "reserved_after")
    )
    assert rows == [
        ("reservation", 0, 4, 10, 4),
        ("release", 0, -1, 10, 3),
        ("sale", -3, -3, 7, 0),
        ("restock", 2, 0, 9, 0),
    ]


@pytest.mark.parametrize("service", [stock_release, stock_commit_sale])
def test_release_or_sale_beyond_reserved_changes_nothing(product, service):
    stock_reserve(lines=[StockLine(product.pk, 2)], actor=None, reference="order:1")
    count = StockMovement.objects.count()
    with pytest.raises(ReservationMismatch, match="HP-100: 2 reserved, 3 requested"):
        service(lines=[StockLine(product.pk, 3)], actor=None, reference="order:1")
    assert levels(product) == [(10, 2)]
    assert StockMovement.objects.count() == count


def test_adjust_changes_on_hand_and_returns_movement(product, staff):
    movement = stock_adjust(
        product_id=product.pk, delta=-4, reason="damage", actor=staff, note="dropped"
    )
    assert (movement.reason, movement.delta_on_hand, movement.on_hand_after) == ("damage", -4, 6)
    assert (movement.actor, movement.note) == (staff, "dropped")
    assert levels(product) == [(6, 0)]


def test_adjust_below_reserved_is_insufficient_stock(product):
    stock_reserve(lines=[StockLine(product.pk, 7)], actor=None, reference="order:1")
    count = StockMovement.objects.count()
    with pytest.raises(InsufficientStock) as caught:
        stock_adjust(product_id=product.pk, delta=-4, reason="correction", actor=None)
    assert caught.value.shortages == (
        Shortage(product_id=product.pk, sku="HP-100", requested=4, available=3),
    )
    assert levels(product) == [(10, 7)]
    assert StockMovement.objects.count() == count


@pytest.mark.parametrize(
    ("delta", "reason", "message"),
    [(0, "receipt", "zero"), (1, "sale", "Reason must be one of")],
)
def test_adjust_rejects_bad_input(product, delta, reason, message):
    with pytest.raises(Exception, match=message):
        stock_adjust(product_id=product.pk, delta=delta, reason=reason, actor=None)
    assert levels(product) == [(10, 0)]


def test_database_rejects_reserved_above_on_hand(product):
    with (
        pytest.raises(IntegrityError, match="inventory_stocklevel_reserved_lte_on_hand"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE inventory_stocklevel SET reserved = on_hand + 1 WHERE product_id = %s",
            [product.pk],
        )
    assert levels(product) == [(10, 0)]


@pytest.mark.parametrize(
    ("assignment", "constraint"),
    [
        ("on_hand = -1, reserved = 0", "inventory_stocklevel_on_hand_gte_0"),
        ("reserved = -1", "inventory_stocklevel_reserved_gte_0"),
    ],
)
def test_database_rejects_negative_levels(product, assignment, constraint):
    with (
        pytest.raises(IntegrityError, match=constraint),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"UPDATE inventory_stocklevel SET {assignment} WHERE product_id = %s",  # noqa: S608
            [product.pk],
        )
    assert levels(product) == [(10, 0)]


def test_low_stock_alert_once_per_crossing(
    make_product, staff, admin_user, make_user, django_capture_on_commit_callbacks
):
    make_user("customer", email="shopper@example.com")
    product = make_product(sku="LOW-1", name="Desk Lamp", on_hand=5, low_stock_threshold=2)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[StockLine(product.pk, 2)], actor=None, reference="o:1")  # 3 left
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[StockLine(product.pk, 1)], actor=None, reference="o:2")  # 2 left
    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[StockLine(product.pk, 1)], actor=None, reference="o:3")  # 1 left
        stock_commit_sale(lines=[StockLine(product.pk, 1)], actor=None, reference="o:3")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["admin@example.com", "staff@example.com"]
    assert message.subject == "Low stock: LOW-1 Desk Lamp (2 available)"
    assert "Threshold: 2" in message.body
    # Back above the threshold, then down again: a second crossing, a second email.
    with django_capture_on_commit_callbacks(execute=True):
        stock_adjust(product_id=product.pk, delta=5, reason="receipt", actor=None)
    assert StockLevel.objects.get(product=product).low_stock_alerted is False
    with django_capture_on_commit_callbacks(execute=True):
        stock_adjust(product_id=product.pk, delta=-6, reason="damage", actor=None)
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject == "Low stock: LOW-1 Desk Lamp (0 available)"


def test_low_stock_alert_skipped_when_no_longer_low(product, staff):
    from inventory.services import stock_low_alert_send

    StockLevel.objects.filter(product=product).update(low_stock_threshold=1)
    assert stock_low_alert_send(product_ids=[product.pk]) is False
    assert stock_low_alert_send(product_ids=[product.pk + 999]) is False
    assert mail.outbox == []


def test_one_alert_for_many_products_crossing_at_once(
    make_product, staff, django_capture_on_commit_callbacks
):
    a = make_product(sku="A-1", name="Lamp", on_hand=3, low_stock_threshold=1)
    b = make_product(sku="B-1", name="Shade", on_hand=2, low_stock_threshold=1)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        stock_reserve(lines=[StockLine(a.pk, 2), StockLine(b.pk, 1)], actor=None, reference="o:1")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Low stock: 2 products"
    assert "A-1 Lamp" in message.body
    assert "B-1 Shade" in message.body


def test_alert_counts_products_beyond_those_named(
    make_product, staff, django_capture_on_commit_callbacks
):
    from inventory.services import stock_low_alert_send

    product = make_product(sku="LOW-9", on_hand=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert stock_low_alert_send(product_ids=[product.pk], total=150) is True
    message = mail.outbox[-1]
    assert message.subject == "Low stock: 150 products"
    assert "...and 149 more" in message.body
