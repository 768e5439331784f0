"""Fixtures for the orders tests: products made through the inventory services, filled carts."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

import pytest

from accounts.models import User
from inventory.models import Category, Product
from inventory.services import category_create, product_create
from orders.models import Order
from orders.services import cart_item_add, order_place

ADDRESS = {
    "name": "Ann Smith",
    "line1": "1 Main Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


@pytest.fixture
def category(db: None) -> Category:
    return category_create(name="Audio")


@pytest.fixture
def make_product(db: None, category: Category) -> Callable[..., Product]:
    numbers = count(1)

    def make(**fields: Any) -> Product:
        number = next(numbers)
        fields.setdefault("sku", f"SKU-{number:04d}")
        fields.setdefault("name", f"Product {number}")
        fields.setdefault("category", category)
        fields.setdefault("price_cents", 1000 * number)
        fields.setdefault("on_hand", 10)
        return product_create(**fields)

    return make


@pytest.fixture
def product(make_product: Callable[..., Product]) -> Product:
    return make_product(sku="HP-100", name="Studio Headphones", price_cents=4999, on_hand=10)


@pytest.fixture
def place_order(make_product: Callable[..., Product]) -> Callable[..., Order]:
    """Fill the user's cart (default: 2 of a new product) and check it out."""

    def place(user: User, lines: list[tuple[Product, int]] | None = None) -> Order:
        for line_product, quantity in lines or [(make_product(), 2)]:
            cart_item_add(user=user, product_id=line_product.pk, quantity=quantity)
        return order_place(user=user, shipping_address=ADDRESS)

    return place


@pytest.fixture
def order(
    customer: User, place_order: Callable[..., Order], make_product: Callable[..., Product]
) -> Order:
    """A pending order for 2 units of a product with 10 on hand: 2 x 10.00 = 20.00."""
    return place_order(customer, [(make_product(price_cents=1000, on_hand=10), 2)])
