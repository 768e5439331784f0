"""Page-number pagination for catalog rows whose count is known before the page is read.

The count of a product filter comes from `selectors.product_count` (on the filtered table, not
the joined rows), usually from the cache (`inventory.cache.cached_count`: it is the same on every
page of a filter until the catalog changes), and the page's rows are fetched by the caller for
the offset and limit asked: one query for exactly those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core.paginator import InvalidPage
from rest_framework.exceptions import NotFound
from rest_framework.request import Request

from common.pagination import PageNumberPagination


class _PageRows:
    """What `Paginator.page()` slices: the one slice it asks for, fetched on demand."""

    def __init__(self, fetch: Callable[[int, int], Sequence[Any]]) -> None:
        self.fetch = fetch

    def __getitem__(self, window: slice) -> Sequence[Any]:
        start, stop = int(window.start or 0), int(window.stop)
        return self.fetch(start, stop - start) if stop > start else []


class CatalogPagination(PageNumberPagination):
    def paginate_rows(
        self, *, request: Request, count: int, fetch: Callable[[int, int], Sequence[Any]]
    ) -> list[Any]:
        """The page's rows: `fetch(offset, limit)`, called only for a page that exists (an
        invalid page is a 404 before any query)."""
        page_size = self.get_page_size(request) or self.page_size
        paginator = self.django_paginator_class(_PageRows(fetch), page_size)  # type: ignore[arg-type]
        paginator.count = count  # replaces Paginator's cached property
        page_number = request.query_params.get(self.page_query_param) or 1
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as error:
            raise NotFound(f"Invalid page: {error}.") from error
        self.request = request
        return list(self.page)
