from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_ship
from orders.tests.helpers import mark_paid

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/orders/order/"


@pytest.fixture
def admin_web(client, admin_user):
    client.force_login(admin_user)
    return client


def act(admin_web, action, orders, **extra):
    return admin_web.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(o.pk) for o in orders], **extra},
        follow=True,
    )


def test_changelist_shows_searches_and_filters(admin_web, customer, make_user, place_order):
    mine = place_order(customer)
    theirs = place_order(make_user(email="zed@example.com"))
    mark_paid(order_id=theirs.pk, actor=None)
    page = admin_web.get(CHANGELIST).content.decode()
    assert mine.number in page
    assert theirs.number in page
    assert "customer@example.com" in page
    assert f"${mine.total_cents // 100:,}.{mine.total_cents % 100:02d}" in page  # money, not cents
    by_email = admin_web.get(CHANGELIST, {"q": "zed@"}).content.decode()
    assert theirs.number in by_email
    assert mine.number not in by_email
    by_number = admin_web.get(CHANGELIST, {"q": mine.number}).content.decode()
    assert mine.number in by_number
    assert theirs.number not in by_number
    paid = admin_web.get(CHANGELIST, {"status__exact": "paid"}).content.decode()
    assert theirs.number in paid
    assert mine.number not in paid


def test_change_page_is_read_only_with_items_and_events(admin_web, customer, product, place_order):
    order = place_order(customer, [(product, 2)])
    page = admin_web.get(f"{CHANGELIST}{order.pk}/change/").content.decode()
    assert "HP-100" in page
    assert "Studio Headphones" in page
    assert 'name="status"' not in page
    assert 'name="total_cents"' not in page
    # A forged POST cannot change the status or the totals either.
    admin_web.post(f"{CHANGELIST}{order.pk}/change/", {"status": "delivered", "total_cents": 1})
    order.refresh_from_db()
    assert (order.status, order.total_cents) == ("pending", 9998)


def test_no_adding_or_deleting(admin_web, customer, place_order):
    order = place_order(customer)
    assert admin_web.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_web.get(f"{CHANGELIST}{order.pk}/delete/").status_code == 403


def test_ship_action_uses_the_service_with_tracking(admin_web, admin_user, customer, place_order):
    paid = place_order(customer)
    mark_paid(order_id=paid.pk, actor=None)
    pending = place_order(customer)
    response = act(admin_web, "ship", [paid, pending], carrier="DHL", tracking_number="JD01")
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert "1 order(s) shipped." in messages
    assert any(
        m.startswith(f"{pending.number}: ") and "cannot become shipped" in m for m in messages
    )
    paid.refresh_from_db()
    assert (paid.status, paid.carrier, paid.tracking_number) == ("shipped", "DHL", "JD01")
    assert paid.events.last().actor == admin_user
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_deliver_and_cancel_actions(admin_web, customer, product, place_order):
    shipped = place_order(customer)
    mark_paid(order_id=shipped.pk, actor=None)
    order_ship(order_id=shipped.pk, actor=None)
    pending = place_order(customer, [(product, 3)])
    act(admin_web, "deliver", [shipped])
    act(admin_web, "cancel", [pending])
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {shipped.pk: "delivered", pending.pk: "cancelled"}
    assert StockLevel.objects.get(product=product).reserved == 0
    assert pending.events.last().note == "cancelled by staff"
