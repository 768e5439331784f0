"""Deployment checks of the site as a whole (`manage.py check --deploy`; README, Security).

shop.E001 `ALLOWED_HOSTS` holds a wildcard; shop.E002 `FRONTEND_URL` (the base of the links in
emails: verification and password-reset tokens) is not HTTPS; shop.W001 the admin's two-factor
sign-in is optional (`ADMIN_2FA_REQUIRED` off). The payment checks are in payments/checks.py.
Registered when the admin app is ready (accounts/admin_site.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_site_security(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if "*" in settings.ALLOWED_HOSTS:
        messages.append(
            Error(
                "ALLOWED_HOSTS contains '*': any Host header is accepted (poisoned links in "
                "emails and password resets, cache poisoning).",
                hint="List the site's own domain names in ALLOWED_HOSTS.",
                id="shop.E001",
            )
        )
    if urlsplit(settings.FRONTEND_URL).scheme != "https":
        messages.append(
            Error(
                f"FRONTEND_URL is {settings.FRONTEND_URL!r}, not HTTPS: the links in emails "
                "(email verification, password reset) would carry their tokens in clear text.",
                hint="Set FRONTEND_URL to the storefront's https:// address.",
                id="shop.E002",
            )
        )
    if not settings.ADMIN_2FA_REQUIRED:
        messages.append(
            Warning(
                "ADMIN_2FA_REQUIRED is off: staff and admins may sign in to the admin with a "
                "password alone.",
                hint=(
                    "Set ADMIN_2FA_REQUIRED=true once every staff member can enrol an "
                    "authenticator app (/admin/two-factor/)."
                ),
                id="shop.W001",
            )
        )
    return messages
