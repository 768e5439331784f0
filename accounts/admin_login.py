"""The admin login: the API's failed-sign-in limits, and the second factor.

A sign-in to the admin is held to the same limits as the API's (`accounts.throttles.
LoginFailureLimit`): failures per client address (`login` rate) and per (address, account)
(`login_account`), counted in the `throttles` cache, failing open when Redis is unreachable, with
the client address the API uses (`accounts.security.client_ip`: REMOTE_ADDR, or the
X-Forwarded-For entry `NUM_PROXIES` says to trust). The two doors share the counters, so
guesses split between them add up. Only failures count: a wrong password, an account that is not
staff, a missing or wrong two-factor code; a successful sign-in gives its slot back.

Over either limit the login page answers 429 "Too many attempts, try again in N minutes" before
the form is read, so no password is hashed. A right password from an address that has not been
failing is never blocked: nothing counts per account alone.
"""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from rest_framework.exceptions import Throttled

from . import otp, security
from .security import client_ip
from .throttles import LoginFailureLimit


def login(
    site: AdminSite,
    request: HttpRequest,
    stock_login: Any,
) -> HttpResponseBase:
    """`stock_login()` (Django's admin login view) inside the failure limits."""
    if request.method != "POST":
        response: HttpResponseBase = stock_login()
        return response
    try:
        attempt = LoginFailureLimit().begin(
            address=client_ip(request) or "", email=str(request.POST.get("username", ""))
        )
    except Throttled as throttled:
        security.security_event(security.LOGIN_THROTTLED, request=request, channel="admin")
        return _too_many_attempts(site, request, float(getattr(throttled, "wait", None) or 60))
    succeeded = False
    try:
        response = stock_login()
        # Django's LoginView redirects after a valid form only; an invalid one is shown again.
        succeeded = response.status_code == 302
    finally:
        if succeeded:
            attempt.succeeded()
        else:
            attempt.failed()
            security.security_event(security.LOGIN_FAILED, request=request, channel="admin")
    return response


def _too_many_attempts(site: AdminSite, request: HttpRequest, wait: float) -> TemplateResponse:
    """The login page, 429, with "Too many attempts": nothing of the form is checked."""
    minutes = max(1, math.ceil(wait / 60))
    request.current_app = site.name
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        "form": AdminLoginForm(request),
        "throttled_minutes": minutes,
        REDIRECT_FIELD_NAME: request.POST.get(REDIRECT_FIELD_NAME)
        or reverse("admin:index", current_app=site.name),
    }
    response = TemplateResponse(request, "admin/login.html", context, status=429)
    response["Retry-After"] = str(math.ceil(wait))
    add_never_cache_headers(response)
    return response


class AdminLoginForm(AdminAuthenticationForm):
    """The stock admin login plus a two-factor code, required from users with a device."""

    otp_token = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=64,
        help_text="Only if you turned on two-factor sign-in: the 6-digit code of your "
        "authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": "This account signs in with two-factor authentication: enter the "
        "6-digit code of your authenticator app, or a recovery code.",
        "otp_invalid": "That two-factor code is not right (or was already used): enter the "
        "current code of your authenticator app, or an unused recovery code.",
    }

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean()
        if self.user_cache is not None:
            self._check_second_factor(self.user_cache)
        return cleaned_data

    def _check_second_factor(self, user: Any) -> None:
        if not otp.user_has_device(user):
            return
        code = str(self.cleaned_data.get("otp_token") or "")
        if not code.strip():
            raise ValidationError(self.error_messages["otp_required"], code="otp_required")
        device = otp.verify_code(user, code)
        if device is None:
            security.security_event(
                security.TWO_FACTOR_FAILED, request=self.request, user=user, channel="admin"
            )
            raise ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")
        # django-otp's user_logged_in handler stores it in the session: the session is verified.
        user.otp_device = device
        if otp.is_recovery_device(device) and self.request is not None:
            left = otp.recovery_codes_left(user)
            messages.warning(
                self.request,
                f"You signed in with a recovery code; {left} left. Turn two-factor sign-in off "
                "and on again (Two-factor sign-in) for a new set.",
            )
