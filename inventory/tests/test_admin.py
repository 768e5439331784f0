from __future__ import annotations

import pytest
from django.test import Client

from inventory.models import Category, Product, StockLevel, StockMovement

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/inventory/category/",
        "/admin/inventory/category/?q=aud",
        "/admin/inventory/product/",
        "/admin/inventory/product/?q=HP",
        "/admin/inventory/product/?stock=low",
        "/admin/inventory/product/?stock=out",
        "/admin/inventory/product/?is_active__exact=1",
        "/admin/inventory/product/add/",
        "/admin/inventory/category/add/",
        "/admin/inventory/stockmovement/",
        "/admin/inventory/stockmovement/?reason__exact=receipt",
    ],
)
def test_admin_pages_render(admin_browser, product, url):
    assert admin_browser.get(url).status_code == 200


def test_product_change_page_shows_stock_and_movements(admin_browser, product):
    response = admin_browser.get(f"/admin/inventory/product/{product.pk}/change/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "10 on hand, 0 reserved" in content
    assert "Adjust stock" in content
    assert "receipt" in content


def test_low_stock_filter(admin_browser, make_product):
    make_product(sku="FULL-1", on_hand=10, low_stock_threshold=2)
    make_product(sku="LOW-1", on_hand=2, low_stock_threshold=2)
    content = admin_browser.get("/admin/inventory/product/?stock=low").content.decode()
    assert "LOW-1" in content
    assert "FULL-1" not in content


def test_adjust_stock_through_the_service(admin_browser, admin_user, product):
    url = f"/admin/inventory/product/{product.pk}/adjust-stock/"
    assert admin_browser.get(url).status_code == 200
    response = admin_browser.post(url, {"delta": "-3", "reason": "damage", "note": "wet"})
    assert response.status_code == 302
    movement = StockMovement.objects.latest("id")
    assert (movement.reason, movement.delta_on_hand, movement.actor, movement.note) == (
        "damage",
        -3,
        admin_user,
        "wet",
    )
    assert StockLevel.objects.get(product=product).on_hand == 7


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"delta": "-11", "reason": "damage"}, "HP-100: 10 available, 11 requested."),
        ({"delta": "0", "reason": "damage"}, "Must not be zero."),
        ({"delta": "1", "reason": "sale"}, "Select a valid choice"),
    ],
)
def test_adjust_stock_errors_change_nothing(admin_browser, product, data, message):
    count = StockMovement.objects.count()
    response = admin_browser.post(f"/admin/inventory/product/{product.pk}/adjust-stock/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert StockMovement.objects.count() == count
    assert StockLevel.objects.get(product=product).on_hand == 10


def test_adjust_stock_needs_permission(product, make_user):
    client = Client()
    outsider = make_user("staff")
    outsider.groups.clear()  # staff role, but not in the Staff group: no model permission
    client.force_login(outsider)
    response = client.get(f"/admin/inventory/product/{product.pk}/adjust-stock/")
    assert response.status_code == 403


def test_add_and_change_product_in_admin(admin_browser, category):
    response = admin_browser.post(
        "/admin/inventory/product/add/",
        {
            "sku": "ADM-1",
            "name": "Admin Lamp",
            "description": "",
            "category": category.pk,
            "price_cents": "15.00",
            "metadata": '{"color": "blue"}',
            "is_active": "on",
            "low_stock_threshold": "3",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    product = Product.objects.get(sku="ADM-1")
    assert (product.slug, product.stock.low_stock_threshold) == ("admin-lamp-adm-1", 3)
    response = admin_browser.post(
        f"/admin/inventory/product/{product.pk}/change/",
        {
            "sku": "ADM-1",
            "name": "Admin Lamp XL",
            "description": "",
            "category": category.pk,
            "price_cents": "16.00",
            "metadata": '{"color": "blue"}',
            "low_stock_threshold": "5",
        },
    )
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.name, product.price_cents, product.is_active) == ("Admin Lamp XL", 1600, False)
    assert product.stock.low_stock_threshold == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sku", "hp-100"),
        ("sku", "bad sku"),
        ("price_cents", "-1"),
        ("price_cents", "1.999"),
        ("metadata", "[1]"),
    ],
)
def test_admin_product_form_rejects_bad_input(admin_browser, product, category, field, value):
    data = {
        "sku": "ADM-2",
        "name": "X",
        "description": "",
        "category": category.pk,
        "price_cents": "1",
        "metadata": "{}",
        "low_stock_threshold": "0",
        field: value,
    }
    response = admin_browser.post("/admin/inventory/product/add/", data)
    assert response.status_code == 200
    assert Product.objects.count() == 1


def test_category_admin_add_move_delete(admin_browser):
    admin_browser.post(
        "/admin/inventory/category/add/", {"name": "Garden", "slug": "garden", "description": ""}
    )
    garden = Category.objects.get(name="Garden")
    admin_browser.post(
        "/admin/inventory/category/add/",
        {"name": "Tools", "slug": "tools", "parent": garden.pk, "description": ""},
    )
    tools = Category.objects.get(name="Tools")
    assert tools.full_path == "Garden/Tools"
    # Moving Garden under its own child is refused by the form.
    response = admin_browser.post(
        f"/admin/inventory/category/{garden.pk}/change/",
        {"name": "Garden", "slug": "garden", "parent": tools.pk, "description": ""},
    )
    assert response.status_code == 200
    garden.refresh_from_db()
    assert garden.parent is None
    response = admin_browser.post(
        f"/admin/inventory/category/{tools.pk}/change/",
        {"name": "Hand Tools", "slug": "tools", "description": ""},
    )
    assert response.status_code == 302
    tools.refresh_from_db()
    assert (tools.full_path, tools.parent) == ("Hand Tools", None)
    admin_browser.post(f"/admin/inventory/category/{tools.pk}/delete/", {"post": "yes"})
    assert not Category.objects.filter(pk=tools.pk).exists()


def test_category_admin_delete_protected_shows_message(admin_browser, product, category):
    response = admin_browser.post(
        f"/admin/inventory/category/{category.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert Category.objects.filter(pk=category.pk).exists()


def test_ledger_admin_is_read_only(admin_browser, product):
    movement = StockMovement.objects.get(product=product)
    assert admin_browser.get("/admin/inventory/stockmovement/add/").status_code == 403
    response = admin_browser.post(
        f"/admin/inventory/stockmovement/{movement.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert StockMovement.objects.filter(pk=movement.pk).exists()
