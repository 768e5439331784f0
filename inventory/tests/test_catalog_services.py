from __future__ import annotations

import pytest
from django.db import connection

from common.exceptions import ProtectedError
from inventory.exceptions import CatalogValidationError, InvalidCategoryParent
from inventory.models import Category, Product, StockLevel, StockMovement
from inventory.selectors import category_descendant_ids, product_get_for_sale
from inventory.services import (
    category_create,
    category_delete,
    category_get_or_create_path,
    category_update,
    product_create,
    product_delete,
    product_update,
)


def test_category_paths_and_depth(db):
    electronics = category_create(name="Electronics")
    audio = category_create(name="Audio", parent=electronics)
    headphones = category_create(name="Headphones", parent=audio, description="Over-ear")
    assert (headphones.full_path, headphones.depth, headphones.slug) == (
        "Electronics/Audio/Headphones",
        2,
        "headphones",
    )
    assert headphones.tree_path == f"{electronics.pk}/{audio.pk}/{headphones.pk}/"
    assert sorted(category_descendant_ids(category=audio)) == [audio.pk, headphones.pk]


def test_category_slug_collision_uses_the_path(db):
    a = category_create(name="Men")
    b = category_create(name="Women")
    shoes_a = category_create(name="Shoes", parent=a)
    shoes_b = category_create(name="Shoes", parent=b)
    assert (shoes_a.slug, shoes_b.slug) == ("shoes", "women-shoes")


def test_category_sibling_names_are_unique_ignoring_case(db):
    root = category_create(name="Home")
    category_create(name="Kitchen", parent=root)
    with pytest.raises(CatalogValidationError, match="already exists"):
        category_create(name="kitchen", parent=root)
    assert Category.objects.count() == 2


@pytest.mark.parametrize("name", ["", "  ", "A/B"])
def test_category_name_rules(db, name):
    with pytest.raises(CatalogValidationError):
        category_create(name=name)
    assert not Category.objects.exists()


def test_category_move_rewrites_subtree_paths(db):
    a = category_create(name="A")
    b = category_create(name="B", parent=a)
    c = category_create(name="C", parent=b)
    z = category_create(name="Z")
    category_update(category=b, parent=z, name="Bee")
    c.refresh_from_db()
    assert (c.full_path, c.depth, c.tree_path) == ("Z/Bee/C", 2, f"{z.pk}/{b.pk}/{c.pk}/")
    category_update(category=b, parent=None)
    c.refresh_from_db()
    assert (c.full_path, c.depth) == ("Bee/C", 1)


def test_category_move_under_own_subtree_is_refused(db):
    a = category_create(name="A")
    b = category_create(name="B", parent=a)
    for target in (a, b):
        with pytest.raises(InvalidCategoryParent):
            category_update(category=a, parent=target)
    a.refresh_from_db()
    assert (a.parent, a.full_path) == (None, "A")


def test_category_delete_protected_with_children_or_products(make_product, category):
    child = category_create(name="Child", parent=category)
    with pytest.raises(ProtectedError):
        category_delete(category=category)
    category_delete(category=child)
    make_product(category=category)
    with pytest.raises(ProtectedError):
        category_delete(category=category)
    assert Category.objects.filter(pk=category.pk).exists()


def test_category_get_or_create_path(db):
    leaf = category_get_or_create_path(full_path="Home/Kitchen/Knives")
    again = category_get_or_create_path(full_path="home/kitchen/knives")
    assert leaf == again
    assert list(Category.objects.values_list("full_path", flat=True)) == [
        "Home",
        "Home/Kitchen",
        "Home/Kitchen/Knives",
    ]
    with pytest.raises(CatalogValidationError):
        category_get_or_create_path(full_path="Home//Knives")


def test_product_create_fields(category):
    product = product_create(
        sku="Tee-01",
        name="Organic Cotton T-Shirt",
        category=category,
        price_cents=2500,
        metadata={"color": "red", "size": "M"},
        low_stock_threshold=3,
    )
    assert (product.slug, product.currency, product.is_active) == (
        "organic-cotton-t-shirt-tee-01",
        "USD",
        True,
    )
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved, level.low_stock_threshold) == (0, 0, 3)
    assert not StockMovement.objects.exists()


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"sku": "hp-100"}, "sku"),
        ({"sku": "bad sku"}, "sku"),
        ({"price_cents": -1}, "price_cents"),
        ({"currency": "EUR"}, "currency"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"metadata": {"blob": "x" * 17_000}}, "metadata"),
        ({"low_stock_threshold": -1}, "low_stock_threshold"),
        ({"on_hand": -1}, "on_hand"),
    ],
)
def test_product_create_rejects_bad_input(product, category, fields, attr):
    data = {"sku": "NEW-1", "name": "New", "category": category, "price_cents": 100, **fields}
    with pytest.raises(CatalogValidationError) as caught:
        product_create(**data)
    assert caught.value.items[0].attr == attr
    assert list(Product.objects.values_list("sku", flat=True)) == ["HP-100"]


def test_product_update_changes_fields_and_threshold(product, category):
    other = category_create(name="Video")
    product_update(
        product=product,
        changes={
            "name": "Studio Monitor Headphones",
            "sku": "HP-101",
            "category": other,
            "price_cents": 9900,
            "low_stock_threshold": 4,
            "is_active": False,
            "metadata": {"color": "black"},
            "currency": "USD",
        },
    )
    product.refresh_from_db()
    assert (product.name, product.sku, product.slug, product.category, product.price_cents) == (
        "Studio Monitor Headphones",
        "HP-101",
        "studio-monitor-headphones-hp-101",
        other,
        9900,
    )
    assert StockLevel.objects.get(product=product).low_stock_threshold == 4


def test_product_update_refuses_taken_sku(product, make_product):
    other = make_product(sku="OTHER-1")
    with pytest.raises(CatalogValidationError):
        product_update(product=other, changes={"sku": "hp-100"})
    with pytest.raises(CatalogValidationError):
        product_update(product=other, changes={"price_cents": -5})
    other.refresh_from_db()
    assert (other.sku, other.price_cents) == ("OTHER-1", other.price_cents)


def test_search_vector_is_generated(product):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT search_vector @@ websearch_to_tsquery('english', 'headphone') "
            "FROM inventory_product WHERE id = %s",
            [product.pk],
        )
        assert cursor.fetchone() == (True,)


def test_product_delete_only_without_history(make_product):
    never_stocked = make_product(on_hand=0)
    product_delete(product=never_stocked)
    assert not Product.objects.filter(pk=never_stocked.pk).exists()
    assert not StockLevel.objects.filter(product_id=never_stocked.pk).exists()


def test_a_product_with_a_ledger_is_protected_and_its_ledger_kept(product):
    from common.exceptions import ProtectedError
    from inventory.models import StockMovement

    with pytest.raises(ProtectedError):
        product_delete(product=product)
    assert StockMovement.objects.filter(product=product).exists()
    assert Product.objects.filter(pk=product.pk).exists()


def test_product_get_for_sale(product, make_product):
    inactive = make_product(is_active=False)
    found = product_get_for_sale(product_id=product.pk)
    assert (found, found.stock.available) == (product, 10)
    with pytest.raises(Product.DoesNotExist):
        product_get_for_sale(product_id=inactive.pk)
