"""The payments console reads in money and leads to the order; nothing in it moves money."""

import pytest
from django.test import Client

from payments import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_web(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def refund(paid_charge):
    """$25.00 back from the $100.00 charge."""
    pending = services.payment_refund_begin(
        order_id=paid_charge.order_id, amount_cents=2500, user=None
    )
    result = services.payment_refund_execute(payment_id=pending.pk)
    return services.payment_settle(payment_id=pending.pk, result=result)


def test_the_list_shows_money_and_links_the_order(staff_web, paid_charge, refund):
    page = staff_web.get("/admin/payments/payment/").content.decode()
    assert "$100.00" in page
    assert "$25.00" in page
    assert "10000" not in page
    assert f'href="/admin/orders/order/{paid_charge.order_id}/change/"' in page


def test_a_refund_page_names_its_charge_in_money(staff_web, paid_charge, refund):
    response = staff_web.get(f"/admin/payments/payment/{refund.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Refund $25.00 (succeeded)" in page
    assert f'href="/admin/payments/payment/{paid_charge.pk}/change/"' in page
    assert "Charge $100.00 (succeeded)" in page
    assert "2500" not in page
    assert 'name="_save"' not in page
    assert 'name="amount_cents"' not in page


def test_staff_cannot_add_change_or_delete_payments(staff_web, paid_charge):
    assert staff_web.get("/admin/payments/payment/add/").status_code == 403
    url = f"/admin/payments/payment/{paid_charge.pk}/"
    assert staff_web.post(f"{url}change/", {"amount_cents": 1}).status_code == 403
    assert staff_web.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    paid_charge.refresh_from_db()
    assert paid_charge.amount_cents == 10_000
