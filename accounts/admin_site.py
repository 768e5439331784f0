"""The admin site: Django's stock admin with a guarded door (README, Security).

`ShopAdminConfig` replaces `django.contrib.admin` in INSTALLED_APPS and makes `ShopAdminSite` the
default site, so `django.contrib.admin.site` is this site and every app's `@admin.register`
lands on it unchanged. What it adds to the stock site:

- the login page is held to the API login's failure limits (per client address and per
  (address, account)), and over either answers 429 without checking anything
  (accounts/admin_login.py);
- a user with a confirmed TOTP device must sign in with a code from it or a recovery code, and
  their session counts as staff only when it was signed in that way (django-otp);
- /admin/two-factor/ enrols a device, shows the recovery codes once, and turns it off again
  with a valid code (accounts/otp.py);
- with `ADMIN_2FA_REQUIRED`, staff and admins without a device are sent to /admin/two-factor/
  before any other admin page.

This module is imported while the app registry is being built: nothing here imports a model or a
form at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import URLPattern, URLResolver, path, reverse

# Admin pages a user who must enrol may still open (the enrolment page itself, signing out, and
# the JavaScript catalogue its pages load).
ENROLMENT_EXEMPT = frozenset({"two_factor", "logout", "jsi18n"})

_View = TypeVar("_View", bound=Callable[..., Any])


class ShopAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from . import admin_login

        self.login_form = admin_login.AdminLoginForm
        return admin_login.login(
            self, request, lambda: super(ShopAdminSite, self).login(request, extra_context)
        )

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff, and signed in with their second factor when they have a device."""
        if not super().has_permission(request):
            return False
        from .otp import session_is_verified, user_has_device

        return session_is_verified(request) or not user_has_device(request.user)

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        protected = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if self._must_enrol(request):
                target = reverse("admin:two_factor", current_app=self.name)
                return HttpResponseRedirect(f"{target}?{urlencode({'next': request.path})}")
            response: HttpResponseBase = protected(request, *args, **kwargs)
            return response

        return cast(_View, update_wrapper(inner, protected))

    def _must_enrol(self, request: HttpRequest) -> bool:
        if not settings.ADMIN_2FA_REQUIRED:
            return False
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        match = request.resolver_match
        if match is not None and match.url_name in ENROLMENT_EXEMPT:
            return False
        from .otp import session_is_verified, user_has_device

        return not session_is_verified(request) and not user_has_device(user)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [
            path("two-factor/", self.admin_view(self.two_factor), name="two_factor"),
            *super().get_urls(),
        ]

    def two_factor(self, request: HttpRequest) -> HttpResponse:
        from .otp import two_factor_view

        return two_factor_view(self, request)


class ShopAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.ShopAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from common import checks  # noqa: F401  (the site's deployment checks)

        from .otp import register_device_admin

        register_device_admin(admin.site)
