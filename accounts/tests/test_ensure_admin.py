"""`manage.py ensure_admin` (which `make run` runs): the first admin is created once, a generated
password is shown once, and a later run names the existing admin and how to reset its password."""

import io

import pytest
from django.core.management import call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_ensure_admin_creates_one_admin_once(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Boss@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password")
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    call_command("ensure_admin", stdout=out)
    admin = User.objects.get()
    assert admin.role == User.Role.ADMIN
    assert admin.is_staff
    assert admin.is_superuser
    assert admin.check_password("a-long-admin-password")
    assert out.getvalue().count("Created the first admin") == 1
    assert "a-long-admin-password" not in out.getvalue()


def test_ensure_admin_prints_a_generated_password_once(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().split("(shown once): ")[1].strip()
    assert User.objects.get(email="admin@example.com").check_password(password)


def test_ensure_admin_names_the_existing_admin_and_the_reset_command(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "owner@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password")
    call_command("ensure_admin", stdout=io.StringIO())
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert out.getvalue().strip() == (
        "Admin: owner@example.com (reset its password with: "
        ".venv/bin/python manage.py changepassword owner@example.com)"
    )
    assert User.objects.count() == 1
