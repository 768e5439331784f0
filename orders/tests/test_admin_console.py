"""The order page of the staff console: what staff read there, and the moves they make from it
(ship, deliver, cancel, refund), each through its confirmation page and the order services."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import User
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_pay, order_ship
from orders.tests.helpers import mark_paid
from payments.exceptions import PaymentDeclined
from payments.gateways.base import CardDetails
from payments.models import Payment
from payments.services import payment_method_create

pytestmark = pytest.mark.django_db

DECLINED_CARD = "4000000000000002"  # the test gateway declines it with "card_declined"
GOOD_CARD = "4242424242424242"


def page_url(order: Order, move: str = "change") -> str:
    return f"/admin/orders/order/{order.pk}/{move}/"


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def card(user: User, number: str):
    details = CardDetails(number=number, exp_month=12, exp_year=2040, cvc="123")
    return payment_method_create(user=user, card=details)


def stock(product) -> tuple[int, int]:
    level = StockLevel.objects.get(product=product)
    return level.on_hand, level.reserved


@pytest.fixture
def staff_web(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def order(customer, place_order, product):
    """Pending: 2 Studio Headphones at $49.99 = $99.98, out of 10 on hand."""
    return place_order(customer, [(product, 2)])


@pytest.fixture
def paid(order):
    mark_paid(order_id=order.pk, actor=None)
    order.refresh_from_db()
    return order


@pytest.fixture
def shipped(paid):
    return order_ship(order_id=paid.pk, actor=None, carrier="DHL", tracking_number="JD01")


# --- the order page ---------------------------------------------------------------------------


def test_the_order_page_reads_like_an_order(staff_web, customer, order):
    with pytest.raises(PaymentDeclined):
        order_pay(
            order_id=order.pk, user=customer, payment_method_id=card(customer, DECLINED_CARD).pk
        )
    order_pay(order_id=order.pk, user=customer, payment_method_id=card(customer, GOOD_CARD).pk)
    declined, charge = Payment.objects.filter(order_id=order.pk).order_by("created_at")

    response = staff_web.get(page_url(order))

    assert response.status_code == 200
    page = response.content.decode()
    # The address as lines on a parcel, not a dict.
    assert "Ann Smith<br>1 Main Street<br>10115 Berlin<br>DE<br>" in page
    assert "'line1'" not in page
    # Items with unit price, quantity and line total; the order's money as money.
    assert "$49.99" in page
    assert "$99.98" in page
    assert "9998" not in page
    # The history: who moved it from what to what, and why.
    assert "Pending payment" in page
    assert "payment received" in page
    assert "customer@example.com" in page
    # Both charges, the declined one with its failure code, each with its gateway reference.
    assert declined.failure_code == "card_declined"
    assert "card_declined" in page
    assert declined.gateway_reference in page
    assert charge.gateway_reference in page
    assert "Payments and refunds" in page
    # Read-only: no Save row, no inputs for the order's fields.
    assert 'name="_save"' not in page
    assert 'class="submit-row"' not in page
    assert 'name="status"' not in page


def test_a_paid_order_offers_ship_refund_and_cancel(staff_web, paid):
    page = staff_web.get(page_url(paid)).content.decode()
    for move in ("ship", "refund", "cancel"):
        assert page_url(paid, move) in page
    assert page_url(paid, "deliver") not in page


def test_a_pending_order_offers_cancel_only(staff_web, order):
    page = staff_web.get(page_url(order)).content.decode()
    assert page_url(order, "cancel") in page
    for move in ("ship", "deliver", "refund"):
        assert page_url(order, move) not in page


def test_the_orders_list_shows_money(staff_web, order):
    page = staff_web.get("/admin/orders/order/").content.decode()
    assert order.number in page
    assert "$99.98" in page
    assert "customer@example.com" in page


# --- moves ------------------------------------------------------------------------------------


def test_ship_through_the_confirmation_page(staff_web, staff, paid):
    form = staff_web.get(page_url(paid, "ship"))
    assert form.status_code == 200
    assert 'name="carrier"' in form.content.decode()

    response = staff_web.post(
        page_url(paid, "ship"), {"carrier": "DHL", "tracking_number": "JD01"}, follow=True
    )

    assert response.redirect_chain[-1][0] == page_url(paid)
    assert f"Order {paid.number} shipped with DHL, tracking JD01." in messages_of(response)
    paid.refresh_from_db()
    assert (paid.status, paid.carrier, paid.tracking_number) == ("shipped", "DHL", "JD01")
    event = paid.events.last()
    assert (event.from_status, event.to_status, event.actor) == ("paid", "shipped", staff)


def test_ship_needs_a_carrier(staff_web, paid):
    response = staff_web.post(page_url(paid, "ship"), {"carrier": "", "tracking_number": "X"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    paid.refresh_from_db()
    assert paid.status == "paid"


def test_deliver_through_the_confirmation_page(staff_web, staff, shipped):
    assert staff_web.get(page_url(shipped, "deliver")).status_code == 200
    response = staff_web.post(page_url(shipped, "deliver"), follow=True)
    assert f"Order {shipped.number} is now delivered." in messages_of(response)
    shipped.refresh_from_db()
    assert shipped.status == "delivered"
    assert shipped.events.last().actor == staff


def test_cancel_a_pending_order_releases_its_units(staff_web, order, product):
    assert stock(product) == (10, 2)
    assert staff_web.get(page_url(order, "cancel")).status_code == 200
    response = staff_web.post(page_url(order, "cancel"), {"reason": "asked by phone"}, follow=True)
    assert f"Order {order.number} is now cancelled." in messages_of(response)
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert order.events.last().note == "asked by phone"
    assert stock(product) == (10, 0)


def test_cancel_a_paid_order_refunds_and_restocks(staff_web, paid, product):
    page = staff_web.get(page_url(paid, "cancel")).content.decode()
    assert "$99.98 is refunded in full" in page
    staff_web.post(page_url(paid, "cancel"), {"reason": ""})
    paid.refresh_from_db()
    assert paid.status == "cancelled"
    assert paid.events.last().note == "cancelled by staff"
    refund = Payment.objects.get(order_id=paid.pk, kind="refund")
    assert (refund.status, refund.amount_cents) == ("succeeded", 9998)
    assert stock(product) == (10, 0)


def test_full_refund_with_restock(staff_web, staff, shipped, product):
    assert stock(product) == (8, 0)
    form = staff_web.get(page_url(shipped, "refund")).content.decode()
    assert 'value="99.98"' in form  # the full refundable amount by default

    response = staff_web.post(
        page_url(shipped, "refund"),
        {"amount": "99.98", "restock": "on", "reason": "returned damaged"},
        follow=True,
    )

    assert (
        f"Order {shipped.number} refunded in full ($99.98); its units are back on hand."
        in messages_of(response)
    )
    shipped.refresh_from_db()
    assert shipped.status == "refunded"
    assert shipped.events.last().note == "returned damaged"
    refund = Payment.objects.get(order_id=shipped.pk, kind="refund")
    assert (refund.status, refund.amount_cents, refund.initiated_by) == ("succeeded", 9998, staff)
    assert stock(product) == (10, 0)
    # The order page lists the refund.
    page = response.content.decode()
    assert "Refund" in page
    assert refund.gateway_reference in page


def test_partial_refund_keeps_the_status(staff_web, paid, product):
    response = staff_web.post(page_url(paid, "refund"), {"amount": "10.00"}, follow=True)
    assert (
        f"Order {paid.number}: $10.00 refunded; it stays paid with $89.98 left to refund."
        in messages_of(response)
    )
    paid.refresh_from_db()
    assert paid.status == "paid"
    refund = Payment.objects.get(order_id=paid.pk, kind="refund")
    assert refund.amount_cents == 1000
    assert stock(product) == (8, 0)
    # What is left to refund is what the next refund offers.
    assert 'value="89.98"' in staff_web.get(page_url(paid, "refund")).content.decode()


def test_a_refund_larger_than_refundable_is_refused(staff_web, paid):
    response = staff_web.post(page_url(paid, "refund"), {"amount": "100.00"})
    assert response.status_code == 200
    assert "The amount cannot be more than $99.98." in response.content.decode()
    assert not Payment.objects.filter(order_id=paid.pk, kind="refund").exists()
    paid.refresh_from_db()
    assert paid.status == "paid"


def test_a_service_refusal_is_a_message_and_the_form_again(staff_web, paid, product):
    """A partial refund cannot restock (`PartialRestock`, raised by the service)."""
    response = staff_web.post(page_url(paid, "refund"), {"amount": "10.00", "restock": "on"})
    assert response.status_code == 200
    assert messages_of(response) == ["Units can be restocked only with a full refund."]
    assert 'id="order-move-form"' in response.content.decode()
    assert not Payment.objects.filter(order_id=paid.pk, kind="refund").exists()
    assert stock(product) == (8, 0)


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_illegal_move_is_refused_and_changes_nothing(staff_web, order, method):
    events = order.events.count()
    response = getattr(staff_web, method)(
        page_url(order, "ship"), {"carrier": "DHL"} if method == "post" else None, follow=True
    )
    assert response.redirect_chain[-1][0] == page_url(order)
    assert messages_of(response) == [
        f"Order {order.number} is pending payment; ship is not possible from that status."
    ]
    order.refresh_from_db()
    assert (order.status, order.carrier, order.events.count()) == ("pending", "", events)


def test_a_refund_of_a_pending_order_is_refused(staff_web, order):
    response = staff_web.post(page_url(order, "refund"), {"amount": "1.00"}, follow=True)
    assert "refund is not possible" in messages_of(response)[0]
    assert not Payment.objects.filter(order_id=order.pk).exists()


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize("move", ["ship", "deliver", "cancel", "refund"])
def test_anonymous_and_customers_cannot_reach_the_moves(customer, paid, move):
    anonymous = Client()
    signed_in = Client()
    signed_in.force_login(customer)
    for client in (anonymous, signed_in):
        for response in (
            client.get(page_url(paid, move)),
            client.post(page_url(paid, move), {"carrier": "X", "amount": "99.98"}),
        ):
            assert response.status_code == 302
            assert "/admin/login/" in response["Location"]
    paid.refresh_from_db()
    assert paid.status == "paid"
    assert not Payment.objects.filter(order_id=paid.pk, kind="refund").exists()


def test_staff_without_the_order_permission_cannot_move(make_user, paid):
    outsider = make_user(User.Role.STAFF)
    outsider.groups.clear()  # staff, but not in the Staff group: no orders permission
    client = Client()
    client.force_login(outsider)
    assert client.get(page_url(paid, "ship")).status_code == 403
    assert client.post(page_url(paid, "ship"), {"carrier": "DHL"}).status_code == 403
    paid.refresh_from_db()
    assert paid.status == "paid"


def test_staff_reach_every_legal_move(staff_web, paid, shipped):
    # `shipped` is `paid` shipped: deliver and refund are what it offers now.
    for move in ("deliver", "refund"):
        assert staff_web.get(page_url(shipped, move)).status_code == 200


# --- nothing changes except through the services ----------------------------------------------


def test_a_post_to_the_order_page_changes_nothing(staff_web, admin_user, paid):
    admin_web = Client()
    admin_web.force_login(admin_user)
    for client in (staff_web, admin_web):
        response = client.post(
            page_url(paid),
            {"status": "refunded", "total_cents": 1, "carrier": "forged", "_save": "Save"},
        )
        assert response.status_code == 403
    paid.refresh_from_db()
    assert (paid.status, paid.total_cents, paid.carrier) == ("paid", 9998, "")
    assert paid.events.count() == 2


def test_no_adding_or_deleting_orders_or_payments(admin_user, paid):
    client = Client()
    client.force_login(admin_user)
    payment = Payment.objects.get(order_id=paid.pk)
    assert client.get("/admin/orders/order/add/").status_code == 403
    assert client.post(page_url(paid, "delete"), {"post": "yes"}).status_code == 403
    assert client.get("/admin/payments/payment/add/").status_code == 403
    assert client.post(f"/admin/payments/payment/{payment.pk}/delete/").status_code == 403
    forged = client.post(
        f"/admin/payments/payment/{payment.pk}/change/",
        {"amount_cents": 1, "status": "failed"},
    )
    assert forged.status_code == 403
    payment.refresh_from_db()
    assert (payment.amount_cents, payment.status) == (9998, "succeeded")
    assert Order.objects.filter(pk=paid.pk).exists()


def test_list_actions_still_move_orders(staff_web, paid):
    response = staff_web.post(
        "/admin/orders/order/",
        {"action": "ship", "_selected_action": [str(paid.pk)], "carrier": "UPS"},
        follow=True,
    )
    assert "1 order(s) shipped." in messages_of(response)
    paid.refresh_from_db()
    assert (paid.status, paid.carrier) == ("shipped", "UPS")
