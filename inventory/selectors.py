"""Reads of the catalog and stock that several callers share."""

from __future__ import annotations

from django.db.models import F, QuerySet

from .models import Category, Product, StockLevel


def product_get_for_sale(*, product_id: int) -> Product:
    """An active product with its stock level and category; `Product.DoesNotExist` otherwise."""
    return Product.objects.select_related("stock", "category").get(pk=product_id, is_active=True)


def category_descendant_ids(*, category: Category) -> QuerySet[Category, int]:
    """Ids of the category and all its descendants (one indexed prefix query when evaluated)."""
    return Category.objects.filter(tree_path__startswith=category.tree_path).values_list(
        "id", flat=True
    )


def stock_low_list() -> QuerySet[StockLevel]:
    """Stock levels whose available units are at or below their threshold, lowest first."""
    return (
        StockLevel.objects.select_related("product", "product__category")
        .annotate(available_units=F("on_hand") - F("reserved"))
        .filter(available_units__lte=F("low_stock_threshold"))
        .order_by("available_units", "product_id")
    )
