"""Page-number pagination that counts a lean queryset and pages a rich one.

`.values()` rows carry joins for their columns (category path, stock); counting them would join
every matching row for nothing. The count uses the filtered queryset before those columns.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from common.pagination import PageNumberPagination


class CatalogPagination(PageNumberPagination):
    def paginate_rows(
        self, *, rows: QuerySet[Any, Any], count_from: QuerySet[Any], request: Request
    ) -> list[Any]:
        page_size = self.get_page_size(request) or self.page_size
        paginator = self.django_paginator_class(rows, page_size)
        paginator.count = count_from.count()  # replaces Paginator's cached property
        page_number = request.query_params.get(self.page_query_param) or 1
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as error:
            raise NotFound(f"Invalid page: {error}.") from error
        self.request = request
        return list(self.page)
