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


class MoveForm(forms.Form):
    category = forms.ModelChoiceField(queryset=Category.objects.order_by("full_path"))


class PriceForm(forms.Form):
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
    form_class: type[forms.Form] | None,
    make_change: Callable[[dict[str, Any]], BulkChange],
) -> HttpResponse | None:
    """One action's steps: the form (if it asks for something), the confirmation page, then the
    change. Each step posts back to the product list with the selected ids, as Django's own
    delete confirmation does; None returns to the list."""
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
        data = form.cleaned_data if form is not None else {}
        try:
            change = make_change(data)
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


@admin.action(description="Activate selected products", permissions=["change"])
def activate(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, queryset: QuerySet[Product]
) -> HttpResponse | None:
    return run_bulk_action(
        model_admin,
        request,
        queryset,
        title="Activate products",
        form_class=None,
        make_change=lambda _: SetActive(True),
    )


@admin.action(description="Deactivate selected products", permissions=["change"])
def deactivate(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, queryset: QuerySet[Product]
) -> HttpResponse | None:
    return run_bulk_action(
        model_admin,
        request,
        queryset,
        title="Deactivate products",
        form_class=None,
        make_change=lambda _: SetActive(False),
    )


@admin.action(description="Move selected products to a category", permissions=["change"])
def move_to_category(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, queryset: QuerySet[Product]
) -> HttpResponse | None:
    return run_bulk_action(
        model_admin,
        request,
        queryset,
        title="Move products to a category",
        form_class=MoveForm,
        make_change=lambda data: MoveToCategory(data["category"]),
    )


@admin.action(
    description="Change prices of selected products by a percentage", permissions=["change"]
)
def change_price(
    model_admin: admin.ModelAdmin[Product], request: HttpRequest, queryset: QuerySet[Product]
) -> HttpResponse | None:
    return run_bulk_action(
        model_admin,
        request,
        queryset,
        title="Change prices by a percentage",
        form_class=PriceForm,
        make_change=lambda data: ChangePrice(data["percent"]),
    )


ACTIONS = [activate, deactivate, move_to_category, change_price]
