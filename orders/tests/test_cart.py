from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import client_for
from inventory.models import Product
from orders.models import CartItem

pytestmark = pytest.mark.django_db

CART = "/api/v1/cart/"
ITEMS = "/api/v1/cart/items/"


def add(client, product, quantity):
    return client.post(ITEMS, {"product": product.pk, "quantity": quantity}, format="json")


def test_an_empty_cart(customer_client):
    response = customer_client.get(CART)
    assert response.status_code == 200
    assert response.json() == {"items": [], "subtotal_cents": 0, "currency": "USD"}


def test_anonymous_has_no_cart(api_client):
    assert api_client.get(CART).status_code == 401


def test_add_a_line(customer_client, customer, product):
    response = add(customer_client, product, 3)
    assert response.status_code == 201
    item = CartItem.objects.get()
    assert response.json() == {
        "id": item.pk,
        "product": {
            "id": product.pk,
            "sku": "HP-100",
            "name": "Studio Headphones",
            "price_cents": 4999,
        },
        "quantity": 3,
        "line_total_cents": 3 * 4999,
        "available": 10,
    }
    assert item.cart.user == customer


def test_the_same_product_again_adds_to_its_line(customer_client, product):
    add(customer_client, product, 3)
    response = add(customer_client, product, 4)
    assert response.status_code == 201
    assert response.json()["quantity"] == 7
    assert list(CartItem.objects.values_list("quantity", flat=True)) == [7]


def test_more_than_available_is_409_and_changes_nothing(customer_client, product):
    add(customer_client, product, 6)
    response = add(customer_client, product, 5)
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "code": "insufficient_stock",
            "detail": "HP-100: 10 available, 11 requested.",
            "attr": "items",
        }
    ]
    assert list(CartItem.objects.values_list("quantity", flat=True)) == [6]


def test_inactive_product_is_400(customer_client, make_product):
    inactive = make_product(is_active=False)
    response = add(customer_client, inactive, 1)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "product_unavailable"
    assert response.json()["errors"][0]["attr"] == "product"
    assert CartItem.objects.count() == 0


def test_unknown_product_is_400(customer_client):
    response = customer_client.post(ITEMS, {"product": 999999, "quantity": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "product_unavailable"


@pytest.mark.parametrize("quantity", [0, -1, "x", None])
def test_bad_quantity_is_400(customer_client, product, quantity):
    response = customer_client.post(
        ITEMS, {"product": product.pk, "quantity": quantity}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["errors"][0]["attr"] == "quantity"
    assert CartItem.objects.count() == 0


def test_cart_shows_current_price_available_and_subtotal(customer_client, product, make_product):
    other = make_product(price_cents=250, on_hand=4)
    add(customer_client, product, 2)
    add(customer_client, other, 3)
    Product.objects.filter(pk=product.pk).update(price_cents=5000)
    body = customer_client.get(CART).json()
    assert [
        (line["product"]["price_cents"], line["line_total_cents"], line["available"])
        for line in body["items"]
    ] == [
        (5000, 10000, 10),
        (250, 750, 4),
    ]
    assert body["subtotal_cents"] == 10750


def test_cart_reads_in_a_fixed_number_of_queries(customer_client, make_product):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert customer_client.get(CART).status_code == 200
        return len(context.captured_queries)

    add(customer_client, make_product(), 1)
    one = queries()
    for _ in range(5):
        add(customer_client, make_product(), 1)
    assert queries() == one == 2  # the user (JWT), the lines with products and stock


def test_update_a_line(customer_client, product):
    item_id = add(customer_client, product, 1).json()["id"]
    response = customer_client.patch(f"{ITEMS}{item_id}/", {"quantity": 9}, format="json")
    assert response.status_code == 200
    assert response.json()["quantity"] == 9
    assert CartItem.objects.get().quantity == 9


def test_update_above_available_is_409(customer_client, product):
    item_id = add(customer_client, product, 1).json()["id"]
    response = customer_client.patch(f"{ITEMS}{item_id}/", {"quantity": 11}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "insufficient_stock"
    assert CartItem.objects.get().quantity == 1


def test_update_to_zero_is_400(customer_client, product):
    item_id = add(customer_client, product, 1).json()["id"]
    response = customer_client.patch(f"{ITEMS}{item_id}/", {"quantity": 0}, format="json")
    assert response.status_code == 400
    assert CartItem.objects.get().quantity == 1


def test_update_a_line_whose_product_was_deactivated_is_400(customer_client, product):
    item_id = add(customer_client, product, 1).json()["id"]
    Product.objects.filter(pk=product.pk).update(is_active=False)
    response = customer_client.patch(f"{ITEMS}{item_id}/", {"quantity": 2}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "product_unavailable"


def test_remove_a_line(customer_client, product):
    item_id = add(customer_client, product, 1).json()["id"]
    assert customer_client.delete(f"{ITEMS}{item_id}/").status_code == 204
    assert CartItem.objects.count() == 0
    assert customer_client.delete(f"{ITEMS}{item_id}/").status_code == 404


def test_another_users_line_is_404(customer_client, product, make_user):
    item_id = add(customer_client, product, 2).json()["id"]
    intruder = client_for(make_user())
    assert intruder.patch(f"{ITEMS}{item_id}/", {"quantity": 1}, format="json").status_code == 404
    assert intruder.delete(f"{ITEMS}{item_id}/").status_code == 404
    assert CartItem.objects.get().quantity == 2


def test_empty_the_cart(customer_client, product, make_product, make_user):
    add(customer_client, product, 1)
    add(customer_client, make_product(), 1)
    other = client_for(make_user())
    add(other, product, 1)
    assert customer_client.delete(CART).status_code == 204
    assert customer_client.get(CART).json()["items"] == []
    assert len(other.get(CART).json()["items"]) == 1
