"""The console around people: the user page lists a customer's orders, messages keep emails as
typed, the token tables are out of the menu and "View site" leads somewhere real."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from inventory.services import category_create, product_create
from orders.admin import CUSTOMER_ORDERS_SHOWN
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(client, admin_user):
    client.force_login(admin_user)
    return client


def place_orders(user, count):
    product = product_create(
        sku="MUG-1", name="Mug", category=category_create(name="Kitchen"), price_cents=1250,
        on_hand=100,
    )  # fmt: skip
    orders = []
    for _ in range(count):
        cart_item_add(user=user, product_id=product.pk, quantity=1)
        orders.append(order_place(user=user, shipping_address=ADDRESS))
    return orders


def test_the_user_page_lists_the_customers_latest_orders(admin_browser, make_user):
    ann = make_user(email="ann@example.com")
    orders = place_orders(ann, CUSTOMER_ORDERS_SHOWN + 2)
    other = make_user(email="bob@example.com")

    page = admin_browser.get(f"/admin/accounts/user/{ann.pk}/change/").content.decode()
    assert page.count("/admin/orders/order/") >= CUSTOMER_ORDERS_SHOWN
    assert orders[-1].number in page  # the newest is there
    assert orders[0].number not in page  # the two oldest are behind the link
    assert "$12.50" in page
    assert f"All {CUSTOMER_ORDERS_SHOWN + 2} order(s) of this customer" in page

    listing = admin_browser.get(f"/admin/orders/order/?user={ann.pk}")
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == CUSTOMER_ORDERS_SHOWN + 2
    empty = admin_browser.get(f"/admin/orders/order/?user={other.pk}")
    assert empty.context["cl"].result_count == 0


def test_a_user_without_orders_says_so(admin_browser, customer):
    page = admin_browser.get(f"/admin/accounts/user/{customer.pk}/change/").content.decode()
    assert "No orders yet." in page


def test_an_email_at_the_start_of_a_message_is_never_capitalised(admin_browser, admin_user):
    response = admin_browser.post(
        "/admin/accounts/user/",
        {"action": "suspend_users", ACTION_CHECKBOX_NAME: [admin_user.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "admin@example.com" in page.split('class="messagelist"')[1]
    assert "Admin@example.com" not in page


def test_token_tables_are_not_in_the_menu(admin_browser):
    index = admin_browser.get("/admin/").content.decode()
    assert "token_blacklist" not in index
    assert "Outstanding tokens" not in index
    assert admin_browser.get("/admin/token_blacklist/outstandingtoken/").status_code == 404


def test_view_site_leads_to_the_api_docs(admin_browser):
    index = admin_browser.get("/admin/").content.decode()
    assert '<a href="/api/docs/">View site</a>' in index
    assert admin_browser.get("/api/docs/").status_code == 200


def test_every_admin_page_links_to_two_factor_sign_in(admin_browser):
    index = admin_browser.get("/admin/").content.decode()
    assert '<a href="/admin/two-factor/">Two-factor sign-in</a>' in index
    assert admin_browser.get("/admin/two-factor/").status_code == 200
