"""How orders and carts hold on to products that staff try to delete."""

from __future__ import annotations

import pytest

from inventory.models import Product
from orders.models import CartItem, OrderItem
from orders.services import cart_item_add

pytestmark = pytest.mark.django_db


def test_a_product_on_an_order_cannot_be_deleted(staff_client, customer, product, place_order):
    place_order(customer, [(product, 1)])
    response = staff_client.delete(f"/api/v1/products/{product.pk}/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "protected"
    assert Product.objects.filter(pk=product.pk).exists()
    assert OrderItem.objects.filter(product=product).count() == 1


def test_deleting_a_product_only_in_carts_removes_those_lines(staff_client, customer, make_product):
    product = make_product(on_hand=0)
    kept = make_product()
    cart_item_add(user=customer, product_id=kept.pk, quantity=1)
    CartItem.objects.create(cart=customer.cart, product=product, quantity=1)
    assert staff_client.delete(f"/api/v1/products/{product.pk}/").status_code == 204
    assert list(CartItem.objects.values_list("product_id", flat=True)) == [kept.pk]
