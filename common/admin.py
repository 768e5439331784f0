"""Admin pieces every app shares, and the outbox in the admin.

`ReadOnlyAdmin` is the base of the admins whose rows change only through the services (stock
movements, orders, payments): view-only pages, even for a superuser, with a hook for what an
object's page shows beside its fields.

The outbox (admins only): what waits, what failed, and a way to try again. A message given up
after its last attempt (`failed_at`) stays until a person looks: its error is shown here, and
"Try again now" puts it back in the relay's hands."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .models import OutboxMessage

_ModelT = TypeVar("_ModelT", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[_ModelT]):
    """Shows rows and never writes them: no add, change or delete (page or forged POST), whoever
    asks. What staff may do to such a row is a button that calls a service."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _ModelT | None = None) -> bool:
        return False

    def holds_change_permission(self, request: HttpRequest) -> bool:
        """Whether the user holds the model's change permission (`<app>.change_<model>`), which
        the pages above ignore: for a subclass whose buttons need it."""
        return super().has_change_permission(request)

    def extra_object_context(self, request: HttpRequest, obj: _ModelT) -> dict[str, Any]:
        """What an object's page adds to its template context; nothing unless overridden."""
        return {}

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: _ModelT | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context.update(self.extra_object_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting"), ("failed", "Given up"), ("done", "Done")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[OutboxMessage]
    ) -> QuerySet[OutboxMessage]:
        if self.value() == "waiting":
            return queryset.filter(done_at__isnull=True, failed_at__isnull=True)
        if self.value() == "failed":
            return queryset.filter(done_at__isnull=True, failed_at__isnull=False)
        if self.value() == "done":
            return queryset.filter(done_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("task", "state", "attempts", "created_at", "available_at", "last_error")
    list_filter = (OutboxStateFilter, "task")
    search_fields = ("=id", "task")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]
    actions = ("try_again",)

    @admin.display(description="state")
    def state(self, obj: OutboxMessage) -> str:
        if obj.done_at:
            return "done"
        return "given up" if obj.failed_at else "waiting"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Try again now", permissions=["change"])
    def try_again(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = queryset.filter(done_at__isnull=True).update(
            failed_at=None, available_at=timezone.now(), relayed_at=None, lease_until=None
        )
        self.message_user(
            request, f"{count} message(s) handed back to the relay.", level=messages.SUCCESS
        )
