"""The outbox in the admin (admins only): what waits, what failed, and a way to try again.

A message given up after its last attempt (`failed_at`) stays until a person looks: its error is
shown here, and "Try again now" puts it back in the relay's hands."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import OutboxMessage


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
