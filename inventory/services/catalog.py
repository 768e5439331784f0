"""The catalog: categories (a tree kept as paths) and products (SKUs, unique slugs).

Owns `category_*` (create, rename, move, delete, get-or-create by path; one advisory lock,
`CATEGORY_TREE_LOCK`, serialises structural changes of the tree), product slugs
(`product_slug`, `unique_product_slug`, `slug_derives_from`, `slug_candidates`; the CSV importer
follows the same rule in SQL) and `product_*` (create, update, delete). Every field rule and its
message comes from `validation`; a product's stock moves only through `stock` (its initial units,
its threshold).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models import ProtectedError as DjangoProtectedError
from django.db.models.functions import Concat, Lower, Substr
from django.utils.text import slugify

from common.exceptions import ProtectedError

from ..cache import catalog_changed
from ..exceptions import CatalogValidationError, InvalidCategoryParent
from ..models import PATH_SEPARATOR, Category, MovementReason, Product, StockLevel, store_currency
from .stock import stock_adjust, stock_set_threshold
from .validation import (
    validate_category_path,
    validate_currency,
    validate_description,
    validate_is_active,
    validate_low_stock_threshold,
    validate_metadata,
    validate_name,
    validate_price_cents,
    validate_sku,
    validate_stock,
)

if TYPE_CHECKING:
    from accounts.models import User

# One advisory lock serialises structural changes of the category tree (two concurrent moves
# could otherwise build a cycle).
CATEGORY_TREE_LOCK = 0x1A7E_0001


# =============================================================================
# Categories
# =============================================================================
def _lock_tree() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CATEGORY_TREE_LOCK])


def _clean_category_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise CatalogValidationError("A name is required.", attr="name")
    if PATH_SEPARATOR in name:
        raise CatalogValidationError(
            f"A category name cannot contain {PATH_SEPARATOR!r}.", attr="name"
        )
    return name


def _check_path_free(full_path: str, *, exclude_id: int | None = None) -> None:
    taken = Category.objects.filter(full_path__iexact=full_path)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise CatalogValidationError(
            f"A category named {full_path!r} already exists there.", attr="name"
        )


def _unique_category_slug(
    *, wanted: str | None, name: str, full_path: str, exclude_id: int | None
) -> str:
    others = (
        Category.objects.all() if exclude_id is None else Category.objects.exclude(pk=exclude_id)
    )
    if wanted:
        if others.filter(slug=wanted).exists():
            raise CatalogValidationError("This slug is already used.", attr="slug")
        return wanted
    for candidate in (slugify(name), slugify(full_path.replace(PATH_SEPARATOR, " "))):
        candidate = candidate[:120] or "category"
        if not others.filter(slug=candidate).exists():
            return candidate
    base = slugify(full_path.replace(PATH_SEPARATOR, " "))[:100] or "category"
    suffix = 2
    while others.filter(slug=f"{base}-{suffix}").exists():
        suffix += 1
    return f"{base}-{suffix}"


@transaction.atomic
def category_create(
    *,
    name: str,
    parent: Category | None = None,
    slug: str | None = None,
    description: str = "",
) -> Category:
    _lock_tree()
    name = _clean_category_name(name)
    if parent is not None:
        parent.refresh_from_db()
    full_path = f"{parent.full_path}{PATH_SEPARATOR}{name}" if parent else name
    _check_path_free(full_path)
    category = Category(
        name=name,
        slug=_unique_category_slug(wanted=slug, name=name, full_path=full_path, exclude_id=None),
        parent=parent,
        description=description,
        full_path=full_path,
        depth=parent.depth + 1 if parent else 0,
    )
    category.save()
    category.tree_path = f"{parent.tree_path if parent else ''}{category.pk}{PATH_SEPARATOR}"
    Category.objects.filter(pk=category.pk).update(tree_path=category.tree_path)
    catalog_changed()
    return category


class _Unset:
    pass


UNSET: Any = _Unset()


@transaction.atomic
def category_update(
    *,
    category: Category,
    name: str | None = None,
    slug: str | None = None,
    description: str | None = None,
    parent: Category | _Unset | None = UNSET,
) -> Category:
    """Rename, describe or move a category; the paths of its whole subtree follow in one UPDATE."""
    _lock_tree()
    category.refresh_from_db()
    new_name = _clean_category_name(name) if name is not None else category.name
    new_parent = category.parent if isinstance(parent, _Unset) else parent
    if new_parent is not None:
        new_parent.refresh_from_db()
        if new_parent.is_descendant_of_or_self(category):
            raise InvalidCategoryParent()
    new_full_path = f"{new_parent.full_path}{PATH_SEPARATOR}{new_name}" if new_parent else new_name
    new_tree_path = f"{new_parent.tree_path if new_parent else ''}{category.pk}{PATH_SEPARATOR}"
    if new_full_path.lower() != category.full_path.lower():
        _check_path_free(new_full_path, exclude_id=category.pk)
    if slug is not None and slug != category.slug:
        category.slug = _unique_category_slug(
            wanted=slug, name=new_name, full_path=new_full_path, exclude_id=category.pk
        )
    if description is not None:
        category.description = description
    old_tree_path, old_full_path = category.tree_path, category.full_path
    new_depth = new_parent.depth + 1 if new_parent else 0
    depth_change = new_depth - category.depth
    category.name, category.parent = new_name, new_parent
    category.save(update_fields=["name", "slug", "description", "parent"])
    if (old_tree_path, old_full_path) != (new_tree_path, new_full_path):
        Category.objects.filter(tree_path__startswith=old_tree_path).update(
            tree_path=Concat(Value(new_tree_path), Substr("tree_path", len(old_tree_path) + 1)),
            full_path=Concat(Value(new_full_path), Substr("full_path", len(old_full_path) + 1)),
            depth=F("depth") + depth_change,
        )
        category.refresh_from_db()
    catalog_changed()
    return category


@transaction.atomic
def category_delete(*, category: Category) -> None:
    """Delete an empty leaf; one with products or children is `protected` (409)."""
    _lock_tree()
    try:
        with transaction.atomic():
            category.delete()
    except DjangoProtectedError as error:
        raise ProtectedError(
            "This category still has products or subcategories; move or delete them first."
        ) from error
    catalog_changed()


@transaction.atomic
def category_get_or_create_path(*, full_path: str) -> Category:
    """The category named by a path such as "Electronics/Audio", creating missing levels."""
    parts = validate_category_path(full_path).split(PATH_SEPARATOR)
    parent: Category | None = None
    for depth in range(len(parts)):
        prefix = PATH_SEPARATOR.join(parts[: depth + 1])
        found = Category.objects.filter(full_path__iexact=prefix).first()
        parent = found or category_create(name=parts[depth], parent=parent)
    assert parent is not None
    return parent


# =============================================================================
# Products
# =============================================================================
_SLUG_DROP = re.compile(r"[^\w\s-]")
_SLUG_DASH = re.compile(r"[-\s]+")


def fast_slugify(value: str) -> str:
    """`django.utils.text.slugify`, same result, without its lazy wrapper (the import calls it
    once per row) and skipping Unicode normalisation for ASCII input."""
    if not value.isascii():
        return slugify(value)
    return _SLUG_DASH.sub("-", _SLUG_DROP.sub("", value.lower())).strip("-_")


# The constraint that keeps product slugs unique (regardless of case): `products/{slug}/`.
PRODUCT_SLUG_CONSTRAINT = "inventory_product_slug_ci_unique"
# Candidate slugs checked per query when a base slug is taken (`base-2`, `base-3`, ...).
SLUG_CANDIDATES_PER_QUERY = 20
# Concurrent writers wanting the same slug: each conflict costs one more try.
SLUG_SAVE_ATTEMPTS = 5


def product_slug(*, name: str, sku: str) -> str:
    """A product's base slug: its name, then its SKU (`studio-headphones-hp-100`).

    A slug made only of digits would read as an id in `products/{id or slug}/`, so it gets a
    `p-` prefix (the database refuses one too). Products whose names and SKUs slugify alike
    share a base: the first keeps it, the others get `-2`, `-3`... (`unique_product_slug`)."""
    slug = f"{fast_slugify(name)[:180]}-{sku.lower()}".strip("-")
    return f"p-{slug}" if slug.isdigit() else slug


def slug_derives_from(slug: str, base: str) -> bool:
    """Whether `slug` is `base` itself or `base` with a numeric suffix (`base-2`).

    A product keeps such a slug while its base stays the same, so its URL never moves because
    another product took or freed the base."""
    slug = slug.lower()
    if slug == base:
        return True
    suffix = slug.removeprefix(f"{base}-")
    return suffix != slug and suffix.isascii() and suffix.isdigit()


def slug_candidates(base: str, *, start: int, count: int) -> list[str]:
    """`base`, `base-2`, `base-3`, ...: the `count` candidates from number `start` (1 = base)."""
    return [base if n == 1 else f"{base}-{n}" for n in range(start, start + count)]


def unique_product_slug(*, base: str, product_id: int | None = None) -> str:
    """The first of `base`, `base-2`, `base-3`, ... that no other product holds."""
    others = Product.objects.annotate(slug_lower=Lower("slug"))
    if product_id is not None:
        others = others.exclude(pk=product_id)
    start = 1
    while True:
        candidates = slug_candidates(base, start=start, count=SLUG_CANDIDATES_PER_QUERY)
        taken = set(others.filter(slug_lower__in=candidates).values_list("slug_lower", flat=True))
        for candidate in candidates:
            if candidate not in taken:
                return candidate
        start += SLUG_CANDIDATES_PER_QUERY


def _product_slug_for(product: Product) -> str:
    base = product_slug(name=product.name, sku=product.sku)
    if product.pk is not None and slug_derives_from(product.slug, base):
        return product.slug
    return unique_product_slug(base=base, product_id=product.pk)


def _violated_constraint(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name) if name else None


def _check_sku_free(sku: str, *, exclude_id: int | None = None) -> None:
    taken = Product.objects.filter(sku__iexact=sku)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise CatalogValidationError(f"A product with SKU {sku!r} already exists.", attr="sku")


def _save_product(product: Product, **kwargs: Any) -> None:
    """Save with its slug: kept while it derives from the name and SKU, else the first free one."""
    for attempt in range(1, SLUG_SAVE_ATTEMPTS + 1):
        product.slug = _product_slug_for(product)
        try:
            with transaction.atomic():
                product.save(**kwargs)
            return
        except IntegrityError as error:
            violated = _violated_constraint(error)
            if violated == PRODUCT_SLUG_CONSTRAINT and attempt < SLUG_SAVE_ATTEMPTS:
                continue  # a concurrent writer took the slug after our check: pick again
            if violated == PRODUCT_SLUG_CONSTRAINT:
                raise
            # A concurrent writer took the SKU after our check.
            raise CatalogValidationError(
                f"A product with SKU {product.sku!r} already exists.", attr="sku"
            ) from error


@transaction.atomic
def product_create(
    *,
    sku: str,
    name: str,
    category: Category,
    price_cents: int,
    currency: str | None = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    is_active: bool = True,
    low_stock_threshold: int = 0,
    on_hand: int = 0,
    actor: User | None = None,
) -> Product:
    """A product with its stock level; initial units on hand are booked as a `receipt`."""
    sku = validate_sku(sku)
    low_stock_threshold = validate_low_stock_threshold(low_stock_threshold)
    on_hand = validate_stock(on_hand)
    product = Product(
        sku=sku,
        name=validate_name(name),
        category=category,
        price_cents=validate_price_cents(price_cents),
        currency=validate_currency(currency or store_currency()),
        description=validate_description(description),
        metadata=validate_metadata(metadata if metadata is not None else {}),
        is_active=validate_is_active(is_active),
    )
    _check_sku_free(sku)
    _save_product(product)
    StockLevel.objects.create(
        product=product,
        low_stock_threshold=low_stock_threshold,
        # A new product starts with nothing on hand, which is "low" but not a crossing to report.
        low_stock_alerted=True,
    )
    if on_hand:
        stock_adjust(
            product_id=product.pk,
            delta=on_hand,
            reason=MovementReason.RECEIPT,
            actor=actor,
            note="Initial stock.",
        )
    catalog_changed()
    return product


class ProductChanges(TypedDict, total=False):
    sku: str
    name: str
    category: Category
    price_cents: int
    currency: str
    description: str
    metadata: dict[str, Any]
    is_active: bool
    low_stock_threshold: int


@transaction.atomic
def product_update(*, product: Product, changes: ProductChanges) -> Product:
    """Change catalog fields and the low-stock threshold; stock moves only by stock services."""
    if "low_stock_threshold" in changes:
        validate_low_stock_threshold(changes["low_stock_threshold"])  # before anything is saved
    if "sku" in changes:
        sku = validate_sku(changes["sku"])
        if sku.lower() != product.sku.lower():
            _check_sku_free(sku, exclude_id=product.pk)
        product.sku = sku
    if "name" in changes:
        product.name = validate_name(changes["name"])
    if "price_cents" in changes:
        product.price_cents = validate_price_cents(changes["price_cents"])
    if "currency" in changes:
        product.currency = validate_currency(changes["currency"])
    if "description" in changes:
        product.description = validate_description(changes["description"])
    if "metadata" in changes:
        product.metadata = validate_metadata(changes["metadata"])
    if "is_active" in changes:
        product.is_active = validate_is_active(changes["is_active"])
    if "category" in changes:
        product.category = changes["category"]
    _save_product(product)  # and its slug, when the name or SKU changed it
    if "low_stock_threshold" in changes:
        stock_set_threshold(
            product_id=product.pk, low_stock_threshold=changes["low_stock_threshold"]
        )
    catalog_changed()
    return product


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product that never had stock or orders; one with any ledger row or on any order is
    `protected` (deactivate it instead): the ledger is never deleted (both foreign keys PROTECT)."""
    try:
        with transaction.atomic():
            product.delete()
    except DjangoProtectedError as error:
        raise ProtectedError(
            "This product has stock history or orders and cannot be deleted; deactivate it instead."
        ) from error
    catalog_changed()
