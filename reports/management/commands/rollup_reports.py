"""`manage.py rollup_reports --from YYYY-MM-DD [--to YYYY-MM-DD]`: (re)build the daily rollup."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.selectors import store_today
from reports.services import rollup_days

# Days written per transaction: a long backfill holds no lock for long and shows progress.
CHUNK_DAYS = 92


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = (
        "Compute the reports' daily rollup (sales and per-product figures) for every finished "
        "day of a range, in the store's TIME_ZONE, replacing what is there. Days from today on "
        "are skipped: they are computed live."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="date_from", required=True, help="first day")
        parser.add_argument("--to", dest="date_to", help="last day (default: yesterday)")

    def handle(self, *args: Any, **options: Any) -> None:
        yesterday = store_today() - dt.timedelta(days=1)
        date_from = _date(options["date_from"])
        date_to = _date(options["date_to"]) if options["date_to"] else yesterday
        if date_from > date_to:
            raise CommandError("--from must not be after --to")
        written = 0
        start = date_from
        while start <= min(date_to, yesterday):
            end = min(start + dt.timedelta(days=CHUNK_DAYS - 1), date_to)
            written += rollup_days(date_from=start, date_to=end)
            if options["verbosity"] > 1:
                self.stdout.write(f"{start} .. {end}")
            start = end + dt.timedelta(days=1)
        if options["verbosity"] > 0:
            self.stdout.write(self.style.SUCCESS(f"Rolled up {written} day(s)."))
