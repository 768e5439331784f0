"""`manage.py audit_stock`: prove the ledger adds up to the stock levels (exit 1 on drift)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inventory.selectors import stock_audit


class Command(BaseCommand):
    help = (
        "Check, for every product, that the stock movements sum to the current on-hand and "
        "reserved counts. Prints each drift and exits with status 1 if there is any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        drifts = stock_audit()
        if not drifts:
            self.stdout.write(self.style.SUCCESS("Stock ledger and levels agree."))
            return
        for drift in drifts:
            self.stdout.write(str(drift))
        raise CommandError(f"{len(drifts)} product(s) drift from their ledger.", returncode=1)
