"""Every state change of the catalog and of stock.

Stock levels change only here, and only by single conditional UPDATEs (`... WHERE on_hand -
reserved >= n`), one per product in product-id order (reserve, release, sell and restock lock a
row with that very UPDATE; staff changes lock it first), and ledger rows (`StockMovement`) in the
same transaction. The database's check constraints are the last guard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models import ProtectedError as DjangoProtectedError
from django.db.models.functions import Concat, Lower, Substr
from django.utils import timezone
from django.utils.text import slugify

from common import metrics
from common.exceptions import ProtectedError
from common.outbox import enqueue_after_commit

from .cache import catalog_changed
from .exceptions import (
    CatalogValidationError,
    InsufficientStock,
    InvalidCategoryParent,
    ReservationMismatch,
    Shortage,
    UnknownProduct,
)
from .models import (
    METADATA_MAX_BYTES,
    PATH_SEPARATOR,
    Category,
    MovementReason,
    Product,
    StockLevel,
    StockMovement,
    store_currency,
)

if TYPE_CHECKING:
    from accounts.models import User

LOW_STOCK_EMAIL_MAX = 100
SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# One advisory lock serialises structural changes of the category tree (two concurrent moves
# could otherwise build a cycle).
CATEGORY_TREE_LOCK = 0x1A7E_0001


# =============================================================================
# Stock
# =============================================================================
@dataclass(frozen=True)
class StockLine:
    product_id: int
    quantity: int  # > 0


@dataclass(frozen=True)
class _Change:
    """How one line moves a level: deltas, and the SQL guard that must hold before it."""

    delta_on_hand: int
    delta_reserved: int
    guard: Q


def _merge_lines(lines: Iterable[StockLine]) -> dict[int, int]:
    """Sum quantities per product, in product-id order (the order rows are locked in)."""
    totals: dict[int, int] = {}
    for line in lines:
        if line.quantity <= 0:
            raise CatalogValidationError("Quantities must be positive.", attr="items")
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    if not totals:
        raise CatalogValidationError("At least one line is required.", attr="items")
    return dict(sorted(totals.items()))


def _lock_levels(product_ids: Sequence[int]) -> dict[int, StockLevel]:
    """SELECT ... FOR UPDATE the stock rows, in product-id order so two callers never deadlock."""
    levels = {
        level.product_id: level
        for level in StockLevel.objects.select_for_update(of=("self",))
        .select_related("product")
        .only("product__sku", *(field.attname for field in StockLevel._meta.concrete_fields))
        .filter(product_id__in=product_ids)
        .order_by("product_id")
    }
    missing = [product_id for product_id in product_ids if product_id not in levels]
    if missing:
        raise UnknownProduct(f"No such product: {', '.join(map(str, missing))}.")
    return levels


def _apply(
    *,
    levels: Mapping[int, StockLevel],
    changes: Mapping[int, _Change],
    reason: str,
    actor: User | None,
    reference: str,
    note: str,
    on_guard_failure: Callable[[StockLevel, _Change], Exception],
) -> list[StockMovement]:
    """One conditional UPDATE per locked row, then the ledger rows in one INSERT."""
    now = timezone.now()
    movements: list[StockMovement] = []
    newly_low: list[int] = []
    for product_id, change in changes.items():
        level = levels[product_id]
        on_hand = level.on_hand + change.delta_on_hand
        reserved = level.reserved + change.delta_reserved
        low = on_hand - reserved <= level.low_stock_threshold
        updated = StockLevel.objects.filter(change.guard, product_id=product_id).update(
            on_hand=F("on_hand") + change.delta_on_hand,
            reserved=F("reserved") + change.delta_reserved,
            low_stock_alerted=low,
            updated_at=now,
        )
        if updated != 1:  # the row is locked, so only a caller's bug gets here
            raise on_guard_failure(level, change)
        if low and not level.low_stock_alerted:
            newly_low.append(product_id)
        level.on_hand, level.reserved, level.low_stock_alerted = on_hand, reserved, low
        movements.append(
            StockMovement(
                product_id=product_id,
                reason=reason,
                delta_on_hand=change.delta_on_hand,
                delta_reserved=change.delta_reserved,
                on_hand_after=on_hand,
                reserved_after=reserved,
                actor=actor,
                reference=reference,
                note=note,
            )
        )
    StockMovement.objects.bulk_create(movements)
    schedule_low_stock_alert(newly_low)
    catalog_changed()
    return movements


def schedule_low_stock_alert(product_ids: Sequence[int]) -> None:
    """After commit, one email to staff naming the products that just became low on stock.

    One change (an order of many lines, a bulk import) sends one email, never one per product;
    it names at most `LOW_STOCK_EMAIL_MAX` of them and counts the rest.
    """
    if not product_ids:
        return
    from .tasks import send_low_stock_alert

    named, total = list(product_ids[:LOW_STOCK_EMAIL_MAX]), len(product_ids)
    enqueue_after_commit(send_low_stock_alert, product_ids=named, total=total)
    metrics.low_stock_crossed(products=total)


def _shortage(level: StockLevel, requested: int) -> Shortage:
    return Shortage(
        product_id=level.product_id,
        sku=level.product.sku,
        requested=requested,
        available=level.available,
    )


def _insufficient(level: StockLevel, change: _Change) -> Exception:
    return InsufficientStock(
        shortages=[_shortage(level, -change.delta_on_hand or change.delta_reserved)]
    )


# --- reserve, release, sell, restock: one conditional UPDATE ... RETURNING per line ----------
#
# No SELECT ... FOR UPDATE first: each line is one statement that locks its row, checks its guard
# on the row's latest version (PostgreSQL re-evaluates the WHERE after waiting for a concurrent
# writer) and changes it, in product-id order so two callers never deadlock. A line whose guard
# fails stops the loop; the caller's transaction rolls back whatever lines went before (the
# error is raised inside it), and only then are the rows read again to name every problem.

_GUARDS = {
    "reserve": "on_hand - reserved >= %(quantity)s",
    "release": "reserved >= %(quantity)s",
    "restock": "TRUE",
}
_UPDATE_LINE = (
    'UPDATE "inventory_stocklevel" SET on_hand = on_hand + %(on_hand)s, '
    "reserved = reserved + %(reserved)s, "
    "low_stock_alerted = (on_hand + %(on_hand)s) - (reserved + %(reserved)s) "
    "<= low_stock_threshold, updated_at = %(now)s "
    "WHERE product_id = %(product_id)s AND {guard} "
    "RETURNING on_hand, reserved, low_stock_threshold"
)
_LEDGER_COLUMNS = (
    "product_id, reason, delta_on_hand, delta_reserved, on_hand_after, reserved_after, "
    "actor_id, reference, note, created_at"
)


def _change_lines(
    *,
    totals: Mapping[int, int],
    guard: str,
    on_hand_sign: int,
    reserved_sign: int,
    reason: str,
    actor: User | None,
    reference: str,
    note: str,
) -> int | None:
    """Apply every line and write its ledger rows (one INSERT); the product id whose guard
    failed (nothing more is written then), or None."""
    now = timezone.now()
    sql = _UPDATE_LINE.format(guard=_GUARDS[guard])
    rows: list[tuple[int, int, int, int, int]] = []
    newly_low: list[int] = []
    with connection.cursor() as cursor:
        for product_id, quantity in totals.items():
            on_hand, reserved = on_hand_sign * quantity, reserved_sign * quantity
            cursor.execute(
                sql,
                {
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "now": now,
                    "product_id": product_id,
                    "quantity": quantity,
                },
            )
            row = cursor.fetchone()
            if row is None:
                return product_id
            on_hand_after, reserved_after, threshold = row
            available = on_hand_after - reserved_after
            if available <= threshold < available - on_hand + reserved:
                newly_low.append(product_id)
            rows.append((product_id, on_hand, reserved, on_hand_after, reserved_after))
        actor_id = actor.pk if actor is not None else None
        cursor.execute(
            f'INSERT INTO "inventory_stockmovement" ({_LEDGER_COLUMNS}) VALUES '  # noqa: S608
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows)),
            [
                value
                for product_id, on_hand, reserved, on_hand_after, reserved_after in rows
                for value in (
                    product_id,
                    reason,
                    on_hand,
                    reserved,
                    on_hand_after,
                    reserved_after,
                    actor_id,
                    reference,
                    note,
                    now,
                )
            ],
        )
    schedule_low_stock_alert(newly_low)
    catalog_changed()
    return None


def _levels_before(
    totals: Mapping[int, int], *, failed: int, on_hand_sign: int, reserved_sign: int
) -> dict[int, StockLevel]:
    """After a failed line: every level as it was before this call's earlier lines changed it
    (they are rolled back with the caller's transaction), for the error to name every problem."""
    levels = {
        level.product_id: level
        for level in StockLevel.objects.select_related("product")
        .only("product__sku", *(field.attname for field in StockLevel._meta.concrete_fields))
        .filter(product_id__in=list(totals))
    }
    missing = [product_id for product_id in totals if product_id not in levels]
    if missing:
        raise UnknownProduct(f"No such product: {', '.join(map(str, missing))}.")
    for product_id, quantity in totals.items():
        if product_id == failed:
            break
        levels[product_id].on_hand -= on_hand_sign * quantity
        levels[product_id].reserved -= reserved_sign * quantity
    return levels


def stock_reserve(
    *,
    lines: Sequence[StockLine],
    actor: User | None,
    reference: str,
    note: str = "",
    savepoint: bool = True,
) -> None:
    """Reserve every line or nothing; one `InsufficientStock` names every short product.

    `savepoint=False` (checkout): inside a caller's transaction that is rolled back as a whole
    on any error, no savepoint is taken (two statements fewer while a hot row is locked)."""
    with transaction.atomic(savepoint=savepoint):
        _reserve(lines=lines, actor=actor, reference=reference, note=note)


def _reserve(*, lines: Sequence[StockLine], actor: User | None, reference: str, note: str) -> None:
    totals = _merge_lines(lines)
    failed = _change_lines(
        totals=totals,
        guard="reserve",
        on_hand_sign=0,
        reserved_sign=1,
        reason=MovementReason.RESERVATION,
        actor=actor,
        reference=reference,
        note=note,
    )
    if failed is None:
        return
    levels = _levels_before(totals, failed=failed, on_hand_sign=0, reserved_sign=1)
    raise InsufficientStock(
        shortages=[
            _shortage(levels[product_id], quantity)
            for product_id, quantity in totals.items()
            if product_id == failed or levels[product_id].available < quantity
        ]
    )


def _release_or_sell(
    *,
    lines: Sequence[StockLine],
    actor: User | None,
    reference: str,
    note: str,
    reason: str,
    sell: bool,
) -> None:
    totals = _merge_lines(lines)
    on_hand_sign = -1 if sell else 0
    failed = _change_lines(
        totals=totals,
        guard="release",
        on_hand_sign=on_hand_sign,
        reserved_sign=-1,
        reason=reason,
        actor=actor,
        reference=reference,
        note=note,
    )
    if failed is None:
        return
    levels = _levels_before(totals, failed=failed, on_hand_sign=on_hand_sign, reserved_sign=-1)
    raise ReservationMismatch(
        " ".join(
            f"{levels[product_id].product.sku}: {levels[product_id].reserved} reserved, "
            f"{quantity} requested."
            for product_id, quantity in totals.items()
            if product_id == failed or levels[product_id].reserved < quantity
        )
    )


def stock_release(
    *,
    lines: Sequence[StockLine],
    actor: User | None,
    reference: str,
    note: str = "",
    savepoint: bool = True,
) -> None:
    """Give reserved units back (a cancelled or expired order): `reserved -= n`.
    `savepoint` as in `stock_reserve`."""
    with transaction.atomic(savepoint=savepoint):
        _release_or_sell(
            lines=lines,
            actor=actor,
            reference=reference,
            note=note,
            reason=MovementReason.RELEASE,
            sell=False,
        )


def stock_commit_sale(
    *,
    lines: Sequence[StockLine],
    actor: User | None,
    reference: str,
    note: str = "",
    savepoint: bool = True,
) -> None:
    """Reserved units are sold: `reserved -= n` and `on_hand -= n` in one statement.
    `savepoint` as in `stock_reserve`."""
    with transaction.atomic(savepoint=savepoint):
        _release_or_sell(
            lines=lines,
            actor=actor,
            reference=reference,
            note=note,
            reason=MovementReason.SALE,
            sell=True,
        )


def stock_restock(
    *,
    lines: Sequence[StockLine],
    actor: User | None,
    reference: str,
    note: str = "",
    savepoint: bool = True,
) -> None:
    """Units come back on hand (a refunded order's goods): `on_hand += n`. `savepoint` as in
    `stock_reserve`."""
    with transaction.atomic(savepoint=savepoint):
        _restock(lines=lines, actor=actor, reference=reference, note=note)


def _restock(*, lines: Sequence[StockLine], actor: User | None, reference: str, note: str) -> None:
    totals = _merge_lines(lines)
    failed = _change_lines(
        totals=totals,
        guard="restock",
        on_hand_sign=1,
        reserved_sign=0,
        reason=MovementReason.RESTOCK,
        actor=actor,
        reference=reference,
        note=note,
    )
    if failed is not None:  # no guard: only a missing row fails
        _levels_before(totals, failed=failed, on_hand_sign=1, reserved_sign=0)
        raise UnknownProduct(f"No such product: {failed}.")


@transaction.atomic
def stock_adjust(
    *,
    product_id: int,
    delta: int,
    reason: str,
    actor: User | None,
    note: str = "",
    reference: str = "",
) -> StockMovement:
    """A manual change of on-hand units by staff (receipt, damage, count correction...).

    The result may not fall below the reserved units (nor below 0): `InsufficientStock`.
    """
    if delta == 0:
        raise CatalogValidationError("The change must not be zero.", attr="delta")
    if reason not in StockMovement.MANUAL_REASONS:
        raise CatalogValidationError(
            f"Reason must be one of {', '.join(StockMovement.MANUAL_REASONS)}.", attr="reason"
        )
    levels = _lock_levels([product_id])
    level = levels[product_id]
    if level.on_hand + delta < level.reserved:
        raise InsufficientStock(shortages=[_shortage(level, -delta)])
    (movement,) = _apply(
        levels=levels,
        changes={product_id: _Change(delta, 0, Q(on_hand__gte=F("reserved") - delta))},
        reason=reason,
        actor=actor,
        reference=reference,
        note=note,
        on_guard_failure=_insufficient,
    )
    return movement


@transaction.atomic
def stock_set_threshold(*, product_id: int, low_stock_threshold: int) -> StockLevel:
    """Change when a product counts as low on stock; crossing into "low" alerts staff once."""
    if low_stock_threshold < 0:
        raise CatalogValidationError("The threshold must be 0 or more.", attr="low_stock_threshold")
    level = _lock_levels([product_id])[product_id]
    low = level.available <= low_stock_threshold
    StockLevel.objects.filter(product_id=product_id).update(
        low_stock_threshold=low_stock_threshold, low_stock_alerted=low, updated_at=timezone.now()
    )
    if low and not level.low_stock_alerted:
        schedule_low_stock_alert([product_id])
    level.low_stock_threshold, level.low_stock_alerted = low_stock_threshold, low
    catalog_changed()
    return level


def stock_low_alert_send(*, product_ids: Sequence[int], total: int | None = None) -> bool:
    """Email staff the given products that are still low on stock. Returns whether it sent."""
    from accounts.models import User
    from common.emails import send_email

    levels = [
        level
        for level in StockLevel.objects.select_related("product")
        .filter(product_id__in=product_ids)
        .order_by("product_id")
        if level.is_low
    ]
    recipients = list(
        User.objects.filter(
            is_active=True, role__in=[User.Role.STAFF, User.Role.ADMIN]
        ).values_list("email", flat=True)
    )
    if not levels or not recipients:
        return False
    send_email(
        template="low_stock",
        to=recipients,
        context={
            "products": [
                {
                    "product_id": level.product_id,
                    "sku": level.product.sku,
                    "name": level.product.name,
                    "on_hand": level.on_hand,
                    "reserved": level.reserved,
                    "available": level.available,
                    "low_stock_threshold": level.low_stock_threshold,
                }
                for level in levels
            ],
            "count": len(levels),
            "more": max(0, (total or len(product_ids)) - len(product_ids)),
        },
    )
    return True


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
    parts = [part.strip() for part in full_path.split(PATH_SEPARATOR)]
    if not full_path.strip() or any(not part for part in parts):
        raise CatalogValidationError(f"Bad category path {full_path!r}.", attr="category")
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


def validate_sku(sku: str) -> str:
    sku = sku.strip()
    if not SKU_PATTERN.match(sku):
        raise CatalogValidationError(
            "A SKU is 1 to 64 letters, digits, '-' or '_', starting with a letter or digit.",
            attr="sku",
        )
    return sku


def validate_metadata(metadata: object) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise CatalogValidationError("Metadata must be a JSON object.", attr="metadata")
    # The size the database checks: jsonb's text form uses ", " and ": " separators.
    size = len(json.dumps(metadata, ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        raise CatalogValidationError(
            f"Metadata is {size} bytes; at most {METADATA_MAX_BYTES} are allowed.",
            attr="metadata",
        )
    return metadata


def validate_currency(currency: str) -> str:
    if currency != store_currency():
        raise CatalogValidationError(
            f"The store sells in {store_currency()} only.", attr="currency"
        )
    return currency


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
    if price_cents < 0:
        raise CatalogValidationError("The price cannot be negative.", attr="price_cents")
    if low_stock_threshold < 0:
        raise CatalogValidationError("The threshold must be 0 or more.", attr="low_stock_threshold")
    if on_hand < 0:
        raise CatalogValidationError("Units on hand cannot be negative.", attr="on_hand")
    _check_sku_free(sku)
    product = Product(
        sku=sku,
        name=name,
        category=category,
        price_cents=price_cents,
        currency=validate_currency(currency or store_currency()),
        description=description,
        metadata=validate_metadata(metadata if metadata is not None else {}),
        is_active=is_active,
    )
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
    if "sku" in changes:
        sku = validate_sku(changes["sku"])
        if sku.lower() != product.sku.lower():
            _check_sku_free(sku, exclude_id=product.pk)
        product.sku = sku
    if "price_cents" in changes:
        if changes["price_cents"] < 0:
            raise CatalogValidationError("The price cannot be negative.", attr="price_cents")
        product.price_cents = changes["price_cents"]
    if "currency" in changes:
        product.currency = validate_currency(changes["currency"])
    if "metadata" in changes:
        product.metadata = validate_metadata(changes["metadata"])
    for field in ("name", "category", "description", "is_active"):
        if field in changes:
            setattr(product, field, changes[field])
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
