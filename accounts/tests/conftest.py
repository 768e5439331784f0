"""Fixtures and helpers for the accounts tests."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from rest_framework.test import APIClient

PASSWORD = "correct-horse-battery-staple"
NEW_PASSWORD = "a-brand-new-long-passphrase-42"


def login(email: str, password: str = PASSWORD, client: APIClient | None = None) -> dict[str, str]:
    """Sign in through the API and return the token pair."""
    response = (client or APIClient()).post(
        "/api/v1/auth/token/", {"email": email, "password": password}
    )
    assert response.status_code == 200, response.content
    return cast(dict[str, str], response.json())


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture
def production_hashers(settings) -> None:
    """The real hasher order (Argon2 first) instead of the tests' fast MD5 (which
    config/settings_test.py puts in front of the real list)."""
    settings.PASSWORD_HASHERS = [
        hasher for hasher in settings.PASSWORD_HASHERS if not hasher.endswith(".MD5PasswordHasher")
    ]


def link_in(message: Any, pattern: re.Pattern[str]) -> str:
    """The first link of an email's text part that matches `pattern`."""
    match = pattern.search(str(message.body))
    assert match is not None, message.body
    return match.group(0)


def html_of(message: Any) -> str:
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    return cast(str, html)
