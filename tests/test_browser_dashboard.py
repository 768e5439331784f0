"""The staff dashboard in a real browser (see tests/browser.py for how and for screenshots)."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.services import category_create, product_create
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS
from orders.tests.helpers import mark_paid
from tests.browser import browser_marks, no_horizontal_scroll, screenshot, sign_in

pytestmark = browser_marks


@pytest.fixture
def shop_with_sales(make_user: Any) -> Any:
    """Two paid orders today and a product running low."""
    customer = make_user(email="ann@example.com")
    category = category_create(name="Audio")
    headphones = product_create(
        sku="HP-100", name="Studio Headphones", category=category, price_cents=4999, on_hand=10
    )
    product_create(
        sku="CAB-1",
        name="Cable",
        category=category,
        price_cents=999,
        on_hand=2,
        low_stock_threshold=5,
    )
    for quantity in (1, 2):
        cart_item_add(user=customer, product_id=headphones.pk, quantity=quantity)
        order = order_place(user=customer, shipping_address=ADDRESS)
        mark_paid(order_id=order.pk, actor=None)
    return customer


def test_the_dashboard_in_chromium_with_sales(browser, live_server, staff, shop_with_sales):
    page = sign_in(browser, live_server, staff, width=1280)
    dashboard = page.locator(".shop-dashboard")
    assert dashboard.is_visible()
    tiles = dashboard.locator(".tile").all_inner_texts()
    assert tiles[0].split() == ["$149.97", "revenue"]  # 1 + 2 headphones at $49.99
    assert tiles[1].split() == ["2", "orders", "paid"]
    assert page.locator(".revenue-chart rect.bar").count() == 30
    paid = page.get_by_role("link", name="2 paid")
    assert paid.get_attribute("href") == "/admin/orders/order/?status__exact=paid"
    assert page.get_by_role("link", name="CAB-1").is_visible()
    screenshot(page, "dashboard.png")

    paid.click()
    page.wait_for_url("**/admin/orders/order/?status__exact=paid")
    assert page.locator("#result_list tbody tr").count() == 2
    page.close()


def test_the_dashboard_in_a_narrow_window_and_with_no_data(browser, live_server, staff):
    page = sign_in(browser, live_server, staff, width=400)
    dashboard = page.locator(".shop-dashboard")
    assert dashboard.locator(".tile").first.inner_text().split() == ["$0.00", "revenue"]
    assert "Nothing is running low." in dashboard.inner_text()
    assert page.locator(".revenue-chart").is_visible()
    assert no_horizontal_scroll(page)
    page.get_by_text("The same figures as a table").click()
    assert page.locator(".revenue-table tbody tr").count() == 30
    screenshot(page, "dashboard-narrow-empty.png")
    page.close()
