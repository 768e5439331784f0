"""`make run` says what it is doing: the first install, where the embedded PostgreSQL lives,
that it makes sure of an admin (what `ensure_admin` says: accounts/tests/test_ensure_admin.py), and
whether background tasks get a worker. The recipes are read with `make -n` (nothing runs); no
server is started here."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(
    *targets: str, cwd: Path = ROOT, env: dict[str, str] | None = None, **variables: str
) -> str:
    result = subprocess.run(
        [
            "make",
            "-f",
            str(ROOT / "Makefile"),
            "-n",
            *targets,
            *(f"{name}={value}" for name, value in variables.items()),
        ],
        cwd=cwd,
        env=env,
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


def beside(tmp_path: Path, dotenv: str) -> Path:
    """A checkout whose `.env` is `dotenv` (the rest: this one's venv, config and requirements)."""
    for name in (".venv", "config", "requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / ".env").write_text(dotenv)
    return tmp_path


def served_ports(out: str) -> set[str]:
    """Every port the recipes name: the printed addresses, runserver's and gunicorn's PORT."""
    return set(re.findall(r"127\.0\.0\.1:(\d*)", out)) | set(re.findall(r"\bPORT=(\d*) ", out))


@pytest.mark.parametrize(
    ("command_line", "environment", "dotenv", "port"),
    [
        ({"PORT": ""}, {}, "SECRET_KEY=x\n", "8000"),
        ({}, {"PORT": ""}, "SECRET_KEY=x\n", "8000"),
        ({}, {"PORT": ""}, "SECRET_KEY=x\nPORT=\n", "8000"),
        ({}, {"PORT": ""}, "SECRET_KEY=x\nPORT=9123\n", "9123"),
        ({}, {"PORT": "9002"}, "SECRET_KEY=x\nPORT=9123\n", "9002"),
        ({"PORT": "9001"}, {}, "SECRET_KEY=x\nPORT=9123\n", "9001"),
    ],
    ids=[
        "empty-on-command-line",
        "empty-in-environment",
        "empty-everywhere",
        "dotenv",
        "environment-over-dotenv",
        "command-line-over-dotenv",
    ],
)
def test_run_and_dev_serve_on_port_8000_unless_a_non_empty_port_is_given(
    tmp_path, command_line, environment, dotenv, port
):
    env = {name: value for name, value in os.environ.items() if name != "PORT"} | environment
    out = dry_run("run", "dev", cwd=beside(tmp_path, dotenv), env=env, **command_line)
    assert served_ports(out) == {port}, out
    assert f"runserver 127.0.0.1:{port}" in out
    assert f"http://127.0.0.1:{port}/api/docs/" in out
    # gunicorn with a broker and without one (config/gunicorn.conf.py reads PORT the same way).
    assert len(re.findall(rf"PORT={port} (?:exec )?\.venv/bin/gunicorn -c config/", out)) == 2
