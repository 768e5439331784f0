"""Order inputs the schema fuzzing (tests/test_schema_fuzz.py) found handled against the schema:

- `tracking_number: 0` was taken as "0"; a value of another JSON type is now a 400;
- PATCH of a cart line without `quantity` was a 400 `required`, though PATCH is partial (and so
  documented): it changes nothing;
- a `created_after`/`created_before` with an offset ISO 8601 allows but PostgreSQL does not
  (past ±15:59) was a 400 naming no field; moments are compared in UTC, and one outside the
  years 1-9999 once in UTC is before or after every order.
"""

from __future__ import annotations

import pytest

from orders.models import CartItem
from orders.services import cart_item_add
from orders.tests.helpers import mark_paid

pytestmark = pytest.mark.django_db


def test_ship_refuses_a_number_for_the_tracking_number(customer, staff_client, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    response = staff_client.post(
        f"/api/v1/orders/{order.pk}/ship/", {"tracking_number": 0}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "invalid",
        "detail": "Not a valid string.",
        "attr": "tracking_number",
    }
    order.refresh_from_db()
    assert order.status == "paid"


def test_cart_refuses_a_quantity_as_a_string(customer_client, product):
    response = customer_client.post(
        "/api/v1/cart/items/", {"product": product.pk, "quantity": "2"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "quantity"


def test_patching_a_cart_line_without_quantity_changes_nothing(customer, customer_client, product):
    line = cart_item_add(user=customer, product_id=product.pk, quantity=3)
    response = customer_client.patch(f"/api/v1/cart/items/{line.pk}/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["quantity"] == 3
    assert CartItem.objects.get(pk=line.pk).quantity == 3


def test_patching_another_users_line_without_quantity_is_404(make_user, customer_client, product):
    line = cart_item_add(user=make_user(), product_id=product.pk, quantity=1)
    response = customer_client.patch(f"/api/v1/cart/items/{line.pk}/", {}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("moment", "count"),
    [
        ("2000-01-01T00:00:00-22:53", 0),  # PostgreSQL refuses this offset
        ("0001-01-01T00:00:00+05:00", 0),  # before year 1 in UTC: before every order
        ("9999-12-31T23:00:00-05:00", 1),  # after year 9999 in UTC: after every order
    ],
)
def test_created_before_takes_any_iso_8601_moment(
    customer, customer_client, place_order, moment, count
):
    place_order(customer)
    response = customer_client.get("/api/v1/orders/", {"created_before": moment})
    assert response.status_code == 200
    assert response.json()["count"] == count
