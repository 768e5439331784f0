"""Reads of the catalog and stock that several callers share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.db import connection
from django.db.models import F, OrderBy, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject, Lower

from .models import Category, Product, ProductImage, StockLevel, StockMovement

SEARCH_CONFIG = "english"
PRODUCT_ORDERINGS = ("price_cents", "-price_cents", "name", "-name", "created_at", "-created_at")

# The columns of a product as the API shows it, read with `.values()` (no model instances).
PRODUCT_FIELDS = (
    "id",
    "sku",
    "name",
    "slug",
    "description",
    "category_id",
    "price_cents",
    "currency",
    "metadata",
    "is_active",
    "created_at",
    "updated_at",
)
PRODUCT_EXPRESSIONS: dict[str, Any] = {
    "category_path": F("category__full_path"),
    "available": F("stock__on_hand") - F("stock__reserved"),
}
STAFF_PRODUCT_EXPRESSIONS: dict[str, Any] = {
    **PRODUCT_EXPRESSIONS,
    "low_stock_threshold": F("stock__low_stock_threshold"),
}


def product_get_for_sale(*, product_id: int) -> Product:
    """An active product with its stock level and category; `Product.DoesNotExist` otherwise."""
    return Product.objects.select_related("stock", "category").get(pk=product_id, is_active=True)


def category_descendant_ids(*, category: Category) -> QuerySet[Category, int]:
    """Ids of the category and all its descendants (one indexed prefix query when evaluated)."""
    return Category.objects.filter(tree_path__startswith=category.tree_path).values_list(
        "id", flat=True
    )


def _category_lookup(value: str) -> Q:
    return Q(pk=int(value)) if value.isdigit() else Q(slug=value)


def category_exists(*, value: str) -> bool:
    """Whether a category id or slug names a category."""
    return Category.objects.filter(_category_lookup(value)).exists()


_trigram_available: dict[str, bool] = {}


def trigram_available() -> bool:
    """Whether pg_trgm is installed in this database (the embedded pgserver lacks it)."""
    alias = connection.settings_dict["NAME"]
    if alias not in _trigram_available:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            _trigram_available[alias] = cursor.fetchone() is not None
    return _trigram_available[alias]


@dataclass(frozen=True)
class ProductFilters:
    category: str = ""  # an id or a slug; with all its descendants
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    search: str = ""
    attrs: Sequence[tuple[str, str]] = field(default_factory=tuple)
    sku: str = ""
    ordering: str = ""
    is_active: bool | None = None


def _attr_values(value: str) -> list[Any]:
    """`size:42` matches metadata {"size": "42"} and {"size": 42}; likewise true/false/null."""
    values: list[Any] = [value]
    try:
        parsed = json.loads(value)
    except ValueError:
        return values
    if isinstance(parsed, int | float | bool) or parsed is None:
        values.append(parsed)
    return values


def product_list(*, staff: bool, filters: ProductFilters) -> QuerySet[Product]:
    """Visible products, filtered; best search match first unless an ordering is asked for.

    Conditions are collected and applied in one `filter()` (each queryset clone costs time on
    the hot path of the catalog list).
    """
    conditions: list[Q] = []
    aliases: dict[str, Any] = {}
    if not staff:
        conditions.append(Q(is_active=True))
    elif filters.is_active is not None:
        conditions.append(Q(is_active=filters.is_active))
    if filters.category:
        # The subtree as an id list from the small category table (no separate lookup query),
        # so the count is an index-only scan of (category, is_active).
        tree_path = Category.objects.filter(_category_lookup(filters.category)).values("tree_path")[
            :1
        ]
        subtree = Category.objects.filter(tree_path__startswith=Subquery(tree_path))
        conditions.append(Q(category_id__in=subtree.values("id")))
    if filters.min_price is not None:
        conditions.append(Q(price_cents__gte=filters.min_price))
    if filters.max_price is not None:
        conditions.append(Q(price_cents__lte=filters.max_price))
    if filters.in_stock is True:
        conditions.append(Q(stock__on_hand__gt=F("stock__reserved")))
    elif filters.in_stock is False:
        conditions.append(Q(stock__on_hand__lte=F("stock__reserved")))
    for key, value in filters.attrs:
        match = Q()
        for candidate in _attr_values(value):
            match |= Q(metadata__contains={key: candidate})
        conditions.append(match)
    if filters.sku:
        aliases["sku_lower"] = Lower("sku")
        conditions.append(Q(sku_lower=filters.sku.lower()))
    order: list[Any] = []
    if filters.search:
        query = SearchQuery(filters.search, config=SEARCH_CONFIG, search_type="websearch")
        matches = Q(search_vector=query)
        aliases["rank"] = SearchRank(F("search_vector"), query)
        order = [OrderBy(F("rank"), descending=True)]
        if trigram_available():
            # A typo ("headphnes") still finds the product by trigram similarity of its name.
            aliases["similarity"] = TrigramWordSimilarity(filters.search, "name")
            matches |= Q(name__trigram_word_similar=filters.search)
            order.append(OrderBy(F("similarity"), descending=True))
        conditions.append(matches)
    if filters.ordering:
        order = [filters.ordering]
    products = Product.objects.alias(**aliases) if aliases else Product.objects.all()
    return products.filter(*conditions).order_by(*order, "id")


def _product_images() -> QuerySet[ProductImage]:
    return ProductImage.objects.filter(product=OuterRef("pk")).order_by("position", "id")


def product_rows(
    products: QuerySet[Product], *, staff: bool, images: bool = False
) -> QuerySet[Product, dict[str, Any]]:
    """The API's product columns as dicts: one query, no model instances.

    Every row carries `image_name`, the stored name of its primary image's thumbnail (the
    original until the thumbnail is made), or "": `Product.primary_image`, a plain column. With
    `images`, also `image_list`: every image's columns, ordered, as a list of dicts, from an
    ARRAY subquery in the same statement too (the detail stays one query).
    """
    expressions = {
        **(STAFF_PRODUCT_EXPRESSIONS if staff else PRODUCT_EXPRESSIONS),
        # Kept on the product row by the image services: a column, not a subquery per row.
        "image_name": F("primary_image"),
    }
    if images:
        expressions["image_list"] = ArraySubquery(
            _product_images().values(
                json=JSONObject(
                    id="id",
                    file="file",
                    thumbnail="thumbnail",
                    alt="alt",
                    position="position",
                    width="width",
                    height="height",
                )
            )
        )
    rows: QuerySet[Product, dict[str, Any]] = products.values(*PRODUCT_FIELDS, **expressions)
    return rows


def stock_movement_list(
    *,
    product_id: int | None = None,
    reason: str = "",
    created_after: Any = None,
    created_before: Any = None,
) -> QuerySet[StockMovement]:
    movements = StockMovement.objects.select_related("product")
    if product_id is not None:
        movements = movements.filter(product_id=product_id)
    if reason:
        movements = movements.filter(reason=reason)
    if created_after is not None:
        movements = movements.filter(created_at__gte=created_after)
    if created_before is not None:
        movements = movements.filter(created_at__lt=created_before)
    return movements


def stock_low_list() -> QuerySet[StockLevel]:
    """Stock levels whose available units are at or below their threshold, lowest first."""
    return (
        StockLevel.objects.select_related("product", "product__category")
        .annotate(available_units=F("on_hand") - F("reserved"))
        .filter(available_units__lte=F("low_stock_threshold"))
        .order_by("available_units", "product_id")
    )


@dataclass(frozen=True)
class StockDrift:
    product_id: int
    sku: str
    on_hand: int | None
    reserved: int | None
    ledger_on_hand: int
    ledger_reserved: int
    last_on_hand_after: int | None
    last_reserved_after: int | None

    def __str__(self) -> str:
        if self.on_hand is None:
            return f"{self.sku} (product {self.product_id}): no stock level"
        return (
            f"{self.sku} (product {self.product_id}): level {self.on_hand} on hand / "
            f"{self.reserved} reserved, ledger sums to {self.ledger_on_hand} / "
            f"{self.ledger_reserved}, last movement left {self.last_on_hand_after} / "
            f"{self.last_reserved_after}"
        )


STOCK_AUDIT_SQL = """
WITH sums AS (
    SELECT product_id, sum(delta_on_hand) AS on_hand, sum(delta_reserved) AS reserved
    FROM inventory_stockmovement GROUP BY product_id
), latest AS (
    SELECT DISTINCT ON (product_id) product_id, on_hand_after, reserved_after
    FROM inventory_stockmovement ORDER BY product_id, id DESC
)
SELECT p.id, p.sku, s.on_hand, s.reserved, coalesce(m.on_hand, 0), coalesce(m.reserved, 0),
       l.on_hand_after, l.reserved_after
FROM inventory_product p
LEFT JOIN inventory_stocklevel s ON s.product_id = p.id
LEFT JOIN sums m ON m.product_id = p.id
LEFT JOIN latest l ON l.product_id = p.id
WHERE s.product_id IS NULL
   OR s.on_hand <> coalesce(m.on_hand, 0)
   OR s.reserved <> coalesce(m.reserved, 0)
   OR (l.product_id IS NOT NULL
       AND (l.on_hand_after <> s.on_hand OR l.reserved_after <> s.reserved))
ORDER BY p.id
"""


def stock_audit() -> list[StockDrift]:
    """Products whose stock level disagrees with their ledger (empty when all is well)."""
    with connection.cursor() as cursor:
        cursor.execute(STOCK_AUDIT_SQL)
        return [StockDrift(*row) for row in cursor.fetchall()]
