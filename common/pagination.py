"""Pagination of every list: `?page=N&page_size=M` (20 by default, at most 100), and cursors for
append-only ledgers.

A `page_size` that is not a whole number ≥ 1 is a 400 `validation_error` naming it (DRF's own
paginators ignore it silently, so a typo looked like a valid request); one above 100 gives 100 per
page, and an empty one (`?page_size=`) is no `page_size`, as for every query parameter.
`query_serializer_class` is how the schema (common.openapi.AutoSchema) learns which validation
errors the parameter can raise.
"""

from __future__ import annotations

from typing import Any

from rest_framework import pagination, serializers
from rest_framework.request import Request

from .parsers import QueryIntegerField

MAX_PAGE_SIZE = 100


class PageSizeQuerySerializer(serializers.Serializer[dict[str, Any]]):
    page_size = QueryIntegerField(min_value=1, required=False)


class _ValidatedPageSize:
    page_size: int
    page_size_query_param: str | None
    max_page_size: int | None
    query_serializer_class = PageSizeQuerySerializer

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param or "")
        if not raw:  # absent, or empty (`?page_size=`): the same, as for every parameter
            return self.page_size
        query = self.query_serializer_class(data={"page_size": raw})
        query.is_valid(raise_exception=True)
        return min(int(query.validated_data["page_size"]), self.max_page_size or MAX_PAGE_SIZE)

    def _page_size_parameters(self, parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page, {self.page_size} by default; a value above "
                    f"{self.max_page_size} gives {self.max_page_size}."
                )
        return parameters


class PageNumberPagination(_ValidatedPageSize, pagination.PageNumberPagination):
    """`?page=N&page_size=M`: 20 by default, at most 100."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return self._page_size_parameters(super().get_schema_operation_parameters(view))


class LedgerCursorPagination(_ValidatedPageSize, pagination.CursorPagination):
    """Cursor pagination for append-only ledgers, newest first."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-created_at", "-id")

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return self._page_size_parameters(super().get_schema_operation_parameters(view))
