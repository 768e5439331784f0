"""Staff reports: validate the query, call one selector (through the cache), serialize."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from accounts.permissions import IsStaff
from common.text import prose

from .. import selectors
from ..cache import cached_report
from .serializers import (
    InventoryReportSerializer,
    SalesReportQuerySerializer,
    SalesReportRowSerializer,
    TopProductReportRowSerializer,
    TopProductsReportQuerySerializer,
)

_RANGE_ERRORS = ["invalid", "date_from_after_date_to", "range_too_long"]
_RANGE_400 = prose("""
    400 `validation_error`, `attr` naming the parameter: a date that is not `YYYY-MM-DD` is
    `invalid` on it; `date_from` after `date_to` is `date_from_after_date_to` and a range over 3
    years `range_too_long`, both on `date_from`.
""")
_CACHED = prose("""
    Cached for `REPORTS_CACHE_SECONDS`; a newly succeeded payment or refund makes the next request
    fresh.
""")


# drf-spectacular describes an operation that has no description of its own with the nearest
# class docstring: these bases have none.
class _ReportView(APIView):
    permission_classes = [IsStaff]


@extend_validation_errors(_RANGE_ERRORS, field_name="date_from", methods=["get"])
@extend_validation_errors(["invalid"], field_name="date_to", methods=["get"])
class _RangeReportView(_ReportView):
    # Rows over a date range: the query validated by `query_serializer`, the rows from the
    # selector `rows` (read through the class: a plain function, not a method), each serialized by
    # `row_serializer`, cached under the name `report`.
    report: ClassVar[str]
    query_serializer: ClassVar[type[BaseSerializer[Any]]]
    row_serializer: ClassVar[type[BaseSerializer[Any]]]
    rows: ClassVar[Callable[..., list[Any]]]

    def get(self, request: Request) -> Response:
        query = self.query_serializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)

        def build() -> list[dict[str, Any]]:
            rows = type(self).rows(**params)
            return list(self.row_serializer(rows, many=True).data)

        return Response(cached_report(self.report, params=params, build=build))


@extend_schema_view(
    get=extend_schema(
        operation_id="reports_sales",
        summary="Sales by day, week or month",
        description=prose(f"""
            One row per period of the range, empty periods as zeros. Days are cut in the store's
            `TIME_ZONE`. `orders` and `items_sold` count orders paid in the period (by the
            settlement of their succeeded charge); `revenue_cents` sums succeeded charges and
            `refunded_cents` succeeded refunds, each in the period it settled. An empty parameter
            counts as not given. {_CACHED}

            {_RANGE_400} An unknown `interval` is `invalid_choice` on `interval`.
        """),
        parameters=[SalesReportQuerySerializer],
        responses={200: SalesReportRowSerializer(many=True)},
    )
)
@extend_validation_errors(["invalid_choice"], field_name="interval", methods=["get"])
class SalesReportView(_RangeReportView):
    report = "sales"
    query_serializer = SalesReportQuerySerializer
    row_serializer = SalesReportRowSerializer
    rows = selectors.sales_report


@extend_schema_view(
    get=extend_schema(
        operation_id="reports_top_products",
        summary="Best-selling products",
        description=prose(f"""
            Products of the orders paid in the range (as the sales report counts them), by units
            sold, then revenue. An empty parameter counts as not given. {_CACHED}

            {_RANGE_400} A `limit` that is not an integer from 1 to 100 is `invalid`, `min_value`
            or `max_value` on `limit`.
        """),
        parameters=[TopProductsReportQuerySerializer],
        responses={200: TopProductReportRowSerializer(many=True)},
    )
)
@extend_validation_errors(
    ["invalid", "min_value", "max_value"], field_name="limit", methods=["get"]
)
class TopProductsReportView(_RangeReportView):
    report = "top-products"
    query_serializer = TopProductsReportQuerySerializer
    row_serializer = TopProductReportRowSerializer
    rows = selectors.top_products_report


class InventoryReportView(_ReportView):
    @extend_schema(
        operation_id="reports_inventory",
        summary="Stock at a glance",
        description=prose("""
            Active products, units on hand, their value at current prices, and how many are low (0
            < available <= threshold) or out of stock (available 0). Cached under the catalog
            version: any product or stock change makes the next request fresh.
        """),
        responses={200: InventoryReportSerializer},
    )
    def get(self, request: Request) -> Response:
        def build() -> dict[str, Any]:
            return dict(InventoryReportSerializer(selectors.inventory_report()).data)

        return Response(cached_report("inventory", params={}, build=build))
