"""Production settings pass Django's deployment checklist, every variable is documented, an empty
variable means unset, and the container health probes pass behind a real domain. The compose
file and the image: test_compose.py."""

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

ROOT = Path(settings.BASE_DIR)
SETTINGS_VARIABLE = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def settings_variables() -> set[str]:
    return set(SETTINGS_VARIABLE.findall((ROOT / "config" / "settings.py").read_text()))


def compose_variables() -> set[str]:
    """The variables docker-compose.yml interpolates (`${NAME…}`): read from `.env` too."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))


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
        "FRONTEND_URL": "https://shop.example.com",
        "ADMIN_2FA_REQUIRED": "true",
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
    variables = settings_variables() | compose_variables()
    assert {
        "CELERY_BROKER_URL",
        "CACHE_URL",
        "THROTTLE_CACHE_URL",
        "FLOWER_BASIC_AUTH",
    } <= variables
    missing_example = variables - documented
    assert not missing_example, f"not in .env.example: {sorted(missing_example)}"
    missing_readme = {name for name in variables if f"`{name}`" not in readme}
    assert not missing_readme, f"not in the README's configuration table: {missing_readme}"


# What settings make of the payment keys, run in a fresh interpreter so the environment is exactly
# the one given. A developer's `.env` is not read: the test is about the environment alone.
PAYMENT_KEYS_PROBE = """
import json
import environ
environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)
import django
django.setup()
from django.conf import settings
from payments import crypto
token = crypto.encrypt(b"billing details")
print(json.dumps({
    "PAYMENT_FINGERPRINT_KEY": settings.PAYMENT_FINGERPRINT_KEY,
    "FIELD_ENCRYPTION_KEYS": settings.FIELD_ENCRYPTION_KEYS,
    "PAYMENT_WEBHOOK_SECRET": settings.PAYMENT_WEBHOOK_SECRET,
    "CELERY_TASK_ALWAYS_EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "decrypted": crypto.decrypt(token).decode(),
    "fingerprint": crypto.card_fingerprint("4242424242424242"),
}))
"""


def settings_probe(probe: str, **variables: str) -> Any:
    """What `probe` prints as its last line (JSON), run in a fresh process whose environment is
    exactly `variables` over a minimal base: the settings as a deployment with them would see."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "the-same-secret-key-for-both-runs-0123456789",
        "DATABASE_URL": "postgres://unused@127.0.0.1:5432/unused",
        **variables,
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def payment_settings(**variables: str) -> dict[str, object]:
    values: dict[str, object] = settings_probe(PAYMENT_KEYS_PROBE, **variables)
    return values


def test_an_empty_variable_means_unset():
    """docker-compose's `FOO: ${FOO:-}` passes "" when .env lacks FOO: that must not be an empty
    encryption key list (every card save a 500) or an HMAC with an empty key."""
    empty = payment_settings(
        FIELD_ENCRYPTION_KEYS="",
        PAYMENT_FINGERPRINT_KEY="",
        PAYMENT_WEBHOOK_SECRET="",
        REDIS_URL="",
        CELERY_BROKER_URL="",
    )
    unset = payment_settings()
    assert empty == unset
    keys = empty["FIELD_ENCRYPTION_KEYS"]
    assert isinstance(keys, list)
    assert keys
    assert all(keys)
    assert empty["PAYMENT_FINGERPRINT_KEY"]
    # Saving a card encrypts its billing details and fingerprints its number: both work.
    assert empty["decrypted"] == "billing details"
    assert len(str(empty["fingerprint"])) == 64
    assert empty["CELERY_TASK_ALWAYS_EAGER"] is True
    # The defaults are derived from SECRET_KEY (a different key, different derived values).
    other = payment_settings(SECRET_KEY="another-secret-key-entirely-9876543210")
    assert other["FIELD_ENCRYPTION_KEYS"] != keys
    assert other["PAYMENT_FINGERPRINT_KEY"] != empty["PAYMENT_FINGERPRINT_KEY"]


@pytest.mark.django_db
def test_health_probes_pass_behind_a_real_domain_and_https_redirect():
    """docker-compose probes http://127.0.0.1:8000/readyz inside the container; production sets
    ALLOWED_HOSTS to the real domain and SECURE_SSL_REDIRECT=true."""
    with override_settings(ALLOWED_HOSTS=["shop.example.com"], SECURE_SSL_REDIRECT=True):
        client = Client()
        healthz = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
        assert healthz.status_code == 200
        assert healthz.json() == {"status": "ok"}
        readyz = client.get("/readyz", HTTP_HOST="127.0.0.1:8000")
        assert readyz.status_code not in {301, 400}
        assert readyz.status_code == 200, readyz.content
        assert readyz.json()["status"] == "ok"
        # Everywhere else host validation and the redirect still apply.
        assert client.get("/api/v1/products/", HTTP_HOST="127.0.0.1:8000").status_code == 400
        assert client.get("/healthz/extra", HTTP_HOST="127.0.0.1:8000").status_code == 400
        redirected = client.get("/api/v1/products/", HTTP_HOST="shop.example.com")
        assert redirected.status_code == 301
        assert redirected["Location"] == "https://shop.example.com/api/v1/products/"


EMAIL_PROBE = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps([settings.EMAIL_BACKEND, settings.EMAIL_FILE_PATH]))
"""


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("filemail:///var/mail/shop", "/var/mail/shop"),  # the README's form: absolute
        ("filemail://", str(ROOT / ".data" / "emails")),
    ],
)
def test_filemail_writes_where_the_url_says(url, path):
    backend, file_path = settings_probe(EMAIL_PROBE, EMAIL_URL=url)
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert file_path == path


CORS_PROBE = """
import django, json
django.setup()
from django.conf import settings
print(json.dumps(settings.CORS_ALLOWED_ORIGINS))
"""


@pytest.mark.parametrize(
    ("debug", "origins"),
    [
        ("true", ["http://localhost:3000", "http://localhost:5173"]),
        ("false", []),
    ],
)
def test_local_front_ends_may_call_the_api_in_development_only(debug, origins):
    allowed = settings_probe(CORS_PROBE, DEBUG=debug)
    assert set(origins) <= set(allowed)
    assert bool(allowed) == bool(origins)
    assert "*" not in allowed
