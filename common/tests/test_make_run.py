"""`make run` says what it is doing: the first install, where the embedded PostgreSQL lives,
that it makes sure of an admin (what `ensure_admin` says: accounts/tests/test_ensure_admin.py), and
whether background tasks get a worker. The recipes are read with `make -n` (nothing runs); no
server is started here."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

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
