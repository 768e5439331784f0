from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.models import StockMovement
from inventory.services import StockLine, stock_adjust, stock_reserve

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(make_product):
    a = make_product(sku="A-1", on_hand=5)  # receipt
    b = make_product(sku="B-1", on_hand=3)  # receipt
    stock_reserve(lines=[StockLine(a.pk, 2), StockLine(b.pk, 1)], actor=None, reference="o:1")
    stock_adjust(product_id=a.pk, delta=-1, reason="damage", actor=None)
    return a, b


def test_ledger_newest_first_with_cursor(staff_client, ledger):
    response = staff_client.get("/api/v1/stock-movements/?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [(m["sku"], m["reason"]) for m in body["results"]] == [
        ("A-1", "damage"),
        ("B-1", "reservation"),
    ]
    following = staff_client.get(body["next"]).json()
    assert [(m["sku"], m["reason"]) for m in following["results"]] == [
        ("A-1", "reservation"),
        ("B-1", "receipt"),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("product={a}", [("A-1", "damage"), ("A-1", "reservation"), ("A-1", "receipt")]),
        ("reason=reservation", [("B-1", "reservation"), ("A-1", "reservation")]),
        ("product={b}&reason=receipt", [("B-1", "receipt")]),
        ("created_before={past}", []),
        ("created_after={past}&reason=damage", [("A-1", "damage")]),
    ],
)
def test_ledger_filters(staff_client, ledger, query, expected):
    a, b = ledger
    past = (timezone.now() - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    query = query.format(a=a.pk, b=b.pk, past=past)
    response = staff_client.get(f"/api/v1/stock-movements/?{query}")
    assert response.status_code == 200
    assert [(m["sku"], m["reason"]) for m in response.json()["results"]] == expected


@pytest.mark.parametrize("query", ["reason=stolen", "product=abc", "created_after=yesterday"])
def test_ledger_bad_filters(staff_client, ledger, query):
    response = staff_client.get(f"/api/v1/stock-movements/?{query}")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"


@pytest.mark.parametrize("page_size", [1, 50])
def test_ledger_query_count_is_fixed(staff_client, ledger, page_size, django_assert_num_queries):
    with django_assert_num_queries(2):  # the user, the page
        response = staff_client.get(f"/api/v1/stock-movements/?page_size={page_size}")
    assert len(response.json()["results"]) == min(page_size, StockMovement.objects.count())


def test_ledger_is_staff_only(customer_client, api_client, ledger):
    assert customer_client.get("/api/v1/stock-movements/").status_code == 403
    assert api_client.get("/api/v1/stock-movements/").status_code == 401


def test_low_stock_list(staff_client, make_product):
    make_product(sku="FINE-1", on_hand=10, low_stock_threshold=2)
    low = make_product(sku="LOW-1", on_hand=3, low_stock_threshold=2)
    make_product(sku="OUT-1", on_hand=0)
    stock_reserve(lines=[StockLine(low.pk, 1)], actor=None, reference="o:1")
    response = staff_client.get("/api/v1/inventory/low-stock/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [(p["sku"], p["available"], p["low_stock_threshold"]) for p in body["results"]] == [
        ("OUT-1", 0, 0),
        ("LOW-1", 2, 2),
    ]
    assert body["results"][1] == {
        "id": low.pk,
        "sku": "LOW-1",
        "name": low.name,
        "category_path": "Audio",
        "is_active": True,
        "on_hand": 3,
        "reserved": 1,
        "available": 2,
        "low_stock_threshold": 2,
    }


@pytest.mark.parametrize("page_size", [1, 50])
def test_low_stock_query_count_is_fixed(
    staff_client, make_product, page_size, django_assert_num_queries
):
    for _ in range(3):
        make_product(on_hand=0)
    with django_assert_num_queries(3):  # the user, the count, the page
        response = staff_client.get(f"/api/v1/inventory/low-stock/?page_size={page_size}")
    assert len(response.json()["results"]) == min(page_size, 3)


def test_low_stock_is_staff_only(customer_client):
    assert customer_client.get("/api/v1/inventory/low-stock/").status_code == 403
