"""TOTP two-factor sign-in for the admin (django-otp): enrolment, codes, and the device admin.

A staff member or admin enrols at /admin/two-factor/: the page shows a QR code (an inline SVG
data URI, no outside request) and the key for manual entry; a code from the app confirms the
device, and the page then shows 10 single-use recovery codes (a django-otp static device) once.
From then on the admin login asks for a code (accounts/admin_login.py) and only a session
signed in with one counts as staff (accounts/admin_site.py). The same page turns two-factor
sign-in off, which takes a valid code (TOTP or recovery). Admins remove another user's device in
the admin (Two-factor devices), which removes that user's recovery codes too; nobody sees a
device's key there.
"""

from __future__ import annotations

from base64 import b32encode
from typing import Any

import segno
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import (
    StaticDevice,
    StaticToken,
)
from django_otp.plugins.otp_totp.models import TOTPDevice

from .security import TWO_FACTOR_ENROLLED, TWO_FACTOR_FAILED, TWO_FACTOR_REMOVED, security_event

RECOVERY_CODES = 10
TOTP_DIGITS = 6


def user_has_device(user: Any) -> bool:
    """Whether the user has turned two-factor sign-in on (a confirmed TOTP device); asked
    once per user object (a request's)."""
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, "_shop_has_totp_device", None)
    if cached is None:
        cached = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        user._shop_has_totp_device = cached
    return bool(cached)


def session_is_verified(request: HttpRequest) -> bool:
    """Signed in with a second factor (django-otp's middleware sets `user.is_verified`)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified is not None and is_verified())


def _normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def verify_code(user: Any, code: str) -> Any:
    """The device that accepts `code` (a 6-digit TOTP code, or a recovery code, used up), or
    None. Each device throttles its own failures (django-otp: exponential back-off)."""
    code = _normalise(code)
    if not code:
        return None
    model = TOTPDevice if code.isdigit() and len(code) == TOTP_DIGITS else StaticDevice
    with transaction.atomic():
        devices = model.objects.devices_for_user(user, confirmed=True).select_for_update()
        for device in devices:
            if device.verify_token(code):
                return device
    return None


def is_recovery_device(device: Any) -> bool:
    return isinstance(device, StaticDevice)


def recovery_codes_left(user: Any) -> int:
    count: int = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    return count


def _new_recovery_codes(user: Any) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def _remove_devices(users: Any) -> None:
    TOTPDevice.objects.filter(user__in=users).delete()
    StaticDevice.objects.filter(user__in=users).delete()


def _qr_data_uri(device: Any) -> str:
    uri: str = segno.make_qr(device.config_url, error="m").svg_data_uri(scale=5, border=2)
    return uri


def _grouped_key(device: Any) -> str:
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=64,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


def two_factor_view(site: AdminSite, request: HttpRequest) -> HttpResponse:
    """/admin/two-factor/: enrol (QR, confirm, recovery codes once), or turn off with a code."""
    user = request.user
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": "Two-factor sign-in",
        "subtitle": None,
        "next": _safe_next(request),
    }
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return _enrol(request, user, context)
    response: HttpResponse = _turn_off(request, user, device, context)
    return response


def _safe_next(request: HttpRequest) -> str:
    target = str(request.POST.get("next") or request.GET.get("next") or "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else reverse("admin:index")


def _enrol(request: HttpRequest, user: Any, context: dict[str, Any]) -> HttpResponse:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        with transaction.atomic():
            device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
            confirmed = device.verify_token(_normalise(form.cleaned_data["code"]))
            if confirmed:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
                codes = _new_recovery_codes(user)
        if confirmed:
            security_event(TWO_FACTOR_ENROLLED, request=request, user=user)
            otp_login(request, device)  # this session is signed in with the new device
            context.update(state="codes", recovery_codes=codes)
            return TemplateResponse(request, "admin/two_factor.html", context)
        security_event(TWO_FACTOR_FAILED, request=request, user=user, step="enrolment")
        form.add_error("code", "That code is not right: enter the current code the app shows.")
    context.update(state="enrol", form=form, qr_code=_qr_data_uri(device), key=_grouped_key(device))
    return TemplateResponse(request, "admin/two_factor.html", context)


def _turn_off(request: HttpRequest, user: Any, device: Any, context: dict[str, Any]) -> Any:
    form = CodeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if verify_code(user, form.cleaned_data["code"]) is not None:
            _remove_devices([user.pk])
            security_event(TWO_FACTOR_REMOVED, request=request, user=user, by="self")
            messages.success(
                request,
                "Two-factor sign-in is off, and your recovery codes no longer work. Scan the new "
                "code below to turn it on again.",
            )
            return HttpResponseRedirect(reverse("admin:two_factor"))
        security_event(TWO_FACTOR_FAILED, request=request, user=user, step="turn_off")
        form.add_error("code", "That code is not right (or was already used).")
    context.update(
        state="on", form=form, device=device, recovery_codes_left=recovery_codes_left(user)
    )
    return TemplateResponse(request, "admin/two_factor.html", context)


class TwoFactorDeviceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Admins see who has two-factor sign-in on and may remove a device (a lost phone): the
    user's recovery codes go with it, and they enrol again. Nobody sees or changes a key."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__email",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields
    ordering = ("user__email",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_queryset(request, type(obj).objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        user_ids = list(queryset.values_list("user_id", flat=True))
        _remove_devices(user_ids)
        for user_id in user_ids:
            security_event(TWO_FACTOR_REMOVED, request=request, by="admin", target_user_id=user_id)


def register_device_admin(site: AdminSite) -> None:
    """Replace django-otp's device admins (they show keys, QR codes and recovery codes)."""
    for model in (TOTPDevice, StaticDevice):
        if site.is_registered(model):
            site.unregister(model)
    site.register(TOTPDevice, TwoFactorDeviceAdmin)
