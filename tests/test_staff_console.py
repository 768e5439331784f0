"""What a staff member (not an admin) can reach in /admin/, across the apps."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_web(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/orders/order/",
        "/admin/inventory/category/",
        "/admin/inventory/product/",
        "/admin/inventory/product/add/",
        "/admin/inventory/stockmovement/",
        "/admin/payments/payment/",
        "/admin/payments/paymentmethod/",
        "/admin/accounts/user/",
    ],
)
def test_staff_can_open_the_consoles_of_their_work(staff_web, path):
    assert staff_web.get(path).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/admin/auth/group/", "/admin/payments/webhookevent/", "/admin/accounts/user/add/"],
)
def test_staff_cannot_reach_what_is_not_theirs(staff_web, path):
    assert staff_web.get(path).status_code == 403


def test_a_customer_cannot_enter_the_admin(customer):
    client = Client()
    client.force_login(customer)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_adjust_stock_from_the_product_page(staff_web, staff):
    from inventory.models import StockLevel, StockMovement
    from inventory.services import category_create, product_create

    product = product_create(
        sku="ADJ-1", name="Adjustable", category=category_create(name="Tools"), price_cents=100
    )
    url = f"/admin/inventory/product/{product.pk}/adjust-stock/"
    assert staff_web.get(url).status_code == 200
    response = staff_web.post(url, {"delta": 5, "reason": "receipt", "note": "delivery"})
    assert response.status_code == 302
    assert StockLevel.objects.get(product=product).on_hand == 5
    movement = StockMovement.objects.get(product=product)
    assert (movement.delta_on_hand, movement.actor_id) == (5, staff.pk)


def test_no_admin_page_writes_stock_orders_or_payments_by_hand(rf, admin_user):
    """Stock, order status and money change only through the services (the buttons and forms
    call them): every admin of those rows is view-only, even for a superuser."""
    from django.contrib import admin

    from inventory.models import StockLevel, StockMovement
    from orders.models import Order, OrderEvent, OrderItem
    from payments.models import Payment

    request = rf.get("/admin/")
    request.user = admin_user
    guarded = {StockLevel, StockMovement, Order, OrderEvent, OrderItem, Payment}
    assert {StockMovement, Order, Payment} <= set(admin.site._registry)
    for model, model_admin in admin.site._registry.items():
        if model in guarded:
            assert not model_admin.has_add_permission(request), model
            assert not model_admin.has_change_permission(request), model
            assert not model_admin.has_delete_permission(request), model
    # ...and the product form shows stock without a field to type it into.
    from inventory.admin import ProductAdminForm

    assert not {"on_hand", "reserved"} & set(ProductAdminForm.base_fields)
