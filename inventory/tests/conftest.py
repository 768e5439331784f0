"""Fixtures for the inventory tests: categories and products made through the services."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

import pytest

from inventory.models import Category, Product
from inventory.services import category_create, product_create


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
        fields.setdefault("price_cents", 1000 + number)
        return product_create(**fields)

    return make


@pytest.fixture
def product(make_product: Callable[..., Product]) -> Product:
    return make_product(sku="HP-100", name="Studio Headphones", on_hand=10)
