"""Reads of the catalog and stock that several callers share.

Product reads go through the ORM (`product_list`, `product_page`, `product_rows`); the storefront's
hottest ones (a page of the catalog or a category, a plain search, one product) also have their
statements written out once (`product_page_rows`, `product_detail_row`), held to the ORM's rows by
tests. Stock reads (movements, low stock, the ledger audit) come last.

Why it is about 500 lines: every product read is built from the same filters by one query builder
(`_product_query`), and each written-out statement sits beside the ORM read it must match row for
row; apart, a change to one would be easy to miss in the other."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramWordSimilarity
from django.db import connection
from django.db.models import F, OrderBy, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject, Lower

from .models import Category, Product, ProductImage, StockLevel, StockMovement

SEARCH_CONFIG = "english"
# A search whose full text finds fewer products than this also matches names by trigram
# similarity (typos), at most FUZZY_LIMIT of them (`product_list`, `product_count`).
FUZZY_BELOW = 5
FUZZY_LIMIT = 100
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


def is_id(value: str) -> bool:
    """Whether a path or query value names a row by id: ASCII digits only ("¹" passes
    `str.isdigit()` but not `int()`); anything else is a slug."""
    return value.isascii() and value.isdigit()


def _category_lookup(value: str) -> Q:
    return Q(pk=int(value)) if is_id(value) else Q(slug=value)


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


@dataclass(frozen=True)
class _ProductQuery:
    conditions: list[Q]
    aliases: dict[str, Any]
    order: list[Any]

    def products(self) -> QuerySet[Product]:
        products = Product.objects.alias(**self.aliases) if self.aliases else Product.objects.all()
        return products.filter(*self.conditions).order_by(*self.order, "id")


def _product_query(*, staff: bool, filters: ProductFilters, fuzzy: bool) -> _ProductQuery:
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
        aliases["rank"] = SearchRank(F("search_vector"), query)
        order = [OrderBy(F("rank"), descending=True)]
        if fuzzy and trigram_available():
            # Full text found (almost) nothing: a typo ("headphnes") still finds the product by
            # the trigram similarity of its name. Each set comes from its own index (the search
            # vector's GIN; the name's trigram GIN for `%>`: word similarity above
            # pg_trgm.word_similarity_threshold), the fuzzy one bounded to the FUZZY_LIMIT most
            # similar names; their union is then ranked as one.
            similarity = TrigramWordSimilarity(filters.search, "name")
            found = Product.objects.alias(**aliases).filter(*conditions, search_vector=query)
            similar = (
                Product.objects.alias(**aliases, similarity=similarity)
                .filter(*conditions, name__trigram_word_similar=filters.search)
                .order_by(OrderBy(F("similarity"), descending=True), "id")
                .values("pk")[:FUZZY_LIMIT]
            )
            conditions = [Q(pk__in=found.order_by().values("pk").union(similar))]
            aliases["similarity"] = similarity
            order.append(OrderBy(F("similarity"), descending=True))
        else:
            conditions.append(Q(search_vector=query))  # the GIN index
    if filters.ordering:
        order = [filters.ordering]
    return _ProductQuery(conditions, aliases, order)


def product_list(*, staff: bool, filters: ProductFilters, fuzzy: bool = False) -> QuerySet[Product]:
    """Visible products, filtered; best search match first unless an ordering is asked for.

    A search is full text (web search syntax, through the GIN index on `search_vector`), ranked
    by `ts_rank`, ties by id. With `fuzzy` (what `product_count` decides: full text found fewer
    than FUZZY_BELOW), names similar to the search by trigrams are added, at most FUZZY_LIMIT of
    them, and ties of rank go by that similarity first.

    Conditions are collected and applied in one `filter()` (each queryset clone costs time on
    the hot path of the catalog list).
    """
    return _product_query(staff=staff, filters=filters, fuzzy=fuzzy).products()


def product_page(
    *, staff: bool, filters: ProductFilters, fuzzy: bool = False, offset: int, limit: int
) -> QuerySet[Product]:
    """`limit` products of `product_list` from `offset`, in its order.

    A search sorts every match (by rank, or by the ordering asked for): the page's ids are
    picked on the product table alone (a sort of ids and sort keys, not of whole joined rows),
    and only those products are then read with their columns (`product_rows`). Anything else is
    the list sliced: an index gives its order.
    """
    spec = _product_query(staff=staff, filters=filters, fuzzy=fuzzy)
    window = spec.products()[offset : offset + limit]
    if not filters.search:
        return window
    sort_keys = {
        name: spec.aliases[name] for name in ("rank", "similarity") if name in spec.aliases
    }
    return (
        Product.objects.alias(**sort_keys)
        .filter(pk__in=window.values("pk"))
        .order_by(*spec.order, "id")
    )


@dataclass(frozen=True)
class ProductCount:
    """How many products a filter finds, and whether its search took the fuzzy fallback (the
    same filter then lists with `fuzzy=True`, on every page)."""

    count: int
    fuzzy: bool = False


def product_count(*, staff: bool, filters: ProductFilters) -> ProductCount:
    """Count what `product_list` finds: one query on the filtered product table (none of the
    rows' joins). A search whose full text finds fewer than FUZZY_BELOW products falls back to
    trigram matching of names (typos), counted by a second query."""
    count = product_list(staff=staff, filters=filters).order_by().count()
    if filters.search and count < FUZZY_BELOW and trigram_available():
        fuzzy = product_list(staff=staff, filters=filters, fuzzy=True)
        return ProductCount(fuzzy.order_by().count(), fuzzy=True)
    return ProductCount(count)


# The storefront's most frequent reads, a page of the whole catalog or of a category (with its
# descendants), and a plain search (within a category or not), in SQL written once: the ORM builds
# and compiles the same statements in a few ms of CPU per request, more than PostgreSQL takes to
# answer most of them. Same joins, columns, conditions and order as
# `product_rows(product_page(...))`, which serves every other filter
# (inventory/tests/test_catalog_read_path.py holds the two to the same rows).
_BROWSE_COLUMNS = """
SELECT p.id, p.sku, p.name, p.slug, p.description, p.category_id, p.price_cents, p.currency,
       p.metadata, p.is_active, p.created_at, p.updated_at, c.full_path,
       s.on_hand - s.reserved, p.primary_image"""
_BROWSE_STAFF_COLUMNS = ", s.low_stock_threshold"
_BROWSE_FROM = """
FROM inventory_product p
INNER JOIN inventory_category c ON c.id = p.category_id
LEFT OUTER JOIN inventory_stocklevel s ON s.product_id = p.id"""
_BROWSE_SUBTREE = """{table}.category_id IN (
    SELECT id FROM inventory_category WHERE tree_path LIKE (
        SELECT tree_path FROM inventory_category WHERE {column} = %s LIMIT 1) || '%%')"""
_TSQUERY = f"websearch_to_tsquery('{SEARCH_CONFIG}'::regconfig, %s)"
_BROWSE_KEYS = (*PRODUCT_FIELDS, "category_path", "available", "image_name")
_BROWSE_STAFF_KEYS = (*_BROWSE_KEYS, "low_stock_threshold")


def _browse_sql(*, staff: bool, category_column: str, search: bool) -> str:
    """A page's statement: `category_column` is "" (no category), "id" or "slug". Parameters:
    the category (if any), then for a search the search text twice, then limit and offset, then
    for a search the search text once more. A search's page ids are sorted by rank on the product
    table alone, then only those products are joined (as `product_page` does)."""
    table = "m" if search else "p"
    conditions = [] if staff else [f"{table}.is_active"]
    if category_column:
        conditions.append(_BROWSE_SUBTREE.format(table=table, column=category_column))
    columns = _BROWSE_COLUMNS + (_BROWSE_STAFF_COLUMNS if staff else "")
    if not search:
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"{columns}{_BROWSE_FROM}{where} ORDER BY p.id LIMIT %s OFFSET %s"
    conditions.append(f"m.search_vector @@ {_TSQUERY}")
    rank = f"ts_rank({{table}}.search_vector, {_TSQUERY}) DESC, {{table}}.id"
    return (
        f"{columns}{_BROWSE_FROM}\nWHERE p.id IN (\n"  # noqa: S608 (constant fragments; values are parameters)
        f"    SELECT m.id FROM inventory_product m WHERE {' AND '.join(conditions)}\n"
        f"    ORDER BY {rank.format(table='m')} LIMIT %s OFFSET %s)\n"
        f"ORDER BY {rank.format(table='p')}"
    )


_BROWSE_SQL = {
    (staff, column, search): _browse_sql(staff=staff, category_column=column, search=search)
    for staff in (False, True)
    for column in ("", "id", "slug")
    for search in (False, True)
}


def _written(filters: ProductFilters, *, fuzzy: bool) -> bool:
    """Whether a page of this filter has its statement written: a category or none, a full-text
    search or none, nothing else (no other filter, no ordering, no fuzzy fallback)."""
    plain = replace(filters, category="", search="", attrs=tuple(filters.attrs))
    return plain == ProductFilters() and not fuzzy


def product_page_rows(
    *, staff: bool, filters: ProductFilters, fuzzy: bool = False, offset: int, limit: int
) -> list[dict[str, Any]]:
    """One page of `product_list` as the API's product rows (`product_rows`): one query."""
    if not _written(filters, fuzzy=fuzzy):
        page = product_page(staff=staff, filters=filters, fuzzy=fuzzy, offset=offset, limit=limit)
        return list(product_rows(page, staff=staff))
    params: list[Any] = []
    column = ""
    if filters.category:
        column = "id" if is_id(filters.category) else "slug"
        params.append(int(filters.category) if column == "id" else filters.category)
    search = bool(filters.search)
    if search:
        params = [*params, filters.search, filters.search, limit, offset, filters.search]
    else:
        params = [*params, limit, offset]
    with connection.cursor() as cursor:
        cursor.execute(_BROWSE_SQL[staff, column, search], params)
        found = cursor.fetchall()
    keys = _BROWSE_STAFF_KEYS if staff else _BROWSE_KEYS
    return [_as_row(keys, row) for row in found]


# One product with its images, likewise (`product_rows(..., images=True)` in SQL written once).
_DETAIL_IMAGES = """, ARRAY(
    SELECT JSONB_BUILD_OBJECT('id', i.id, 'file', i.file, 'thumbnail', i.thumbnail, 'alt', i.alt,
                              'position', i.position, 'width', i.width, 'height', i.height)
    FROM inventory_productimage i WHERE i.product_id = p.id ORDER BY i.position, i.id)"""


def _detail_sql(*, staff: bool, by_slug: bool) -> str:
    columns = _BROWSE_COLUMNS + (_BROWSE_STAFF_COLUMNS if staff else "") + _DETAIL_IMAGES
    # By slug regardless of case: the unique index on lower(slug).
    conditions = ["LOWER(p.slug) = %s" if by_slug else "p.id = %s"]
    if not staff:
        conditions.append("p.is_active")
    return f"{columns}{_BROWSE_FROM} WHERE {' AND '.join(conditions)} LIMIT 1"


_DETAIL_SQL = {
    (staff, by_slug): _detail_sql(staff=staff, by_slug=by_slug)
    for staff in (False, True)
    for by_slug in (False, True)
}


def product_detail_row(*, staff: bool, product: int | str) -> dict[str, Any] | None:
    """A visible product by id (an int, or a string of ASCII digits) or by slug, regardless of
    case (a slug is never all digits: see `services.product_slug`), as
    `product_rows(..., images=True)` gives it; None when there is none. One query."""
    by_slug = not (isinstance(product, int) or is_id(product))
    value = str(product).lower() if by_slug else int(product)
    with connection.cursor() as cursor:
        cursor.execute(_DETAIL_SQL[staff, by_slug], [value])
        found = cursor.fetchone()
    if found is None:
        return None
    keys = _BROWSE_STAFF_KEYS if staff else _BROWSE_KEYS
    row = _as_row(keys, found[:-1])
    row["image_list"] = [_from_json(image) for image in found[-1]]
    return row


def _from_json(value: Any) -> Any:
    """A jsonb value as the ORM's JSONField gives it (Django's connection reads jsonb as text)."""
    return _JSON_FIELD.from_db_value(value, None, connection)


_JSON_FIELD: Any = Product._meta.get_field("metadata")


def _as_row(keys: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    row = dict(zip(keys, values, strict=True))
    row["metadata"] = _from_json(row["metadata"])
    return row


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
