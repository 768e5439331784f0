"""Create the first admin when none exists, else name the first one (used by `make run`)."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand

from accounts.models import User


class Command(BaseCommand):
    help = (
        "Create a first admin if there is none: DJANGO_SUPERUSER_EMAIL and "
        "DJANGO_SUPERUSER_PASSWORD, else admin@example.com with a generated password printed once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        import os

        admin = User.objects.filter(role=User.Role.ADMIN).order_by("pk").first()
        if admin is not None:
            self.stdout.write(
                f"Admin: {admin.email} (reset its password with: "
                f".venv/bin/python manage.py changepassword {admin.email})"
            )
            return
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL") or "admin@example.com"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        if not password:
            password = secrets.token_urlsafe(16)
        User.objects.create_superuser(email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Created the first admin: {email}"))
        if generated:
            self.stdout.write(f"Its generated password (shown once): {password}")
