"""Input and output shapes of the catalog and stock endpoints.

Inputs take each value only as the schema documents it: JSON bodies in their field's JSON type
(`JSONInputSerializer`), and a field that takes less than its type says documents the rest
(`AmendedSchemaField`: the store's one currency, a stock delta other than 0, a category id within
`bigint`). A query value is judged as sent: untrimmed where the schema gives it a pattern, an
integer in digits (`QueryIntegerField`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from common.exceptions import BIGINT_MAX, INTEGER_MAX
from common.openapi import AmendedSchemaField, digits_at_most
from common.parsers import JSONInputSerializer, QueryIntegerField

from ..exceptions import CatalogValidationError
from ..models import Category, MovementReason, StockMovement, store_currency
from ..selectors import PRODUCT_ORDERINGS, is_id
from ..services import SKU_MESSAGE, SKU_PATTERN, validate_currency, validate_metadata
from ..services.validation import (
    NAME_REQUIRED_MESSAGE,
    NAME_TOO_LONG_MESSAGE,
    PRICE_MESSAGE,
    THRESHOLD_MESSAGE,
)


def _as_field_error(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Run a service-level check in a serializer so a failure is a 400 `validation_error`."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except CatalogValidationError as error:
            raise serializers.ValidationError(error.detail) from error

    return validate


# =============================================================================
# Categories
# =============================================================================
class CategoryOutputSerializer(serializers.Serializer[Category]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)  # type: ignore[assignment]
    path = serializers.CharField(source="full_path", help_text='e.g. "Electronics/Audio"')
    depth = serializers.IntegerField(help_text="0 for a top-level category")
    description = serializers.CharField()


class CategoryDetailOutputSerializer(CategoryOutputSerializer):
    children = CategoryOutputSerializer(many=True, help_text="Direct subcategories, by name")


class CategoryTreeNodeSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    path = serializers.CharField()
    depth = serializers.IntegerField()

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["children"] = CategoryTreeNodeSerializer(many=True)
        return fields


class CategoryInputSerializer(JSONInputSerializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=120, required=False)
    parent = serializers.PrimaryKeyRelatedField(  # type: ignore[assignment]
        queryset=Category.objects.all(), allow_null=True, required=False
    )
    description = serializers.CharField(required=False, allow_blank=True)


class _WithinBigint:
    """Digits past `bigint` name no row: `max_value` (a validator, so the schema lists it)."""

    code = "max_value"

    def __call__(self, value: str) -> None:
        if is_id(value) and int(value) > BIGINT_MAX:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {BIGINT_MAX}.", code=self.code
            )


class CategoryParentField(AmendedSchemaField, serializers.RegexField):
    """`null`, or a category id: ASCII digits up to `bigint`'s maximum, as sent (untrimmed).
    Documented by the pattern of exactly that; other digits are `max_value`, the rest `invalid`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(r"^(?:[0-9]+|null)$", trim_whitespace=False, **kwargs)
        self.validators.append(_WithinBigint())

    def amend_schema(self, schema: dict[str, Any], direction: str) -> dict[str, Any]:
        return {**schema, "pattern": f"^(?:null|{digits_at_most(BIGINT_MAX)})$"}


class CategoryListQuerySerializer(serializers.Serializer[dict[str, Any]]):
    parent = CategoryParentField(  # type: ignore[assignment]
        required=False, help_text="A category id, or `null` for top-level categories"
    )


# =============================================================================
# Products
# =============================================================================
class ProductImageOutputSerializer(serializers.Serializer[Any]):
    """A product image; `thumbnail_url` is the original's URL until the thumbnail is made."""

    id = serializers.IntegerField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField()
    alt = serializers.CharField(allow_blank=True)
    position = serializers.IntegerField(min_value=0, help_text="0 is the primary image")
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ProductOutputSerializer(serializers.Serializer[Any]):
    """Documents the product shape; responses are built from `.values()` rows for speed."""

    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    description = serializers.CharField()
    category = serializers.IntegerField()
    category_path = serializers.CharField()
    price_cents = serializers.IntegerField(min_value=0)
    currency = serializers.CharField()
    metadata = serializers.DictField()
    images = ProductImageOutputSerializer(
        many=True, required=False, help_text="Ordered, first = primary; on the product itself only"
    )
    image = serializers.CharField(
        allow_null=True, help_text="The primary image's thumbnail_url, or null"
    )
    is_active = serializers.BooleanField()
    available = serializers.IntegerField(help_text="on_hand - reserved")
    low_stock_threshold = serializers.IntegerField(
        required=False, help_text="Only in responses to staff"
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.JSONField):
    pass


class StoreCurrencyField(AmendedSchemaField, serializers.CharField):
    """The store's currency (`STORE_CURRENCY`), the only one taken: documented as the enum of
    that one value, read when the schema is made. Not trimmed: `" USD"` is not in the enum."""

    def __init__(self, **kwargs: Any) -> None:
        validators = [_as_field_error(validate_currency)]
        super().__init__(max_length=3, trim_whitespace=False, validators=validators, **kwargs)

    def amend_schema(self, schema: dict[str, Any], direction: str) -> dict[str, Any]:
        return {**schema, "enum": [store_currency()]}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Create a product",
            value={
                "sku": "MUG-CERAMIC-350",
                "name": "Ceramic mug, 350 ml",
                "description": "Stoneware mug, dishwasher safe.",
                "category": 1,
                "price_cents": 1290,
                "metadata": {"color": "white", "capacity_ml": 350},
                "is_active": True,
                "low_stock_threshold": 10,
            },
            request_only=True,
        )
    ]
)
class ProductInputSerializer(JSONInputSerializer):
    # The SKU rule (`validate_sku`) on the value as sent, so the schema's pattern is the rule.
    sku = serializers.RegexField(
        SKU_PATTERN,
        max_length=64,
        trim_whitespace=False,
        error_messages={"invalid": SKU_MESSAGE},
    )
    # The services' rules and messages (inventory/services/validation.py), said where DRF checks
    # first so the schema keeps the limits.
    name = serializers.CharField(
        max_length=200,
        error_messages={"max_length": NAME_TOO_LONG_MESSAGE, "blank": NAME_REQUIRED_MESSAGE},
    )
    description = serializers.CharField(required=False, allow_blank=True)
    category = serializers.PrimaryKeyRelatedField(queryset=Category.objects.all())
    # 2**53: exact in every JSON client (a JavaScript number); far inside `bigint`.
    price_cents = serializers.IntegerField(
        min_value=0, max_value=2**53, error_messages={"min_value": PRICE_MESSAGE}
    )
    currency = StoreCurrencyField(
        required=False, help_text="The store currency (default); no other is accepted"
    )
    metadata = MetadataField(required=False, validators=[_as_field_error(validate_metadata)])
    is_active = serializers.BooleanField(required=False)
    low_stock_threshold = serializers.IntegerField(
        min_value=0,
        max_value=INTEGER_MAX,
        required=False,
        error_messages={"min_value": THRESHOLD_MESSAGE},
    )

    def validate_sku(self, value: str) -> str:
        from django.db.models.functions import Lower

        from ..models import Product

        value = value.strip()  # a trailing newline, which the pattern's `$` lets through
        taken = Product.objects.alias(sku_lower=Lower("sku")).filter(sku_lower=value.lower())
        instance = self.context.get("product")
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            raise serializers.ValidationError(f"A product with SKU {value!r} already exists.")
        return value


class ProductListQuerySerializer(serializers.Serializer[dict[str, Any]]):
    # Ids and slugs are ASCII: "²" passes str.isdigit() but not int(), so it is refused here.
    category = serializers.SlugField(
        required=False,
        max_length=120,
        trim_whitespace=False,
        help_text="A category id or slug; includes all its descendants",
        error_messages={"invalid": "Enter a category id or slug."},
    )
    min_price = QueryIntegerField(
        required=False, min_value=0, max_value=BIGINT_MAX, help_text="In cents"
    )
    max_price = QueryIntegerField(
        required=False, min_value=0, max_value=BIGINT_MAX, help_text="In cents"
    )
    in_stock = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Counts reservations"
    )
    search = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Full text over name, SKU and description (web search syntax), best first",
    )
    attr = serializers.ListField(
        # Untrimmed: the pattern judges the item as sent (" size:42" names the key " size").
        child=serializers.RegexField(r"^[^:]+:.*$", max_length=200, trim_whitespace=False),
        required=False,
        help_text="`key:value`, repeatable; every one must match `metadata`",
    )
    sku = serializers.CharField(required=False, max_length=64)
    ordering = serializers.ChoiceField(choices=PRODUCT_ORDERINGS, required=False)
    is_active = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Staff only"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"max_price": "Must not be below min_price."})
        return attrs


# The storefront's most frequent read is a category page: `?category=…&page=…` (and the plain
# list). For exactly those, `browse_query` gives what the serializer would, without building it
# (a serializer instance deep-copies its ten fields: a tenth of an uncached list's Python time);
# anything else, including every input the serializer would refuse, goes to the serializer, so
# every 400 still comes from it. `inventory/tests/test_api_products.py` holds the two to the same
# answers.
_BROWSE_PARAMS = frozenset({"category", "page", "page_size"})
_ASCII_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,120}")


def browse_query(params: Any) -> dict[str, Any] | None:
    """The validated list query for a plain category page, or None: ask the serializer."""
    if not params.keys() <= _BROWSE_PARAMS or any(len(params.getlist(key)) != 1 for key in params):
        return None
    query: dict[str, Any] = {"in_stock": None, "is_active": None}
    if "category" in params:
        category = params["category"]
        if not _ASCII_SLUG.fullmatch(category):
            return None
        query["category"] = category
    return query


# =============================================================================
# Stock
# =============================================================================
class StockLevelOutputSerializer(serializers.Serializer[Any]):
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    low_stock_threshold = serializers.IntegerField()


class NonZeroIntegerField(AmendedSchemaField, serializers.IntegerField):
    """An integer other than 0 (0 is `invalid`), documented as `not: {enum: [0]}`."""

    def to_internal_value(self, data: Any) -> int:
        value: int = super().to_internal_value(data)
        if value == 0:
            raise serializers.ValidationError("Must not be zero.", code="invalid")
        return value

    def amend_schema(self, schema: dict[str, Any], direction: str) -> dict[str, Any]:
        return {**schema, "not": {"enum": [0]}}


class StockAdjustInputSerializer(JSONInputSerializer):
    delta = NonZeroIntegerField(min_value=-INTEGER_MAX, max_value=INTEGER_MAX)
    reason = serializers.ChoiceField(choices=StockMovement.MANUAL_REASONS)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class StockMovementOutputSerializer(serializers.ModelSerializer[StockMovement]):
    sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = StockMovement
        fields = (
            "id",
            "product",
            "sku",
            "reason",
            "delta_on_hand",
            "delta_reserved",
            "on_hand_after",
            "reserved_after",
            "actor",
            "reference",
            "note",
            "created_at",
        )
        read_only_fields = fields


class StockMovementListQuerySerializer(serializers.Serializer[dict[str, Any]]):
    product = QueryIntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    reason = serializers.ChoiceField(choices=MovementReason.choices, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="Inclusive")
    created_before = serializers.DateTimeField(required=False, help_text="Exclusive")


class LowStockOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(source="product_id")
    sku = serializers.CharField(source="product.sku")
    name = serializers.CharField(source="product.name")
    category_path = serializers.CharField(source="product.category.full_path")
    is_active = serializers.BooleanField(source="product.is_active")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()
    low_stock_threshold = serializers.IntegerField()
