"""Re-encrypt stored billing details with the first of FIELD_ENCRYPTION_KEYS.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then drop the old keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from payments.crypto import reencrypt
from payments.models import PaymentMethod


class Command(BaseCommand):
    help = "Re-encrypt payment billing details with the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        table = PaymentMethod._meta.db_table
        count = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw column values (Fernet tokens), so nothing is decrypted into Python objects.
            cursor.execute(
                f"SELECT id, billing_details FROM {table} FOR UPDATE"  # noqa: S608 - our table name
            )
            rows = cursor.fetchall()
            for pk, token in rows:
                cursor.execute(
                    f"UPDATE {table} SET billing_details = %s WHERE id = %s",  # noqa: S608
                    [reencrypt(token), pk],
                )
                count += 1
        self.stdout.write(f"Re-encrypted {count} payment method(s).")
