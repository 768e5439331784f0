"""Everything under /api/v1/: one router for the viewsets, plus each app's other endpoints.

Each app's `api/urls.py` has `register(router)` for its viewsets and `urlpatterns` for the rest.
`/api/v1/` itself is the API root: an index of every collection, found in the URL patterns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import DefaultRouter
from rest_framework.views import APIView

from accounts.api import urls as accounts_urls
from inventory.api import urls as inventory_urls
from orders.api import urls as orders_urls
from payments.api import urls as payments_urls
from reports.api import urls as reports_urls

APPS = (accounts_urls, inventory_urls, orders_urls, payments_urls, reports_urls)

router = DefaultRouter()
router.include_root_view = False  # replaced by APIRootView, which also lists the other views
for app_urls in APPS:
    app_urls.register(router)


def _patterns(patterns: list[Any]) -> Iterator[URLPattern]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns)
        else:
            yield pattern


def _reads(pattern: URLPattern) -> bool:
    """Whether the view answers GET: a viewset's route maps it, an APIView defines it."""
    actions = getattr(pattern.callback, "actions", None)
    if actions is not None:
        return "get" in actions
    view_class = getattr(pattern.callback, "cls", None) or getattr(
        pattern.callback, "view_class", None
    )
    return view_class is not None and hasattr(view_class, "get")


def collections() -> list[str]:
    """URL names of every GET endpoint without a path parameter (`products/`, `cart/`,
    `inventory/low-stock/`, `reports/sales/`…), in URL order; POST-only actions such as
    `auth/token/` are not collections."""
    names: list[str] = []
    for pattern in _patterns(urlpatterns):
        if (
            pattern.name
            and pattern.name != "api-root"
            and pattern.name not in names
            and pattern.pattern.regex.groups == 0
            and _reads(pattern)
        ):
            names.append(pattern.name)
    return names


class APIRootView(APIView):
    """The API root: each collection's path (without the trailing slash) and its URL."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="api_root",
        responses={200: OpenApiTypes.OBJECT},
        examples=[
            OpenApiExample(
                "Index",
                value={
                    "products": "https://shop.example/api/v1/products/",
                    "inventory/low-stock": "https://shop.example/api/v1/inventory/low-stock/",
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        root = reverse("api-root")
        index = {}
        for name in collections():
            url = reverse(name)
            index[url.removeprefix(root).rstrip("/")] = request.build_absolute_uri(url)
        return Response(index)


urlpatterns = [
    path("", APIRootView.as_view(), name="api-root"),
    *(path("", include(app_urls)) for app_urls in APPS),
    path("", include(router.urls)),
]
