from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import client_for
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_cancel, order_ship
from orders.tests.helpers import mark_paid

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


def url(order, action=""):
    return f"{ORDERS}{order.pk}/{action + '/' if action else ''}"


def test_customers_list_their_own_orders_newest_first(
    customer, customer_client, make_user, place_order
):
    older = place_order(customer)
    newer = place_order(customer)
    place_order(make_user())
    body = customer_client.get(ORDERS).json()
    assert body["count"] == 2
    assert [row["number"] for row in body["results"]] == [newer.number, older.number]
    row = body["results"][0]
    assert set(row) == {
        "id",
        "number",
        "status",
        "customer",
        "subtotal_cents",
        "total_cents",
        "currency",
        "expires_at",
        "created_at",
        "updated_at",
    }
    assert row["customer"] == {"id": customer.pk, "email": customer.email}


def test_staff_list_every_order(staff_client, customer, make_user, place_order):
    place_order(customer)
    place_order(make_user())
    assert staff_client.get(ORDERS).json()["count"] == 2


def test_anonymous_cannot_list(api_client):
    assert api_client.get(ORDERS).status_code == 401


def test_filters(staff_client, staff, customer, place_order):
    pending = place_order(customer)
    paid = place_order(customer)
    mark_paid(order_id=paid.pk, actor=staff)
    Order.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(days=3))

    def numbers(**params):
        response = staff_client.get(ORDERS, params)
        assert response.status_code == 200
        return [row["number"] for row in response.json()["results"]]

    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert numbers(status="paid") == [paid.number]
    assert numbers(status="pending") == [pending.number]
    assert numbers(created_after=cutoff) == [paid.number]
    assert numbers(created_before=cutoff) == [pending.number]
    assert staff_client.get(ORDERS, {"status": "lost"}).status_code == 400
    assert staff_client.get(ORDERS, {"created_after": "yesterday"}).status_code == 400


@pytest.mark.parametrize("who", ["customer", "staff"])
def test_list_runs_a_fixed_number_of_queries(
    who, customer, staff, place_order, django_assert_num_queries, make_product
):
    client = client_for(customer if who == "customer" else staff)
    place_order(customer)
    with django_assert_num_queries(3):  # user (JWT), count, page with customers
        assert len(client.get(ORDERS).json()["results"]) == 1
    for _ in range(24):
        place_order(customer, [(make_product(), 1)])
    with django_assert_num_queries(3):
        assert len(client.get(ORDERS, {"page_size": 100}).json()["results"]) == 25


def test_detail_runs_a_fixed_number_of_queries(
    customer, customer_client, place_order, make_product, django_assert_num_queries
):
    small = place_order(customer)
    big = place_order(customer, [(make_product(), 1) for _ in range(6)])
    order_cancel(order_id=big.pk, actor=customer)
    for order in (small, big):
        with django_assert_num_queries(5):  # user, order, items, events, payments
            assert customer_client.get(url(order)).status_code == 200


def test_owner_and_staff_see_the_detail_others_get_404(customer, staff, make_user, place_order):
    order = place_order(customer)
    assert client_for(customer).get(url(order)).json()["number"] == order.number
    assert client_for(staff).get(url(order)).json()["number"] == order.number
    response = client_for(make_user()).get(url(order))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_unknown_and_malformed_ids_are_404(customer_client):
    assert customer_client.get(f"{ORDERS}{uuid.uuid4()}/").status_code == 404
    assert customer_client.get(f"{ORDERS}not-a-uuid/").status_code == 404


def test_owner_cancels_a_pending_order(customer, customer_client, product, place_order):
    order = place_order(customer, [(product, 3)])
    response = customer_client.post(url(order, "cancel"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["expires_at"] is None
    assert [(e["from_status"], e["to_status"]) for e in body["events"]][-1] == (
        "pending",
        "cancelled",
    )
    assert StockLevel.objects.get(product=product).reserved == 0


def test_owner_cancels_a_paid_order(customer, customer_client, product, place_order):
    order = place_order(customer, [(product, 3)])
    mark_paid(order_id=order.pk, actor=customer)
    assert customer_client.post(url(order, "cancel")).json()["status"] == "cancelled"
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved) == (10, 0)


def test_staff_cancel_any_order(customer, staff_client, place_order):
    order = place_order(customer)
    assert staff_client.post(url(order, "cancel")).json()["status"] == "cancelled"


def test_cancel_of_another_users_order_is_404(customer, make_user, product, place_order):
    order = place_order(customer, [(product, 3)])
    response = client_for(make_user()).post(url(order, "cancel"))
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == "pending"
    assert StockLevel.objects.get(product=product).reserved == 3


def test_cancel_of_a_shipped_order_is_409(customer, customer_client, staff, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    order_ship(order_id=order.pk, actor=staff)
    response = customer_client.post(url(order, "cancel"))
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "invalid_transition"
    order.refresh_from_db()
    assert order.status == "shipped"


def test_staff_ship_a_paid_order(customer, staff_client, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    response = staff_client.post(
        url(order, "ship"), {"carrier": "UPS", "tracking_number": "1Z999"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["carrier"], body["tracking_number"]) == ("shipped", "UPS", "1Z999")


def test_ship_without_tracking(customer, staff_client, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    body = staff_client.post(url(order, "ship"), {}, format="json").json()
    assert (body["status"], body["carrier"], body["tracking_number"]) == ("shipped", "", "")


def test_ship_a_pending_order_is_409(customer, staff_client, place_order):
    order = place_order(customer)
    response = staff_client.post(url(order, "ship"), {"carrier": "UPS"}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "invalid_transition"
    order.refresh_from_db()
    assert (order.status, order.carrier) == ("pending", "")


def test_ship_with_a_too_long_tracking_number_is_400(customer, staff_client, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    response = staff_client.post(url(order, "ship"), {"tracking_number": "x" * 101}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "tracking_number"


@pytest.mark.parametrize("action", ["ship", "deliver"])
def test_customers_cannot_ship_or_deliver(customer, customer_client, place_order, action):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    response = customer_client.post(url(order, action), {}, format="json")
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == "paid"


def test_staff_deliver_a_shipped_order(customer, staff, staff_client, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    order_ship(order_id=order.pk, actor=staff)
    response = staff_client.post(url(order, "deliver"))
    assert response.status_code == 200
    assert response.json()["status"] == "delivered"


def test_deliver_a_paid_order_is_409(customer, staff_client, place_order):
    order = place_order(customer)
    mark_paid(order_id=order.pk, actor=customer)
    response = staff_client.post(url(order, "deliver"))
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "invalid_transition"


def test_staff_actions_on_an_unknown_order_are_404(staff_client):
    for action in ("cancel", "ship", "deliver"):
        assert (
            staff_client.post(f"{ORDERS}{uuid.uuid4()}/{action}/", {}, format="json").status_code
            == 404
        )
