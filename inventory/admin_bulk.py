"""The product list's bulk actions: activate, deactivate, move to a category, change prices.

Each action takes the selected products through a confirmation page that lists every product it
will change (before → after), and only the confirm button applies it. The rules (rounding, what
counts as a change) and the writes are `inventory.bulk`'s; this module asks and shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from common.exceptions import DomainError

from .bulk import (
    PERCENT_MAX,
    PERCENT_MIN,
    BulkChange,
    ChangePrice,
    MoveToCategory,
    PlannedChange,
    SetActive,
    bulk_apply,
    products_for_bulk,
)
from .models import Category, Product

STAGE = "_bulk_stage"
# The confirmation page lists this many changes and counts the rest.
LISTED_MAX = 200
TEMPLATE = "admin/inventory/product/bulk_change.html"


class ChangeForm(forms.Form):
    """What a bulk action asks staff for, and the change it makes of their answer."""

    def change(self) -> BulkChange:
        raise NotImplementedError


class MoveForm(ChangeForm):
    category = forms.ModelChoiceField(queryset=Category.objects.order_by("full_path"))

    def change(self) -> BulkChange:
        return MoveToCategory(self.cleaned_data["category"])


class PriceForm(ChangeForm):
    percent = forms.DecimalField(
        label="Change by (%)",
        max_digits=6,
        decimal_places=2,
        min_value=PERCENT_MIN,
        max_value=PERCENT_MAX,
        # Text, not a number input: browsers refuse "+10" in one.
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 8}),
        help_text="e.g. 10 raises prices by 10 %, -15 lowers them by 15 %; rounded to the cent.",
    )

    def change(self) -> BulkChange:
        return ChangePrice(self.cleaned_data["percent"])


def confirmation_context(
    model_admin: admin.ModelAdmin[Product],
    request: HttpRequest,
    *,
    title: str,
    planned: Sequence[PlannedChange],
    unchanged: int,
) -> dict[str, Any]:
    """What a confirmation page shows: the changes (up to `LISTED_MAX`), how many stay as is."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": Product._meta,
        "title": title,
        "planned": planned[:LISTED_MAX],
        "more": max(0, len(planned) - LISTED_MAX),
        "change_count": len(planned),
        "unchanged": unchanged,
    }


def run_bulk_action(
    model_admin: admin.ModelAdmin[Product],
    request: HttpRequest,
    queryset: QuerySet[Product],
    *,
    title: str,
    form_class: type[ChangeForm] | None = None,
    change: BulkChange | None = None,
) -> HttpResponse | None:
    """One action's steps: the form (if it asks for something), the confirmation page, then the
    change. Each step posts back to the product list with the selected ids, as Django's own
    delete confirmation does; None returns to the list. The change is the form's, made of the
    answer, or `change` for an action that asks nothing."""
    action = request.POST["action"]
    # An action that asks nothing starts at its confirmation page.
    stage = request.POST.get(STAGE, "" if form_class else "preview")
    form = form_class(request.POST if stage else None) if form_class else None
    product_ids = sorted(queryset.values_list("pk", flat=True))
    context: dict[str, Any] = {
        "action": action,
        "selected_ids": product_ids,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "stage_name": STAGE,
        "form": form,
    }
    if stage and (form is None or form.is_valid()):
        try:
            if form is not None:
                change = form.change()
            assert change is not None, "an action without a form names its change"
            if stage == "apply":
                applied = bulk_apply(change, product_ids=product_ids)
        except DomainError as error:
            model_admin.message_user(request, error.detail, level=messages.ERROR)
            return None
        if stage == "apply":
            model_admin.message_user(
                request,
                f"{change.describe()}: {len(applied)} product(s) changed.",
                level=messages.SUCCESS,
            )
            return None
        products = products_for_bulk(product_ids).order_by("sku")
        planned = change.plan(products)
        context |= confirmation_context(
            model_admin,
            request,
            title=f"{change.describe()}: confirm",
            planned=planned,
            unchanged=len(product_ids) - len(planned),
        )
        context["next_stage"] = "apply"
        return TemplateResponse(request, TEMPLATE, context)
    context |= {
        **model_admin.admin_site.each_context(request),
        "opts": Product._meta,
        "title": title,
        "selected_count": len(product_ids),
        "next_stage": "preview",
    }
    return TemplateResponse(request, TEMPLATE, context)


BulkAction = Callable[
    [admin.ModelAdmin[Product], HttpRequest, QuerySet[Product]], HttpResponse | None
]


def bulk_action(
    name: str,
    *,
    description: str,
    title: str,
    form_class: type[ChangeForm] | None = None,
    change: BulkChange | None = None,
) -> BulkAction:
    """The product list's action `name` (what the list posts as `action`, and the function's
    name, as Django's admin reads it): `run_bulk_action` with this title and form or change."""

    @admin.action(description=description, permissions=["change"])
    def action(
        model_admin: admin.ModelAdmin[Product], request: HttpRequest, queryset: QuerySet[Product]
    ) -> HttpResponse | None:
        return run_bulk_action(
            model_admin, request, queryset, title=title, form_class=form_class, change=change
        )

    action.__name__ = action.__qualname__ = name
    return action


def _set_active(active: bool) -> BulkAction:
    """Activate or deactivate: one change that asks nothing, in two actions."""
    name = "activate" if active else "deactivate"
    return bulk_action(
        name,
        description=f"{name.capitalize()} selected products",
        title=f"{name.capitalize()} products",
        change=SetActive(active),
    )


ACTIONS = [
    _set_active(True),
    _set_active(False),
    bulk_action(
        "move_to_category",
        description="Move selected products to a category",
        title="Move products to a category",
        form_class=MoveForm,
    ),
    bulk_action(
        "change_price",
        description="Change prices of selected products by a percentage",
        title="Change prices by a percentage",
        form_class=PriceForm,
    ),
]
