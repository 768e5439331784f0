"""`make run` says what it is doing: the first install, where the embedded PostgreSQL lives,
which admin exists and how to reset its password, and whether background tasks get a worker.
The recipes are read with `make -n` (nothing runs); no server is started here."""

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.models import User

ROOT = Path(settings.BASE_DIR)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(*targets: str, **variables: str) -> str:
    result = subprocess.run(
        ["make", "-n", *targets, *(f"{name}={value}" for name, value in variables.items())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_first_run_says_it_is_installing(tmp_path):
    # A venv that does not exist yet: the first run's recipes.
    out = dry_run("install", VENV=str(tmp_path / "venv"))
    assert "Installing dependencies into .venv (first run, about a minute)" in out
    assert out.index("first run") < out.index("pip install --quiet -r requirements-dev.txt")


def test_run_names_the_embedded_database_and_starts_the_workers_with_a_broker():
    out = dry_run("run")
    assert "embedded PostgreSQL in .data/postgres" in out
    assert "DATABASE_URL" in out
    assert "manage.py ensure_admin" in out
    # With a broker the worker (every queue) and beat run beside gunicorn and stop with it.
    assert "celery -A config worker -Q critical,default,bulk" in out
    assert "celery -A config beat" in out
    assert "trap " in out
    assert "Ctrl-C stops all three" in out
    assert "gunicorn -c config/gunicorn.conf.py config.wsgi" in out
    # Without one, it says where tasks run instead.
    assert "No REDIS_URL: queued work" in out


@pytest.mark.django_db
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
