"""Production settings pass Django's deployment checklist; docker-compose matches the settings."""

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SETTINGS_VARIABLE = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def settings_variables() -> set[str]:
    return set(SETTINGS_VARIABLE.findall((ROOT / "config" / "settings.py").read_text()))


def env_example_variables() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_check_deploy_is_clean_with_production_settings():
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "shop.example.com",
        "DATABASE_URL": "postgres://shop:shop@127.0.0.1:5432/shop",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SESSION_COOKIE_SECURE": "true",
        "CSRF_COOKIE_SECURE": "true",
        "PAYMENT_GATEWAY": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_only_for_the_check",
        "STRIPE_WEBHOOK_SECRET": "whsec_only_for_the_check",
        "PAYMENT_FINGERPRINT_KEY": secrets.token_urlsafe(32),
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_setting_variable_is_documented():
    documented = env_example_variables()
    readme = (ROOT / "README.md").read_text()
    missing_example = settings_variables() - documented
    assert not missing_example, f"not in .env.example: {sorted(missing_example)}"
    missing_readme = {name for name in settings_variables() if f"`{name}`" not in readme}
    assert not missing_readme, f"not in the README's configuration table: {missing_readme}"


def test_compose_file_matches_the_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "web", "worker", "beat"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], f"{name} has no health check"

    known = settings_variables() | {"DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD", "HOST"}
    for name in ("web", "worker", "beat"):
        service = services[name]
        environment = service.get("environment", {})
        assert isinstance(environment, dict)
        unknown = set(environment) - known
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"
        for required in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            assert required in environment, f"{name} lacks {required}"
        assert "postgres" in environment["DATABASE_URL"]
        assert "redis://redis:6379" in environment["REDIS_URL"]
        depends = service.get("depends_on", {})
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"

    web_command = " ".join(services["web"]["command"])
    assert "gunicorn" in web_command
    assert "config.wsgi" in web_command
    assert "celery" in " ".join(services["worker"]["command"])
    assert "beat" in " ".join(services["beat"]["command"])
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
