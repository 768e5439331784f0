"""The daily rollup's one write path.

A day is rolled up only once it is finished in the store's time zone (before today), and always
from the primary: the rollup is written there, and computing it from a lagging replica would
freeze stale figures into it. Rewriting a day replaces its rows whole, so running the rollup
again (the nightly task recomputes the last few days; a backfill may overlap it) is harmless.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from . import sql
from .selectors import store_time_zone, store_today

# The nightly task recomputes this many finished days: a payment that commits just after
# midnight, or whose clock ran behind, lands in a day that was already rolled up.
RECENT_DAYS = 3
# ... and fills any day missing from this window (beat or the workers were down for a while).
GAP_WINDOW_DAYS = 60


@transaction.atomic(using=DEFAULT_DB_ALIAS)
def rollup_days(*, date_from: dt.date, date_to: dt.date) -> int:
    """Compute and store the figures of every finished day from `date_from` to `date_to`
    (both inclusive; days from today on are left out: they are not finished). Returns how many
    days were written."""
    date_to = min(date_to, store_today() - dt.timedelta(days=1))
    if date_from > date_to:
        return 0
    params: dict[str, Any] = {
        "tz": store_time_zone(),
        "date_from": date_from,
        "date_to": date_to,
        "now": timezone.now(),
    }
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql.ROLLUP_LOCK)
        cursor.execute(sql.JIT_OFF)
        cursor.execute(sql.ROLLUP_DELETE_PRODUCTS, params)
        cursor.execute(sql.ROLLUP_DELETE_DAYS, params)
        cursor.execute(sql.ROLLUP_INSERT_DAYS, params)
        written = cursor.rowcount
        cursor.execute(sql.ROLLUP_INSERT_PRODUCTS, params)
    return int(written)


def rollup_missing_days(*, date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    """Finished days of the window the rollup lacks in the current time zone (read from the
    primary, which the rollup is written to)."""
    date_to = min(date_to, store_today() - dt.timedelta(days=1))
    if date_from > date_to:
        return []
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            sql.ROLLUP_MISSING_DAYS,
            {"tz": store_time_zone(), "date_from": date_from, "date_to": date_to},
        )
        return [day for (day,) in cursor.fetchall()]


def rollup_recent(*, days: int = RECENT_DAYS, gap_window_days: int = GAP_WINDOW_DAYS) -> int:
    """The nightly job: recompute the last `days` finished days, then fill any day missing from
    the last `gap_window_days` (in runs of consecutive days). Returns how many days were
    written."""
    yesterday = store_today() - dt.timedelta(days=1)
    recent_from = yesterday - dt.timedelta(days=days - 1)
    written = rollup_days(date_from=recent_from, date_to=yesterday) if days > 0 else 0
    missing = rollup_missing_days(
        date_from=yesterday - dt.timedelta(days=gap_window_days - 1),
        date_to=recent_from - dt.timedelta(days=1),
    )
    for start, end in _runs(missing):
        written += rollup_days(date_from=start, date_to=end)
    return written


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
