"""Query parameters and response shapes of the reports (API.md, "Reports (staff)")."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from rest_framework import serializers

from common.parsers import QueryIntegerField

from ..selectors import (
    DEFAULT_INTERVAL,
    DEFAULT_RANGE_DAYS,
    INTERVALS,
    MAX_RANGE_YEARS,
    TOP_PRODUCTS_DEFAULT_LIMIT,
    TOP_PRODUCTS_MAX_LIMIT,
    default_range,
    range_error,
)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StoreDateField(serializers.DateField):
    """A calendar day written exactly `YYYY-MM-DD` (no week dates, no `20240105`, no time)."""

    default_error_messages = {"invalid": "Enter a date as YYYY-MM-DD."}

    def to_internal_value(self, value: Any) -> dt.date:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            self.fail("invalid")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:  # 2024-02-30
            self.fail("invalid")


class _DateRangeQuerySerializer(serializers.Serializer[dict[str, Any]]):
    date_from = StoreDateField(
        required=False,
        help_text=(
            "First day, inclusive, in the store's time zone. Default: "
            f"{DEFAULT_RANGE_DAYS - 1} days before `date_to`."
        ),
    )
    date_to = StoreDateField(
        required=False,
        help_text=(
            "Last day, inclusive, in the store's time zone. Default: today. At most "
            f"{MAX_RANGE_YEARS} years after `date_from`."
        ),
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # An empty parameter (`?date_from=`, as an HTML form sends it) counts as not given.
        if hasattr(data, "items"):
            data = {name: value for name, value in data.items() if value != ""}
        attrs: dict[str, Any] = super().to_internal_value(data)
        return attrs

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        date_from, date_to = default_range(
            date_from=attrs.get("date_from"), date_to=attrs.get("date_to")
        )
        error = range_error(date_from=date_from, date_to=date_to)
        if error is not None:
            code, message = error
            raise serializers.ValidationError({"date_from": message}, code=code)
        return {**attrs, "date_from": date_from, "date_to": date_to}


class SalesReportQuerySerializer(_DateRangeQuerySerializer):
    interval = serializers.ChoiceField(
        choices=INTERVALS,
        default=DEFAULT_INTERVAL,
        help_text="Period of each row; weeks start on Monday.",
    )


class TopProductsReportQuerySerializer(_DateRangeQuerySerializer):
    limit = QueryIntegerField(
        min_value=1,
        max_value=TOP_PRODUCTS_MAX_LIMIT,
        default=TOP_PRODUCTS_DEFAULT_LIMIT,
        help_text="How many products.",
    )


class SalesReportRowSerializer(serializers.Serializer[Any]):
    period = serializers.DateField(
        help_text="First day of the period (a Monday for weeks, the 1st for months)."
    )
    orders = serializers.IntegerField(
        help_text="Orders paid in the period (by the settlement of their succeeded charge)."
    )
    items_sold = serializers.IntegerField(help_text="Units in those orders.")
    revenue_cents = serializers.IntegerField(help_text="Succeeded charges settled in the period.")
    refunded_cents = serializers.IntegerField(help_text="Succeeded refunds settled in the period.")


class TopProductReportRowSerializer(serializers.Serializer[Any]):
    product = serializers.IntegerField(help_text="Product id.")
    sku = serializers.CharField(help_text="The product's current SKU.")
    name = serializers.CharField(help_text="The product's current name.")
    quantity = serializers.IntegerField(help_text="Units in orders paid in the range.")
    revenue_cents = serializers.IntegerField(
        help_text="Their line totals (price at checkout x quantity), before refunds."
    )


class InventoryReportSerializer(serializers.Serializer[Any]):
    products = serializers.IntegerField(help_text="Active products.")
    units_on_hand = serializers.IntegerField()
    stock_value_cents = serializers.IntegerField(help_text="Sum of on hand x current price.")
    low_stock = serializers.IntegerField(
        help_text="Products with 0 < available <= their low-stock threshold."
    )
    out_of_stock = serializers.IntegerField(help_text="Products with nothing available.")
