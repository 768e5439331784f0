"""The users console. Every change goes through the services; only admins change anything.

Staff (the Staff group has `view_user`) may look users up and resend a verification email.
Admins change names, roles and suspension, but never their own role or suspension. A user can be
created from an email alone: they get a link to set their password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from common.exceptions import DomainError

from . import security, services
from .models import User


class EmailVerifiedFilter(admin.SimpleListFilter):
    title = "email verified"
    parameter_name = "verified"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(email_verified_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(email_verified_at__isnull=True)
        return queryset


class UserAddForm(forms.ModelForm[User]):
    class Meta:
        model = User
        fields = ("email", "first_name", "last_name", "role")

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email address already exists.")
        return email


# What other apps know of a user, shown on the user's page ("Activity"): orders adds the
# customer's orders (orders/admin.py). Accounts never imports the apps that build on it.
user_page_panels: list[Callable[[User], SafeString]] = []


def _actor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = (
        "email",
        "first_name",
        "last_name",
        "role",
        "is_active",
        "email_verified",
        "date_joined",
    )
    list_filter = ("role", "is_active", EmailVerifiedFilter)
    search_fields = ("email", "first_name", "last_name")
    ordering = ("email",)
    actions = ("suspend_users", "reactivate_users", "resend_verification")
    fields = (
        "email",
        "first_name",
        "last_name",
        "role",
        "is_active",
        "email_verified_at",
        "groups",
        "date_joined",
        "last_login",
        "activity",
    )
    add_fields = ("email", "first_name", "last_name", "role")
    always_read_only = (
        "email",
        "email_verified_at",
        "groups",
        "date_joined",
        "last_login",
        "activity",
    )

    @admin.display(boolean=True, ordering="email_verified_at")
    def email_verified(self, obj: User) -> bool:
        return obj.email_verified

    @admin.display(description="Activity")
    def activity(self, obj: User) -> SafeString | str:
        if not user_page_panels:
            return "—"
        return format_html_join("", "{}", ((panel(obj),) for panel in user_page_panels))

    def get_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        return self.add_fields if obj is None else self.fields

    def get_form(
        self, request: HttpRequest, obj: User | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = UserAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        if obj is None:
            return ()
        if not _actor(request).is_superuser:
            return self.fields
        if obj.pk == request.user.pk:  # no admin demotes or suspends themselves
            return (*self.always_read_only, "role", "is_active")
        return self.always_read_only

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = services.user_create_by_admin(
                actor=_actor(request),
                email=data["email"],
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                role=data.get("role", User.Role.CUSTOMER),
            )
            obj.pk, obj.password, obj.date_joined = (
                created.pk,
                created.password,
                created.date_joined,
            )
            obj._state.adding, obj._state.db = False, created._state.db
            return
        # The form already copied its values onto `obj`; the services compare with the stored
        # row, so they get a fresh copy and the changed fields only.
        stored = User.objects.get(pk=obj.pk)
        changes = {name: data[name] for name in form.changed_data if name in data}
        with security.client_context(request):  # the security events name this client
            services.user_update_by_admin(actor=_actor(request), user=stored, **changes)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Groups follow the role (the services keep them in sync); nothing else to save."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description="Suspend the selected users", permissions=["change"])
    def suspend_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._apply(request, queryset, services.user_suspend, "suspended")

    @admin.action(description="Reactivate the selected users", permissions=["change"])
    def reactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._apply(request, queryset, services.user_reactivate, "reactivated")

    @admin.action(description="Resend the verification email", permissions=["resend_verification"])
    def resend_verification(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset.filter(email_verified_at__isnull=True, is_active=True))
        for user in users:
            services.user_resend_verification(user=user)
        self.message_user(request, f"Verification email queued for {len(users)} user(s).")

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.pk == request.user.pk:
            return False  # suspend or demote others; never remove yourself
        return super().has_delete_permission(request, obj)

    def has_resend_verification_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[User], service: Any, done: str
    ) -> None:
        count = 0
        for user in queryset:
            try:
                with security.client_context(request):  # the security events name this client
                    service(actor=_actor(request), user=user)
            except DomainError as error:
                self.message_user(
                    request, f"Not {done}: {user.email} ({error.detail})", messages.ERROR
                )
            else:
                count += 1
        self.message_user(request, f"{count} user(s) {done}.")


# simplejwt's token tables are bookkeeping, not something staff act on: suspending a user, a
# password change and logout end sessions through the services. Out of the menu for everyone.
for _model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
