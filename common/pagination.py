from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M`: 20 by default, at most 100."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class LedgerCursorPagination(pagination.CursorPagination):
    """Cursor pagination for append-only ledgers, newest first."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-created_at", "-id")
