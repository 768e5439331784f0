"""`manage.py audit_payments`: prove every order's status agrees with its money (exit 1 if not)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.selectors import payment_audit


class Command(BaseCommand):
    help = (
        "Check that every paid, shipped, delivered or refunded order has its succeeded charge, "
        "that no succeeded charge sits on a pending order or on a cancelled order without "
        "its refund, and that no refunded order still holds captured money (a refund that "
        "failed). Prints each mismatch and exits with status 1 if there is any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = payment_audit()
        if not mismatches:
            self.stdout.write(self.style.SUCCESS("Orders and payments agree."))
            return
        for mismatch in mismatches:
            self.stdout.write(str(mismatch))
        raise CommandError(
            f"{len(mismatches)} order(s) disagree with their payments.", returncode=1
        )
