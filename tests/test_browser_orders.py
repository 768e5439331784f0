"""The order page of the staff console in a real browser: ship, then refund, through the buttons
and their confirmation pages (see tests/browser.py for how and for screenshots)."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.models import StockLevel
from inventory.services import category_create, product_create
from orders.models import Order
from orders.services import cart_item_add, order_pay, order_place
from orders.tests.conftest import ADDRESS
from payments.exceptions import PaymentDeclined
from payments.gateways.base import CardDetails
from payments.models import Payment
from payments.services import payment_method_create
from tests.browser import browser_marks, no_horizontal_scroll, screenshot, sign_in

pytestmark = browser_marks

DECLINED = "4000000000000002"  # the test gateway's "card_declined"
GOOD = "4242424242424242"


def card(user: Any, number: str) -> Any:
    details = CardDetails(number=number, exp_month=12, exp_year=2040, cvc="123")
    return payment_method_create(user=user, card=details)


@pytest.fixture
def paid_order(make_user: Any) -> Order:
    """Ann's order of 2 Studio Headphones at $49.99 (8 of 10 left on hand), paid with her
    second card after the first was declined."""
    customer = make_user(email="ann@example.com")
    headphones = product_create(
        sku="HP-100",
        name="Studio Headphones",
        category=category_create(name="Audio"),
        price_cents=4999,
        on_hand=10,
    )
    cart_item_add(user=customer, product_id=headphones.pk, quantity=2)
    order = order_place(user=customer, shipping_address=ADDRESS)
    with pytest.raises(PaymentDeclined):
        order_pay(order_id=order.pk, user=customer, payment_method_id=card(customer, DECLINED).pk)
    return order_pay(order_id=order.pk, user=customer, payment_method_id=card(customer, GOOD).pk)


def test_ship_then_refund_from_the_order_page(browser, live_server, staff, paid_order):
    order_url = f"{live_server.url}/admin/orders/order/{paid_order.pk}/change/"
    page = sign_in(browser, live_server, staff, width=1280)
    page.goto(order_url)
    status = page.locator(".field-status_label .order-status")
    assert status.inner_text() == "Paid"
    address = page.locator(".shipping-address").inner_text()
    assert address.splitlines() == ["Ann Smith", "1 Main Street", "10115 Berlin", "DE"]
    assert "$99.98" in page.locator(".field-line_total").first.inner_text()
    declined = page.locator(".order-payments tbody tr").first.inner_text()
    assert "Failed" in declined
    assert "card_declined" in declined
    assert page.locator("input[name=_save]").count() == 0
    assert page.get_by_role("link", name="Mark delivered").count() == 0
    assert no_horizontal_scroll(page)
    screenshot(page, "order-detail.png")

    page.get_by_role("link", name="Ship", exact=True).click()
    page.wait_for_url("**/ship/")
    page.fill("#id_carrier", "DHL")
    page.fill("#id_tracking_number", "JD014600003")
    page.get_by_role("button", name="Ship").click()
    page.wait_for_url(order_url)
    assert (
        f"Order {paid_order.number} shipped with DHL" in page.locator(".messagelist").inner_text()
    )
    assert status.inner_text() == "Shipped"

    page.get_by_role("link", name="Refund", exact=True).click()
    page.wait_for_url("**/refund/")
    assert page.input_value("#id_amount") == "99.98"  # the full refund by default
    page.check("#id_restock")
    page.fill("#id_reason", "returned unopened")
    assert no_horizontal_scroll(page)
    screenshot(page, "order-refund-confirm.png")
    page.get_by_role("button", name="Refund").click()
    page.wait_for_url(order_url)
    assert status.inner_text() == "Refunded"
    payments = page.locator(".order-payments tbody tr")
    assert payments.count() == 3  # the declined charge, the charge, the refund
    refund_row = payments.nth(2).inner_text()
    assert "Refund" in refund_row
    assert "$99.98" in refund_row
    assert "Succeeded" in refund_row
    screenshot(page, "order-refunded.png")

    # The refund's own page, in money, and back to the order from there.
    payments.nth(2).get_by_role("link").click()
    page.wait_for_url("**/admin/payments/payment/*/change/")
    assert page.get_by_role("heading", name="Refund $99.98 (succeeded)").is_visible()
    assert "Charge $99.98 (succeeded)" in page.locator(".field-refund_of").inner_text()
    assert no_horizontal_scroll(page)
    screenshot(page, "payment-detail.png")
    page.locator(".field-order a").click()
    page.wait_for_url(order_url)
    page.close()

    refund = Payment.objects.get(order_id=paid_order.pk, kind=Payment.Kind.REFUND)
    assert (refund.amount_cents, refund.initiated_by) == (9998, staff)
    assert StockLevel.objects.get(product__sku="HP-100").on_hand == 10


def test_the_orders_list_fits_1280_pixels(browser, live_server, staff, paid_order):
    page = sign_in(browser, live_server, staff, width=1280)
    page.goto(f"{live_server.url}/admin/orders/order/")
    row = page.locator("#result_list tbody tr").first
    cells = row.locator("th, td").all_inner_texts()
    assert [cell.strip() for cell in cells[1:5]] == [
        paid_order.number,
        "ann@example.com",
        "Paid",
        "$99.98",
    ]
    assert no_horizontal_scroll(page)
    screenshot(page, "orders-list.png")
    page.close()
