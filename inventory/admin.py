"""Staff console for the catalog and stock. Every change goes through `inventory.services`.

The category, product (list, form, images inline, stock summary, adjust-stock and deactivate
pages) and stock-movement admins, as Django registers them. Their forms and the stock filter are
in `admin_forms`, the CSV pages in `admin_csv`, the bulk actions in `admin_bulk`, and the rules
behind those two in `inventory.bulk`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import F, ForeignObjectRel
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import User
from common.admin import ReadOnlyAdmin
from common.exceptions import DomainError
from common.money import store_money

from . import admin_bulk, admin_csv, services
from .admin_forms import (
    CategoryAdminForm,
    LowStockFilter,
    ProductAddForm,
    ProductImageAdminForm,
    ProductImageFormSet,
    StockAdjustForm,
)
from .admin_forms import ProductAdminForm as ProductAdminForm  # imported from here too
from .bulk import SetActive, bulk_apply
from .images import (
    image_url,
    product_image_create,
    product_image_delete,
    product_image_dict,
    product_image_update,
)
from .models import Category, Product, ProductImage, StockMovement, store_currency

RECENT_MOVEMENTS = 20


def _acting_user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


# =============================================================================
# Categories
# =============================================================================
@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    form = CategoryAdminForm
    list_display = ("indented_name", "full_path", "slug", "depth")
    search_fields = ("name", "full_path", "slug")
    ordering = ("full_path",)
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="name", ordering="full_path")
    def indented_name(self, category: Category) -> SafeString:
        return format_html(
            '<span style="padding-left:{}em">{}</span>', category.depth * 1.5, category.name
        )

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if change:
                services.category_update(
                    category=obj,
                    name=data["name"],
                    slug=data["slug"],
                    description=data["description"],
                    parent=data["parent"],
                )
            else:
                created = services.category_create(
                    name=data["name"],
                    slug=data["slug"],
                    parent=data["parent"],
                    description=data["description"],
                )
                obj.pk = created.pk
        except DomainError as error:
            # Rare (a race with another editor): the form already checked what it could.
            self.message_user(request, error.detail, level=messages.ERROR)

    def delete_model(self, request: HttpRequest, obj: Category) -> None:
        try:
            services.category_delete(category=obj)
        except DomainError as error:
            self.message_user(request, error.detail, level=messages.ERROR)


# =============================================================================
# Products
# =============================================================================
def has_protected_history(obj: models.Model) -> bool:
    """Whether a row is referenced through a PROTECT foreign key (a product's ledger rows or order
    lines), so deleting it would be refused: the console offers Deactivate instead of Delete.
    One EXISTS per protecting relation; the database's PROTECT stays the rule."""
    return any(
        relation.related_model._base_manager.filter(**{relation.field.name: obj}).exists()
        # Hidden relations too: order lines point at products with related_name="+".
        for relation in type(obj)._meta.get_fields(include_hidden=True)
        if isinstance(relation, ForeignObjectRel) and relation.on_delete is models.PROTECT
    )


class ProductImageInline(admin.TabularInline[ProductImage, Product]):
    model = ProductImage
    form = ProductImageAdminForm
    formset = ProductImageFormSet
    fields = ("preview", "file", "alt", "position", "width", "height")
    readonly_fields = ("preview", "width", "height")
    ordering = ("position", "id")
    extra = 1

    @admin.display(description="thumbnail")
    def preview(self, image: ProductImage) -> SafeString | str:
        if not image.pk:
            return ""
        data = product_image_dict(image)
        return format_html(
            '<a href="{}"><img src="{}" alt="{}" style="max-width:120px;max-height:120px"></a>',
            data["url"],
            data["thumbnail_url"],
            image.alt,
        )


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin[Product]):
    """Products, with their stock, images, CSV import/export and bulk changes.

    A product with stock history or orders is never deleted (the ledger PROTECTs it): its page
    offers Deactivate instead of Delete, and the list has no bulk delete."""

    form = ProductAdminForm
    inlines = [ProductImageInline]
    change_list_template = "admin/inventory/product/change_list.html"
    change_form_template = "admin/inventory/product/change_form.html"
    # Sized for 1280 px beside the navigation and the filters: the category sits under the name
    # (one column less), and the stylesheet cuts long names short.
    list_display = ("thumbnail", "sku", "name_and_category", "price", "available", "active")
    list_display_links = ("sku", "name_and_category")
    list_select_related = ("category", "stock")
    list_filter = ("is_active", LowStockFilter, ("category", admin.RelatedOnlyFieldListFilter))
    search_fields = ("sku", "name")
    readonly_fields = (
        "currency",
        "slug",
        "stock_summary",
        "recent_movements",
        "created_at",
        "updated_at",
    )
    actions = [*admin_bulk.ACTIONS, admin_csv.export_selected]

    class Media:
        css = {"all": ["inventory/admin.css"]}

    def get_actions(self, request: HttpRequest) -> Any:
        """No bulk delete: most products have stock history; one at a time, where allowed."""
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or not has_protected_history(obj)

    def get_form(
        self, request: HttpRequest, obj: Product | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ProductAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Product | None = None) -> Any:
        main = (
            None,
            {
                "fields": (
                    "sku",
                    "name",
                    "description",
                    "category",
                    ("price_cents", "currency"),
                    "metadata",
                    "is_active",
                    "low_stock_threshold",
                )
            },
        )
        if obj is None:
            return [main, ("Stock", {"fields": ("initial_stock",)})]
        return [
            main,
            ("Stock", {"fields": ("stock_summary", "recent_movements")}),
            ("Record", {"fields": ("slug", "created_at", "updated_at")}),
        ]

    @admin.display(description="image")
    def thumbnail(self, product: Product) -> SafeString:
        """The primary image's thumbnail, from the column the image services keep (no query)."""
        if not product.primary_image:
            return format_html(
                '<span class="product-thumb product-thumb-none" title="{}"></span>', "No image"
            )
        return format_html(
            '<img class="product-thumb" src="{}" alt="" loading="lazy" width="40" height="40">',
            image_url(product.primary_image),
        )

    @admin.display(description="name", ordering="name")
    def name_and_category(self, product: Product) -> SafeString:
        return format_html(
            '<span class="product-name" title="{}">{}</span>'
            '<span class="product-category">{}</span>',
            product.name,
            product.name,
            product.category.full_path,
        )

    @admin.display(description="active", boolean=True, ordering="is_active")
    def active(self, product: Product) -> bool:
        return product.is_active

    @admin.display(description="price", ordering="price_cents")
    def price(self, product: Product) -> str:
        return store_money(product.price_cents)

    @admin.display(ordering=F("stock__on_hand") - F("stock__reserved"))
    def available(self, product: Product) -> int:
        return product.stock.available

    @admin.display(description="currency")
    def currency(self, product: Product) -> str:
        return product.currency or store_currency()

    @admin.display(description="stock")
    def stock_summary(self, product: Product) -> SafeString:
        level = product.stock
        url = reverse("admin:inventory_product_adjust_stock", args=[product.pk])
        return format_html(
            "{} on hand, {} reserved, <strong>{} available</strong> &nbsp; "
            '<a class="button" href="{}">Adjust stock</a>',
            level.on_hand,
            level.reserved,
            level.available,
            url,
        )

    @admin.display(description=f"last {RECENT_MOVEMENTS} movements")
    def recent_movements(self, product: Product) -> SafeString:
        movements = product.movements.select_related("actor").order_by("-created_at", "-id")[
            :RECENT_MOVEMENTS
        ]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    movement.created_at.strftime("%Y-%m-%d %H:%M"),
                    movement.reason,
                    f"{movement.delta_on_hand:+}",
                    f"{movement.delta_reserved:+}",
                    movement.on_hand_after,
                    movement.reserved_after,
                    movement.actor or "",
                    movement.reference or movement.note,
                )
                for movement in movements
            ),
        )
        return format_html(
            "<table><thead><tr><th>time</th><th>reason</th><th>Δ on hand</th>"
            "<th>Δ reserved</th><th>on hand</th><th>reserved</th><th>by</th><th>ref / note</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        threshold = data.pop("low_stock_threshold")
        initial_stock = data.pop("initial_stock", None) or 0
        if change:
            original = Product.objects.get(pk=obj.pk)
            changes: Any = {field: data[field] for field in form.changed_data if field in data}
            if "low_stock_threshold" in form.changed_data:
                changes["low_stock_threshold"] = threshold
            services.product_update(product=original, changes=changes)
        else:
            # Units on hand from the start are a `receipt` in the ledger (product_create books it).
            created = services.product_create(
                **data,
                low_stock_threshold=threshold,
                on_hand=initial_stock,
                actor=_acting_user(request),
            )
            obj.pk, obj.slug = created.pk, created.slug

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Images go through `inventory.images` (validation, ordering, renditions, file removal),
        not through the formset's own save."""
        if formset.model is not ProductImage:
            super().save_formset(request, form, formset, change)
            return
        product = form.instance
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for image_form in formset.initial_forms:
            image = image_form.instance
            if image_form in formset.deleted_forms:
                product_image_delete(image=image)
                formset.deleted_objects.append(image)
            elif image_form.has_changed():
                data = image_form.cleaned_data
                product_image_update(image=image, alt=data["alt"], position=data["position"])
                formset.changed_objects.append((image, image_form.changed_data))
        for image_form in formset.extra_forms:
            if not image_form.has_changed() or image_form in formset.deleted_forms:
                continue
            assert image_form.cleaned_image is not None  # clean_file ran on the upload
            data = image_form.cleaned_data
            image = product_image_create(
                product=product,
                upload=image_form.cleaned_image,
                alt=data["alt"],
                position=data["position"],
            )
            formset.new_objects.append(image)

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        try:
            services.product_delete(product=obj)
        except DomainError as error:
            self.message_user(request, error.detail, level=messages.ERROR)

    def get_urls(self) -> list[URLPattern]:
        """The product's own pages, then the CSV pages (`admin_csv`), named as Django names the
        admin's: `admin:inventory_product_<page>`."""
        pages: list[tuple[str, Callable[..., HttpResponseBase], str]] = [
            ("<int:product_id>/adjust-stock/", self.adjust_stock_view, "adjust_stock"),
            ("<int:product_id>/deactivate/", self.deactivate_view, "deactivate"),
            ("import-csv/", partial(admin_csv.import_csv_view, self), "import_csv"),
            ("import-csv/<int:job_id>/", partial(admin_csv.import_job_view, self), "import_job"),
            (
                "import-csv/<int:job_id>/confirm/",
                partial(admin_csv.import_confirm_view, self),
                "import_confirm",
            ),
            ("export-csv/", partial(admin_csv.export_csv_view, self), "export_csv"),
        ]
        return [
            *(
                path(route, self.admin_site.admin_view(view), name=f"inventory_product_{page}")
                for route, view, page in pages
            ),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_import_csv": self.has_add_permission(request)
            and self.has_change_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def deactivate_view(self, request: HttpRequest, product_id: int) -> HttpResponse:
        """Take a product off sale for good (the Delete of a product with history): it stays in
        the ledger and in orders, customers stop seeing it. A confirmation page, then the change
        through `inventory.bulk`, as the list's Deactivate action does."""
        product = get_object_or_404(Product.objects.select_related("category"), pk=product_id)
        if not self.has_change_permission(request, product):
            return HttpResponse(status=403)
        change = SetActive(False)
        if request.method == "POST" and request.POST.get(admin_bulk.STAGE) == "apply":
            bulk_apply(change, product_ids=[product.pk])
            self.message_user(
                request,
                f"{product.sku} is deactivated: customers no longer see it.",
                level=messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:inventory_product_change", args=[product.pk])
            )
        planned = change.plan([product])
        context = {
            **admin_bulk.confirmation_context(
                self,
                request,
                title=f"Deactivate {product.sku}",
                planned=planned,
                unchanged=1 - len(planned),
            ),
            "stage_name": admin_bulk.STAGE,
            "next_stage": "apply",
            "form_action": reverse("admin:inventory_product_deactivate", args=[product.pk]),
        }
        return TemplateResponse(request, admin_bulk.TEMPLATE, context)

    def adjust_stock_view(self, request: HttpRequest, product_id: int) -> HttpResponse:
        """Receive, write off or correct stock: the same service as the API's adjust endpoint."""
        product = get_object_or_404(Product.objects.select_related("stock"), pk=product_id)
        if not self.has_change_permission(request, product):
            return HttpResponse(status=403)
        form = StockAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                movement = services.stock_adjust(
                    product_id=product.pk,
                    delta=form.cleaned_data["delta"],
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                    actor=_acting_user(request),
                )
            except DomainError as error:
                form.add_error(None, " ".join(item.detail for item in error.items))
            else:
                self.message_user(
                    request,
                    f"{product.sku}: {movement.delta_on_hand:+} ({movement.reason}); "
                    f"now {movement.on_hand_after} on hand.",
                    level=messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:inventory_product_change", args=[product.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Adjust stock: {product}",
            "product": product,
            "level": product.stock,
            "form": form,
        }
        return TemplateResponse(request, "admin/inventory/product/adjust_stock.html", context)


# =============================================================================
# Stock ledger (read-only)
# =============================================================================
@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin[StockMovement]):
    list_display = (
        "created_at",
        "product",
        "reason",
        "delta_on_hand",
        "delta_reserved",
        "on_hand_after",
        "reserved_after",
        "actor",
        "reference",
    )
    list_filter = ("reason", "created_at")
    list_select_related = ("product", "actor")
    search_fields = ("product__sku", "reference", "note")
    date_hierarchy = "created_at"
    show_full_result_count = False
