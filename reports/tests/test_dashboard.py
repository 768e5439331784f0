"""The staff dashboard on the admin index (reports/dashboard.py): its figures come from the
reports' selectors, its links lead to the filtered lists, and it renders with no data."""

from __future__ import annotations

import pytest
from django.urls import reverse

from common.money import format_money_display
from common.money import store_money as money
from inventory.services import category_create, product_create
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS
from orders.tests.helpers import mark_paid
from reports.dashboard import dashboard_build, revenue_chart_svg
from reports.selectors import SalesRow, store_today

pytestmark = pytest.mark.django_db
INDEX = "/admin/"


@pytest.fixture
def sales(customer):
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
    cart_item_add(user=customer, product_id=headphones.pk, quantity=3)
    order = order_place(user=customer, shipping_address=ADDRESS)
    mark_paid(order_id=order.pk, actor=None)
    cart_item_add(user=customer, product_id=headphones.pk, quantity=1)
    order_place(user=customer, shipping_address=ADDRESS)  # pending
    return order


def test_money_is_shown_as_money():
    assert format_money_display(cents=197995, currency="USD") == "$1,979.95"
    assert format_money_display(cents=-50, currency="EUR") == "-€0.50"
    assert format_money_display(cents=123456, currency="CHF") == "1,234.56 CHF"
    assert money(197995) == "$1,979.95"  # the store currency (USD)


def test_staff_see_today_orders_by_status_and_low_stock(client, staff, sales):
    client.force_login(staff)
    page = client.get(INDEX)
    assert page.status_code == 200
    dashboard = page.context["dashboard"]
    assert (dashboard.today.orders, dashboard.today.items_sold) == (1, 3)
    assert dashboard.today_revenue == "$149.97"
    counts = {row.status: row.count for row in dashboard.by_status}
    assert counts == {
        "pending": 1,
        "paid": 1,
        "shipped": 0,
        "delivered": 0,
        "cancelled": 0,
        "refunded": 0,
    }
    assert [(item.sku, item.available, item.threshold) for item in dashboard.low_stock] == [
        ("CAB-1", 2, 5)
    ]
    html = page.content.decode()
    assert f'href="{reverse("admin:orders_order_changelist")}?status__exact=paid"' in html
    assert "$149.97" in html
    assert html.count('class="bar"') == 30
    assert html.index("shop-dashboard") < html.index('id="content-main"')  # above the app list


def test_the_dashboard_agrees_with_the_sales_report(staff_client, sales):
    today = store_today()
    report = staff_client.get(
        "/api/v1/reports/sales/", {"date_from": today.isoformat(), "date_to": today.isoformat()}
    ).json()
    built = dashboard_build()
    assert report[0]["revenue_cents"] == built.today.revenue_cents == 14997
    assert report[0]["orders"] == built.today.orders


def test_it_renders_with_no_data(client, staff):
    client.force_login(staff)
    page = client.get(INDEX)
    assert page.status_code == 200
    html = page.content.decode()
    assert "$0.00" in html
    assert "Nothing is running low." in html
    assert html.count('class="bar"') == 30


def test_customers_never_reach_it(client, customer):
    client.force_login(customer)
    response = client.get(INDEX)
    assert response.status_code == 302  # to the admin login
    assert "shop-dashboard" not in response.content.decode()


def test_the_chart_escapes_and_scales():
    days = [
        SalesRow(period=store_today(), orders=1, items_sold=1, revenue_cents=100, refunded_cents=0),
        SalesRow(period=store_today(), orders=2, items_sold=2, revenue_cents=300, refunded_cents=0),
    ]
    svg = str(revenue_chart_svg(days, width=200, height=120))
    assert svg.count("<rect") == 2
    assert 'height="100.0"' in svg  # the largest day fills the plot (120 - 20)
    assert "<script" not in svg
