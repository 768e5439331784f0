"""Security configuration: `check --deploy` passes with the README's production settings and fails
on each weakened one; payment keys set but blank stop start-up; admin and docs pages carry the
Content-Security-Policy, signed-in pages `Cache-Control: no-store`, and ReDoc's bundle names no
other host."""

from __future__ import annotations

import gzip
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from payments.crypto import FIELD_ENCRYPTION_KEY_SALT, FINGERPRINT_KEY_SALT, derive_key

ROOT = Path(settings.BASE_DIR)
SECRET_KEY = secrets.token_urlsafe(50)

# The production settings, in process: what the README's block makes of the environment.
GOOD = {
    "DEBUG": False,
    "SECRET_KEY": SECRET_KEY,
    "ALLOWED_HOSTS": ["shop.example.com"],
    "FRONTEND_URL": "https://shop.example.com",
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "ADMIN_2FA_REQUIRED": True,
    "PAYMENT_GATEWAY": "stripe",
    "STRIPE_SECRET_KEY": "sk_live_only_for_the_check",
    "STRIPE_WEBHOOK_SECRET": "whsec_only_for_the_check",
    "PAYMENT_FINGERPRINT_KEY": secrets.token_urlsafe(32),
    "FIELD_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
}
NEW_KEY = Fernet.generate_key().decode()
DERIVED_ENCRYPTION_KEY = derive_key(FIELD_ENCRYPTION_KEY_SALT, SECRET_KEY)

# (what is wrong, the settings changed, the check id, whether it is an error or a warning)
BAD = [
    (
        "fingerprint key derived from SECRET_KEY",
        {"PAYMENT_FINGERPRINT_KEY": derive_key(FINGERPRINT_KEY_SALT, SECRET_KEY)},
        "payments.E003",
        "error",
    ),
    (
        "encryption key derived from SECRET_KEY",
        {"FIELD_ENCRYPTION_KEYS": [DERIVED_ENCRYPTION_KEY]},
        "payments.E003",
        "error",
    ),
    ("Stripe without a webhook secret", {"STRIPE_WEBHOOK_SECRET": ""}, "payments.E004", "error"),
    ("a wildcard host", {"ALLOWED_HOSTS": ["shop.example.com", "*"]}, "shop.E001", "error"),
    ("plain-HTTP links", {"FRONTEND_URL": "http://shop.example.com"}, "shop.E002", "error"),
    ("the test gateway", {"PAYMENT_GATEWAY": "test"}, "payments.W001", "warning"),
    ("optional two-factor", {"ADMIN_2FA_REQUIRED": False}, "shop.W001", "warning"),
    (
        "a derived key left after a rotation",
        {"FIELD_ENCRYPTION_KEYS": [NEW_KEY, DERIVED_ENCRYPTION_KEY]},
        "payments.W003",
        "warning",
    ),
]


@pytest.fixture(autouse=True)
def _no_async_unsafe(monkeypatch):
    """The browser tests' fixture sets this for the session; Django's own check refuses it."""
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)


def deploy_ids(**changes: Any) -> list[str | None]:
    with override_settings(**{**GOOD, **changes}):
        return [message.id for message in run_checks(include_deployment_checks=True)]


def test_the_production_settings_pass_check_deploy_in_process():
    with override_settings(**GOOD):
        call_command("check", "--deploy", "--fail-level", "WARNING")


@pytest.mark.parametrize(("what", "changes", "check_id", "level"), BAD, ids=[b[0] for b in BAD])
def test_each_weakened_setting_fails_check_deploy(what, changes, check_id, level):
    with override_settings(**{**GOOD, **changes}):
        with pytest.raises(SystemCheckError, match=re.escape(check_id)):
            call_command("check", "--deploy", "--fail-level", "WARNING")
        if level == "error":
            with pytest.raises(SystemCheckError, match=re.escape(check_id)):
                call_command("check", "--deploy")
        else:
            call_command("check", "--deploy")  # a warning alone fails only --fail-level WARNING
    assert deploy_ids(**changes) == [check_id]


def test_the_test_gateway_is_fine_while_debugging():
    assert "payments.W001" not in deploy_ids(PAYMENT_GATEWAY="test", DEBUG=True)


def test_the_checks_are_deployment_checks_only():
    with override_settings(ALLOWED_HOSTS=["*"], FRONTEND_URL="http://x", ADMIN_2FA_REQUIRED=False):
        ids = [message.id for message in run_checks()]
    assert not {id_ for id_ in ids if id_ and id_.startswith(("shop.", "payments.E003"))}


# --- the README's production block, in a real process -----------------------------------------

# `manage.py check` in a fresh interpreter whose environment is exactly the one given: a
# developer's `.env` is not read.
CHECK = """
import sys
import environ
environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
"""


def readme_production_env() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- production-env[^>]*-->\s*```sh\n(.*?)```", readme, re.DOTALL)
    assert block, "the README has no production settings block"
    values: dict[str, str] = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("=")
        if name == "FIELD_ENCRYPTION_KEYS":
            value = Fernet.generate_key().decode()
        values[name] = value.replace("…", secrets.token_urlsafe(50))
    return values


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": "postgres://shop:shop@127.0.0.1:5432/shop",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_passes_with_the_readmes_production_settings():
    env = readme_production_env()
    assert {"ADMIN_2FA_REQUIRED", "FRONTEND_URL", "STRIPE_WEBHOOK_SECRET"} <= set(env)
    result = run_check(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_when_the_payment_keys_are_left_unset():
    env = readme_production_env()
    del env["PAYMENT_FINGERPRINT_KEY"]
    env["FIELD_ENCRYPTION_KEYS"] = ""  # empty is unset: the derived default, which is refused
    result = run_check(env)
    assert result.returncode != 0
    assert result.stderr.count("payments.E003") == 2, result.stderr


# --- start-up errors --------------------------------------------------------------------------

IMPORT_SETTINGS = """
import environ
environ.Env.read_env = classmethod(lambda cls, *args, **kwargs: None)
import config.settings
print("settings loaded")
"""


def import_settings(**variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", IMPORT_SETTINGS],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "SECRET_KEY": "a-secret-key-for-the-start-up-tests-0123456789",
            "DATABASE_URL": "postgres://unused@127.0.0.1:5432/unused",
            **variables,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PAYMENT_FINGERPRINT_KEY": "   "}, "PAYMENT_FINGERPRINT_KEY is set but empty"),
        ({"FIELD_ENCRYPTION_KEYS": ","}, "FIELD_ENCRYPTION_KEYS is set but holds an empty key"),
        ({"FIELD_ENCRYPTION_KEYS": " , "}, "FIELD_ENCRYPTION_KEYS is set but holds an empty key"),
        (
            {"FIELD_ENCRYPTION_KEYS": f"{NEW_KEY}, ,{NEW_KEY}"},
            "FIELD_ENCRYPTION_KEYS is set but holds an empty key",
        ),
        (
            {"FIELD_ENCRYPTION_KEYS": f"{NEW_KEY},not-a-fernet-key"},
            "FIELD_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key",
        ),
    ],
    ids=["blank fingerprint key", "lone comma", "spaces", "empty item", "malformed key"],
)
def test_blank_or_malformed_payment_keys_stop_start_up(variables, message):
    result = import_settings(**variables)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr, result.stderr
    assert "settings loaded" not in result.stdout


def test_good_keys_and_empty_variables_start():
    """An empty variable is unset (README, Configuration): the default applies, no error."""
    assert import_settings(PAYMENT_FINGERPRINT_KEY="", FIELD_ENCRYPTION_KEYS="").returncode == 0
    result = import_settings(
        PAYMENT_FINGERPRINT_KEY=secrets.token_urlsafe(32),
        FIELD_ENCRYPTION_KEYS=f" {NEW_KEY} , {Fernet.generate_key().decode()}",
    )
    assert result.returncode == 0, result.stderr


def test_an_empty_key_from_an_override_is_refused_too(settings):
    from django.core.exceptions import ImproperlyConfigured

    from payments.crypto import card_fingerprint

    settings.PAYMENT_FINGERPRINT_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="PAYMENT_FINGERPRINT_KEY"):
        card_fingerprint("4242424242424242")


# --- headers ----------------------------------------------------------------------------------


def directives(response: Any) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";"))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/api/docs/", "/api/redoc/"])
def test_admin_and_docs_pages_carry_the_content_security_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    assert policy["img-src"] == "'self' data:"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    # No inline script is left for the policy to block.
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), html


@pytest.mark.django_db
def test_the_api_does_not_get_the_pages_policy(api_client):
    assert "Content-Security-Policy" not in api_client.get("/api/v1/products/")


@pytest.mark.django_db
def test_signed_in_admin_pages_are_never_stored(client, staff):
    client.force_login(staff)
    for path in ("/admin/", "/admin/inventory/product/", "/admin/two-factor/", "/admin/jsi18n/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"], path
        assert "Content-Security-Policy" in response, path


@pytest.mark.django_db
def test_images_from_the_media_storage_are_allowed(client, settings):
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    assert "https://cdn.example.com" in directives(client.get("/admin/login/"))["img-src"]
    settings.MEDIA_URL = "/media/"
    assert directives(client.get("/admin/login/"))["img-src"] == "'self' data:"


@pytest.mark.django_db
def test_redocs_bundle_names_no_other_host(client):
    page = client.get("/api/redoc/").content.decode()
    assert 'src="/api/redoc/bundles/redoc.standalone.js"' in page
    response = client.get("/api/redoc/bundles/redoc.standalone.js", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    body = gzip.decompress(response.content)
    assert b"Redoc" in body
    assert b"cdn.redoc.ly" not in body
    assert response["Cache-Control"] == "public, max-age=86400"
    again = client.get(
        "/api/redoc/bundles/redoc.standalone.js", HTTP_IF_NONE_MATCH=response["ETag"]
    )
    assert again.status_code == 304
    plain = client.get("/api/redoc/bundles/redoc.standalone.js")
    assert plain.content == body
