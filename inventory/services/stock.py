"""Stock: the ledger and the levels it explains (`StockLevel`, `StockMovement`).

Owns every stock write of the services: reserve, release, sell and restock (`stock_reserve`,
`stock_release`, `stock_commit_sale`, `stock_restock`), staff adjustments and thresholds
(`stock_adjust`, `stock_set_threshold`), and when a level crosses into "low" (the alert itself
is `stock_alerts`).

Stock levels change only here (and in the importer, below), and only by single conditional
UPDATEs (`... WHERE on_hand - reserved >= n`), one per product in product-id order (reserve,
release, sell and restock lock a row with that very UPDATE; staff changes lock it first,
`_lock_levels`), and ledger rows (`StockMovement`) in the same transaction. The database's check
constraints are the last guard.

The one other stock write path is the CSV importer's set-based write
(`inventory.catalog_csv.writing`): it locks the imported products' levels in product-id order,
refuses a row whose stock is below its reserved units before anything is written, then writes
one `import` ledger row per changed level and the levels, in the import's transaction. It keeps
the same invariants: the ledger sums to the levels, and no level is negative or below its
reserved units. Tests: the root `conftest.py`'s autouse `_ledger_adds_up` fixture runs
`stock_audit` (what `manage.py audit_stock` runs) after every test that touches the database,
the imports in `inventory/tests/test_catalog_csv.py` included (e.g.
`test_import_updates_by_sku_case_insensitively`, an import over reserved stock), and
`test_stock_below_reserved_is_a_bad_row` there pins the refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..cache import catalog_changed
from ..exceptions import (
    CatalogValidationError,
    InsufficientStock,
    ReservationMismatch,
    Shortage,
    StockLimitExceeded,
    UnknownProduct,
)
from ..models import MovementReason, StockLevel, StockMovement
from .stock_alerts import schedule_low_stock_alert
from .validation import validate_low_stock_threshold

if TYPE_CHECKING:
    from accounts.models import User


@dataclass(frozen=True)
class StockLine:
    product_id: int
    quantity: int  # > 0


# What reserve, release, sell and restock take: any number of lines, several for one product too.
StockLines = Sequence[StockLine]


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

# The most units a stock level holds (its columns are PostgreSQL `integer`).
MAX_UNITS = 2**31 - 1

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
    move: _LineMove,
    *,
    totals: Mapping[int, int],
    actor: User | None,
    reference: str,
    note: str,
) -> int | None:
    """Apply every line and write its ledger rows (one INSERT); the product id whose guard
    failed (nothing more is written then), or None."""
    now = timezone.now()
    sql = _UPDATE_LINE.format(guard=_GUARDS[move.guard])
    on_hand_sign, reserved_sign, reason = move.on_hand_sign, move.reserved_sign, move.reason
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
    move: _LineMove, totals: Mapping[int, int], *, failed: int
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
        levels[product_id].on_hand -= move.on_hand_sign * quantity
        levels[product_id].reserved -= move.reserved_sign * quantity
    return levels


# The error of a line move whose guard failed: (the totals, the failed product, every level as it
# was before), after `_levels_before` has refused products that do not exist.
_LineError = Callable[[Mapping[int, int], int, Mapping[int, StockLevel]], Exception]


def _short_of_stock(
    totals: Mapping[int, int], failed: int, levels: Mapping[int, StockLevel]
) -> Exception:
    return InsufficientStock(
        shortages=[
            _shortage(levels[product_id], quantity)
            for product_id, quantity in totals.items()
            if product_id == failed or levels[product_id].available < quantity
        ]
    )


def _more_than_reserved(
    totals: Mapping[int, int], failed: int, levels: Mapping[int, StockLevel]
) -> Exception:
    return ReservationMismatch(
        " ".join(
            f"{levels[product_id].product.sku}: {levels[product_id].reserved} reserved, "
            f"{quantity} requested."
            for product_id, quantity in totals.items()
            if product_id == failed or levels[product_id].reserved < quantity
        )
    )


def _no_such_product(
    totals: Mapping[int, int], failed: int, levels: Mapping[int, StockLevel]
) -> Exception:
    return UnknownProduct(f"No such product: {failed}.")  # no guard: only a missing row fails


@dataclass(frozen=True)
class _LineMove:
    """What reserve, release, sell or restock does to each line: its guard (`_GUARDS`), the
    signs of the change to on-hand and reserved units, its ledger reason, and its error."""

    guard: str
    on_hand_sign: int
    reserved_sign: int
    reason: str
    error: _LineError


_RESERVE = _LineMove("reserve", 0, 1, MovementReason.RESERVATION, _short_of_stock)
_RELEASE = _LineMove("release", 0, -1, MovementReason.RELEASE, _more_than_reserved)
_SALE = _LineMove("release", -1, -1, MovementReason.SALE, _more_than_reserved)
_RESTOCK = _LineMove("restock", 1, 0, MovementReason.RESTOCK, _no_such_product)


def _move_lines(
    move: _LineMove, *, lines: StockLines, actor: User | None, reference: str, note: str
) -> None:
    """Every line or none (the error is raised inside the caller's transaction)."""
    totals = _merge_lines(lines)
    failed = _change_lines(move, totals=totals, actor=actor, reference=reference, note=note)
    if failed is not None:
        raise move.error(totals, failed, _levels_before(move, totals, failed=failed))


def stock_reserve(
    *, lines: StockLines, actor: User | None, reference: str, note: str = "", savepoint: bool = True
) -> None:
    """Reserve every line or nothing; one `InsufficientStock` names every short product.

    `savepoint=False` (checkout): inside a caller's transaction that is rolled back as a whole
    on any error, no savepoint is taken (two statements fewer while a hot row is locked)."""
    with transaction.atomic(savepoint=savepoint):
        _move_lines(_RESERVE, lines=lines, actor=actor, reference=reference, note=note)


def stock_release(
    *, lines: StockLines, actor: User | None, reference: str, note: str = "", savepoint: bool = True
) -> None:
    """Give reserved units back (a cancelled or expired order): `reserved -= n`.
    `savepoint` as in `stock_reserve`."""
    with transaction.atomic(savepoint=savepoint):
        _move_lines(_RELEASE, lines=lines, actor=actor, reference=reference, note=note)


def stock_commit_sale(
    *, lines: StockLines, actor: User | None, reference: str, note: str = "", savepoint: bool = True
) -> None:
    """Reserved units are sold: `reserved -= n` and `on_hand -= n` in one statement.
    `savepoint` as in `stock_reserve`."""
    with transaction.atomic(savepoint=savepoint):
        _move_lines(_SALE, lines=lines, actor=actor, reference=reference, note=note)


def stock_restock(
    *, lines: StockLines, actor: User | None, reference: str, note: str = "", savepoint: bool = True
) -> None:
    """Units come back on hand (a refunded order's goods): `on_hand += n`. `savepoint` as in
    `stock_reserve`."""
    with transaction.atomic(savepoint=savepoint):
        _move_lines(_RESTOCK, lines=lines, actor=actor, reference=reference, note=note)


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

    The result may not fall below the reserved units (nor below 0): `InsufficientStock`; nor
    rise past `MAX_UNITS`: `StockLimitExceeded`.
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
    if level.on_hand + delta > MAX_UNITS:
        raise StockLimitExceeded
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
    validate_low_stock_threshold(low_stock_threshold)
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
