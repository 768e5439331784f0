"""Real concurrent transactions: exactly the right number of reservations win."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum

from inventory.exceptions import InsufficientStock
from inventory.models import StockLevel, StockMovement
from inventory.services import StockLine, stock_reserve


def run_in_threads(count, target):
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(index):
        barrier.wait()
        try:
            target(index)
            outcome = "won"
        except InsufficientStock:
            outcome = "short"
        except Exception as error:  # noqa: BLE001 (any failure of the thread is kept for the test)
            outcome = f"error: {error!r}"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return Counter(outcomes)


def assert_ledger_matches_levels():
    for level in StockLevel.objects.all():
        totals = StockMovement.objects.filter(product_id=level.product_id).aggregate(
            on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved")
        )
        assert (totals["on_hand"] or 0, totals["reserved"] or 0) == (level.on_hand, level.reserved)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_oversell(make_product):
    product = make_product(on_hand=7)
    outcomes = run_in_threads(
        16,
        lambda index: stock_reserve(
            lines=[StockLine(product.pk, 1)], actor=None, reference=f"order:{index}"
        ),
    )
    assert outcomes == Counter({"won": 7, "short": 9})
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved) == (7, 7)
    assert StockMovement.objects.filter(reason="reservation").count() == 7
    assert_ledger_matches_levels()


@pytest.mark.django_db(transaction=True)
def test_concurrent_multi_line_reservations_in_any_order_do_not_deadlock(make_product):
    a = make_product(on_hand=6)
    b = make_product(on_hand=6)

    def reserve(index):
        pair = [StockLine(a.pk, 1), StockLine(b.pk, 2)]
        stock_reserve(
            lines=pair if index % 2 else pair[::-1], actor=None, reference=f"order:{index}"
        )

    outcomes = run_in_threads(10, reserve)
    # b (6 units, 2 per order) runs out after three orders; a keeps 3 units.
    assert outcomes == Counter({"won": 3, "short": 7})
    assert [
        (level.on_hand, level.reserved) for level in StockLevel.objects.order_by("product_id")
    ] == [(6, 3), (6, 6)]
    assert_ledger_matches_levels()
