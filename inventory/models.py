"""Catalog (category tree, products) and stock (one level per product, an append-only ledger).

The stock invariant `0 <= reserved <= on_hand` is guarded by the database first (named check
constraints); `inventory.services` changes levels only through single conditional UPDATEs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Cast, Lower
from django.db.models.signals import post_delete
from django.dispatch import receiver

from common.models import TimeStampedModel

METADATA_MAX_BYTES = 16 * 1024
PATH_SEPARATOR = "/"


def store_currency() -> str:
    return str(settings.STORE_CURRENCY)


class Category(models.Model):
    """A node of the category tree, stored as a materialized path.

    `tree_path` holds the ids from the root down, each followed by "/" ("3/17/42/"), so all
    descendants of a node are one indexed prefix query. `full_path` is the same path spelled with
    names ("Electronics/Audio/Headphones"); it is what the API calls `path` and what the CSV uses.
    Both are maintained by `inventory.services` (create, rename, move) and never by hand.
    """

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    tree_path = models.CharField(max_length=255, editable=False, default="")
    full_path = models.CharField(max_length=1000, editable=False, default="")
    depth = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ("full_path",)
        indexes = [
            models.Index(
                fields=["tree_path"],
                name="inventory_category_tree_idx",
                opclasses=["varchar_pattern_ops"],
            ),
        ]
        constraints = [
            # Sibling names are unique (so a name path names one category), regardless of case.
            models.UniqueConstraint(Lower("full_path"), name="inventory_category_path_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.full_path or self.name

    def is_descendant_of_or_self(self, other: Category) -> bool:
        return bool(other.tree_path) and self.tree_path.startswith(other.tree_path)


class Product(TimeStampedModel):
    name = models.CharField(max_length=200)
    sku = models.CharField("SKU", max_length=64)
    # Derived from name and SKU (see services.product_slug) and a lookup key of the API
    # (`products/{id or slug}/`): unique regardless of case, and never all digits (an id).
    # Indexed by `inventory_product_slug_ci_unique` (lower(slug)) below.
    slug = models.SlugField(max_length=255, db_index=False)
    description = models.TextField(blank=True)
    # Indexed by `inventory_product_cat_idx` (category, is_active) below.
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", db_index=False
    )
    price_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default=store_currency)
    metadata = models.JSONField(default=dict, blank=True)
    # The primary image's thumbnail (its original until the thumbnail is made), kept by the
    # image services (`inventory.images.primary_image_refresh`): the list reads one column
    # instead of a subquery per row. "" when the product has no image.
    primary_image = models.CharField(
        max_length=255, blank=True, default="", db_default="", editable=False
    )
    is_active = models.BooleanField(default=True)
    # Kept current by PostgreSQL itself on every INSERT/UPDATE, bulk ones included.
    search_vector = models.GeneratedField(
        expression=SearchVector("name", weight="A", config="english")
        + SearchVector("sku", weight="A", config="english")
        + SearchVector("description", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ("id",)
        indexes = [
            GinIndex(fields=["search_vector"], name="inventory_product_search_idx"),
            GinIndex(
                fields=["metadata"],
                name="inventory_product_metadata_idx",
                opclasses=["jsonb_path_ops"],
            ),
            models.Index(fields=["category", "is_active"], name="inventory_product_cat_idx"),
            models.Index(fields=["price_cents"], name="inventory_product_price_idx"),
            models.Index(fields=["name"], name="inventory_product_name_idx"),
        ]
        constraints = [
            models.UniqueConstraint(Lower("sku"), name="inventory_product_sku_ci_unique"),
            models.UniqueConstraint(Lower("slug"), name="inventory_product_slug_ci_unique"),
            # A slug that could be read as an id (or is empty) would shadow or break the route.
            models.CheckConstraint(
                condition=~Q(slug__regex=r"^[0-9]*$"), name="inventory_product_slug_not_numeric"
            ),
            models.CheckConstraint(
                condition=Q(price_cents__gte=0), name="inventory_product_price_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(
                    models.lookups.Exact(
                        models.Func(
                            F("metadata"), function="jsonb_typeof", output_field=models.TextField()
                        ),
                        "object",
                    )
                ),
                name="inventory_product_metadata_object",
            ),
            models.CheckConstraint(
                condition=Q(
                    models.lookups.LessThanOrEqual(
                        models.Func(
                            Cast("metadata", models.TextField()),
                            function="octet_length",
                            output_field=models.IntegerField(),
                        ),
                        METADATA_MAX_BYTES,
                    )
                ),
                name="inventory_product_metadata_size",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class StockLevel(models.Model):
    """How many units of one product are on hand and how many of those are reserved by orders."""

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="stock"
    )
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    low_stock_threshold = models.IntegerField(default=0)
    # True while `available <= low_stock_threshold` and staff were told; cleared when it rises
    # above again, so each crossing sends exactly one alert.
    low_stock_alerted = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(on_hand__gte=0), name="inventory_stocklevel_on_hand_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="inventory_stocklevel_reserved_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")),
                name="inventory_stocklevel_reserved_lte_on_hand",
            ),
            models.CheckConstraint(
                condition=Q(low_stock_threshold__gte=0),
                name="inventory_stocklevel_threshold_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.available <= self.low_stock_threshold


class MovementReason(models.TextChoices):
    RECEIPT = "receipt", "Receipt"
    ADJUSTMENT = "adjustment", "Adjustment"
    DAMAGE = "damage", "Damage"
    RETURN = "return", "Return"
    CORRECTION = "correction", "Correction"
    IMPORT = "import", "Import"
    RESERVATION = "reservation", "Reservation"
    RELEASE = "release", "Release"
    SALE = "sale", "Sale"
    RESTOCK = "restock", "Restock"


class StockMovement(models.Model):
    """One append-only ledger row per change of a stock level, written in the same transaction."""

    Reason = MovementReason

    MANUAL_REASONS: ClassVar[tuple[str, ...]] = (
        Reason.RECEIPT,
        Reason.ADJUSTMENT,
        Reason.DAMAGE,
        Reason.RETURN,
        Reason.CORRECTION,
    )

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="movements")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    delta_on_hand = models.IntegerField(default=0)
    delta_reserved = models.IntegerField(default=0)
    on_hand_after = models.IntegerField()
    reserved_after = models.IntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reference = models.CharField(max_length=64, blank=True, db_index=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["product", "-created_at", "-id"], name="inventory_movement_product_idx"
            ),
            models.Index(fields=["-created_at", "-id"], name="inventory_movement_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(delta_on_hand=0, delta_reserved=0),
                name="inventory_movement_changes_something",
            ),
            models.CheckConstraint(
                condition=Q(on_hand_after__gte=0)
                & Q(reserved_after__gte=0)
                & Q(reserved_after__lte=F("on_hand_after")),
                name="inventory_movement_after_valid",
            ),
            models.CheckConstraint(
                condition=Q(reason__in=MovementReason.values),
                name="inventory_movement_reason_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.product_id}: {self.delta_on_hand:+}/{self.delta_reserved:+}"


def _image_upload_to(image: ProductImage, filename: str) -> str:
    # Names are chosen by `inventory.images` (unique, content never changes under a name); this
    # only serves the admin's and Django's own code paths that still ask a field for one.
    return f"products/{image.product_id}/{filename}"


class ProductImage(models.Model):
    """A picture of a product; the one with the lowest `position` is the primary.

    `file` is the cleaned original (EXIF stripped, orientation applied); `thumbnail` and `medium`
    are WebP renditions made after the commit by `inventory.tasks.make_image_renditions`, empty
    until then. File names are unique (a new upload never reuses one), so every URL can be cached
    forever. Files are removed after the row's deletion commits (also when the product's deletion
    cascades to the row): see `inventory.images`.
    """

    # Indexed by `inventory_image_order_idx` (product, position, id) below.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="images", db_index=False
    )
    file = models.FileField(upload_to=_image_upload_to, max_length=255)
    thumbnail = models.FileField(upload_to=_image_upload_to, max_length=255, blank=True)
    medium = models.FileField(upload_to=_image_upload_to, max_length=255, blank=True)
    alt = models.CharField(max_length=255, blank=True)
    position = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("product", "position", "id")
        indexes = [
            models.Index(fields=["product", "position", "id"], name="inventory_image_order_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(width__gt=0) & Q(height__gt=0), name="inventory_image_size_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}#{self.position}: {self.file.name}"


@receiver(post_delete, sender=ProductImage, dispatch_uid="inventory.product_image_files")
def _product_image_deleted(
    sender: type[ProductImage], instance: ProductImage, **kwargs: Any
) -> None:
    """Storage housekeeping, not a domain rule: whatever deleted the row (the image service, the
    admin inline, a product's deletion cascading), its files go once that deletion commits."""
    from .images import image_files_delete_after_commit

    image_files_delete_after_commit(instance)


class CatalogImportJob(TimeStampedModel):
    """A catalog CSV uploaded in the staff console: previewed (a dry run), then imported.

    The file itself is kept in the row (`content`), so whichever worker runs a large file's job
    reads it from PostgreSQL, like the page that shows its progress; the row is the job's whole
    state. Small files are previewed and imported in the request, large ones by
    `inventory.tasks.run_catalog_import_job` (see `inventory.bulk`).
    """

    class Status(models.TextChoices):
        PREVIEW_QUEUED = "preview_queued", "Waiting to be checked"
        PREVIEWING = "previewing", "Checking"
        PREVIEWED = "previewed", "Checked"
        IMPORT_QUEUED = "import_queued", "Waiting to be imported"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        REJECTED = "rejected", "Not imported: bad rows"
        FAILED = "failed", "Failed"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    file_name = models.CharField(max_length=255)
    content = models.BinaryField()
    size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices)
    # Whether the file runs on a worker (large) or in the request (small).
    in_background = models.BooleanField(default=False)
    # Progress of the current run (bytes of the file read), written while it runs.
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    # The last run's counts (the preview's, then the import's): `catalog_csv.ImportResult`.
    rows = models.PositiveIntegerField(default=0)
    bad_rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    stock_movements = models.PositiveIntegerField(default=0)
    categories_created = models.PositiveIntegerField(default=0)
    # The first errors, each {"line": int, "column": str | None, "reason": str}.
    errors = models.JSONField(default=list, blank=True)
    failure = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"
