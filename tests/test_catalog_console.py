"""The staff console for products where it meets orders: a product on an order stays (the rest of
the product console is inventory/tests/test_admin_console.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from inventory.models import Product
from inventory.services import category_create, product_create
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/inventory/product/"


@pytest.fixture
def console(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def product():
    return product_create(
        sku="HP-100", name="Studio Headphones", category=category_create(name="Audio"),
        price_cents=1001, on_hand=10,
    )  # fmt: skip


def text(response):
    return response.content.decode()


def test_a_product_on_an_order_cannot_be_deleted(console, customer, product):
    cart_item_add(user=customer, product_id=product.pk, quantity=1)
    order_place(user=customer, shipping_address=ADDRESS)
    assert f"{PRODUCTS}{product.pk}/delete/" not in text(
        console.get(f"{PRODUCTS}{product.pk}/change/")
    )
    assert console.post(f"{PRODUCTS}{product.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()
