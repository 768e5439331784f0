"""Fixtures for the inventory tests: categories and products made through the services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import pytest

from inventory.models import Category, Product
from inventory.selectors import stock_audit
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


@pytest.fixture(autouse=True)
def _ledger_adds_up(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every inventory test that used the database, the ledger sums to the levels."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if not (marker or transactional or "db" in request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    yield
    if "allow_stock_drift" not in request.fixturenames:
        assert stock_audit() == []


@pytest.fixture
def allow_stock_drift() -> None:
    """For tests that break the ledger on purpose (audit_stock's own tests)."""
