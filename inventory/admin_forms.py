"""The catalog console's forms and its stock filter: what staff type, checked before the admin
saves it through `inventory.services`.

Fields are checked with the services' own validators (`validate_sku`, `validate_metadata`, the
image checks of `inventory.images`), so the console refuses what the API refuses, with the same
words. Saving is the admin's (`inventory.admin`), always through the services.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest

from common.money import MoneyField

from . import services
from .exceptions import CatalogValidationError
from .images import CleanedImage, InvalidImage, image_clean
from .models import Category, Product, ProductImage, StockMovement


class CategoryAdminForm(forms.ModelForm[Category]):
    class Meta:
        model = Category
        fields = ("name", "slug", "parent", "description")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        parent = cleaned.get("parent")
        if (
            self.instance.pk
            and parent is not None
            and parent.is_descendant_of_or_self(self.instance)
        ):
            self.add_error("parent", "A category cannot be moved under itself or a descendant.")
        return cleaned


class ProductAdminForm(forms.ModelForm[Product]):
    # Typed as money ("19.99"), stored as cents; the currency is the store's, shown read-only.
    price_cents = MoneyField(label="Price")
    low_stock_threshold = forms.IntegerField(min_value=0, initial=0)

    class Meta:
        model = Product
        fields = (
            "sku",
            "name",
            "description",
            "category",
            "price_cents",
            "metadata",
            "is_active",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["low_stock_threshold"].initial = self.instance.stock.low_stock_threshold

    def _service_check(self, field: str, check: Any) -> Any:
        try:
            return check(self.cleaned_data[field])
        except CatalogValidationError as error:
            raise forms.ValidationError(error.detail) from error

    def clean_sku(self) -> str:
        return str(self._service_check("sku", services.validate_sku))

    def clean_metadata(self) -> dict[str, Any]:
        return dict(self._service_check("metadata", services.validate_metadata))


class ProductAddForm(ProductAdminForm):
    initial_stock = forms.IntegerField(
        min_value=0,
        required=False,
        initial=0,
        help_text="Units on hand now; booked in the stock ledger as a receipt.",
    )


class LowStockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("low", "Low (available ≤ threshold)"), ("out", "Out of stock")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "low":
            return queryset.filter(
                stock__on_hand__lte=F("stock__reserved") + F("stock__low_stock_threshold")
            )
        if self.value() == "out":
            return queryset.filter(stock__on_hand__lte=F("stock__reserved"))
        return queryset


class StockAdjustForm(forms.Form):
    delta = forms.IntegerField(help_text="Units to add (positive) or remove (negative).")
    reason = forms.ChoiceField(
        choices=[
            (value, label)
            for value, label in StockMovement.Reason.choices
            if value in StockMovement.MANUAL_REASONS
        ]
    )
    note = forms.CharField(required=False, max_length=500)

    def clean_delta(self) -> int:
        delta = int(self.cleaned_data["delta"])
        if delta == 0:
            raise forms.ValidationError("Must not be zero.")
        return delta


class ProductImageAdminForm(forms.ModelForm[ProductImage]):
    """One image row: a new upload runs the API's validation (`inventory.images.image_clean`);
    an existing image's file is fixed (upload a new one instead)."""

    position = forms.IntegerField(
        min_value=0, required=False, help_text="0 is the primary; blank: after the others"
    )

    class Meta:
        model = ProductImage
        fields = ("file", "alt", "position")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cleaned_image: CleanedImage | None = None
        if self.instance.pk:
            self.fields["file"].disabled = True

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if upload is not None and not self.instance.pk:
            try:
                self.cleaned_image = image_clean(upload)
            except InvalidImage as error:
                raise forms.ValidationError(error.detail) from error
        return upload


class ProductImageFormSet(
    forms.BaseInlineFormSet[ProductImage, Product, forms.ModelForm[ProductImage]]
):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A product form posted without the image rows (a script, an older page) changes no
        # image, rather than failing on the missing management form.
        data = kwargs.get("data")
        prefix = kwargs.get("prefix") or self.get_default_prefix()
        if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
            data = data.copy()
            data[f"{prefix}-TOTAL_FORMS"] = data[f"{prefix}-INITIAL_FORMS"] = "0"
            kwargs["data"] = data
        super().__init__(*args, **kwargs)
