"""Catalog and stock endpoints: thin views over `inventory.services` and `inventory.selectors`.

Why it is long: categories, products, images and stock share the catalog read path below
(`catalog_read`: ETag, Cache-Control, the versioned cache), which belongs next to its callers.

Product reads are built from `.values()` rows and encoded with orjson (no model instances, no
serializer per field; `common.renderers.json_bytes` also writes what orjson refuses, such as
metadata stored deeper than its 255 levels), and reads by anyone but staff are cached in the
Django cache under the catalog version (see `inventory.cache`; a hit is one Redis round trip), so
a write anywhere in the catalog makes the next read fresh. The count of a product filter is
cached the same way for every reader, staff included, even with the response cache off: only the
first page of a filter read after a catalog write counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import User
from accounts.permissions import IsStaff, IsStaffOrReadOnly, is_staff_user
from common.exceptions import ProtectedError
from common.openapi import domain_error_responses
from common.pagination import LedgerCursorPagination
from common.renderers import json_bytes

from .. import selectors, services
from ..cache import (
    cached_count,
    catalog_etag,
    count_key,
)
from ..exceptions import InsufficientStock, InvalidCategoryParent, StockLimitExceeded
from ..images import image_dict, image_url
from ..models import Category, Product, StockLevel, StockMovement
from .authentication import CatalogReadJWTAuthentication
from .cached_reads import (
    PLAIN_ACCEPTS,
    cache_parts,
    caller_kind,
    if_none_match,
    mark_cacheable,
    public,
    seen_by_middleware,
)
from .pagination import CatalogPagination
from .serializers import (
    CategoryDetailOutputSerializer,
    CategoryInputSerializer,
    CategoryListQuerySerializer,
    CategoryOutputSerializer,
    CategoryTreeNodeSerializer,
    LowStockOutputSerializer,
    ProductInputSerializer,
    ProductListQuerySerializer,
    ProductOutputSerializer,
    StockAdjustInputSerializer,
    StockLevelOutputSerializer,
    StockMovementListQuerySerializer,
    StockMovementOutputSerializer,
    browse_query,
)
from .throttling import CatalogReadThrottle

JSON_OPTIONS = orjson.OPT_UTC_Z


def json_response(data: Any, *, status_code: int = status.HTTP_200_OK) -> HttpResponse:
    return HttpResponse(
        json_bytes(data, option=JSON_OPTIONS),
        content_type="application/json",
        status=status_code,
    )


def catalog_read(request: Request, build: Callable[[str | None], Any]) -> HttpResponse:
    """Build a catalog read. Staff get it fresh and private (`no-store`, common.middleware);
    anyone else gets a public response (API.md): `Cache-Control: public, max-age=…` and an ETag,
    from the catalog response cache when it holds it (inventory/api/cached_reads.py: its
    middleware answers most hits before this view is reached).

    The catalog version (and the cached entry) are read in one round trip before the database
    is: a matching If-None-Match is answered 304 with no query at all, and a response built while
    a write commits is stored (and tagged) under the old version, never the new one. `build`
    gets that version (None for staff, or when the cache is unreachable) for what it caches
    itself (the count of a product filter).
    """
    if is_staff_user(request.user):
        return json_response(build(None))
    parts = cache_parts(request)
    version, entry = seen_by_middleware(request, parts)
    if version is None:  # the cache is unreachable: no ETag, nothing cached
        return public(json_response(build(None)), None)
    etag = catalog_etag(version, *parts, caller_kind(request.user))
    if if_none_match(request, etag):
        return public(HttpResponseNotModified(), etag)
    if entry is not None:
        return public(HttpResponse(entry.body, content_type="application/json"), etag)
    response = public(json_response(build(version)), etag)
    mark_cacheable(response, parts, version)
    return response


def acting_user(request: Request) -> User | None:
    return request.user if isinstance(request.user, User) else None


class CatalogReadMixin:
    """Catalog GETs use the catalog read throttles and authentication
    (`inventory/api/throttling.py`, `authentication.py`); writes keep the project's defaults."""

    def get_throttles(self) -> list[BaseThrottle]:
        if getattr(self, "_safe_request", False):
            return [CatalogReadThrottle()]
        throttles: list[BaseThrottle] = super().get_throttles()  # type: ignore[misc]
        return throttles

    def get_authenticators(self) -> list[BaseAuthentication]:
        # The schema documents the project's JWT scheme (it is the same bearer token).
        if getattr(self, "_safe_request", False) and not getattr(self, "swagger_fake_view", False):
            return [CatalogReadJWTAuthentication()]
        authenticators: list[BaseAuthentication] = super().get_authenticators()  # type: ignore[misc]
        return authenticators

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        self._safe_request = request.method in SAFE_METHODS
        return super().initialize_request(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        """What DRF's negotiation answers for what nearly every read sends (no Accept header,
        `*/*` or `application/json`; no format override): JSON, without parsing the header.
        Anything else is negotiated as usual (a 406 stays a 406)."""
        if (
            getattr(self, "_safe_request", False)
            and getattr(self, "format_kwarg", None) is None
            and request.META.get("HTTP_ACCEPT", "*/*") in PLAIN_ACCEPTS
            and api_settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            renderer: BaseRenderer = self.get_renderers()[0]  # type: ignore[attr-defined]
            if renderer.media_type == "application/json":
                return renderer, renderer.media_type
        negotiated: tuple[BaseRenderer, str] = super().perform_content_negotiation(  # type: ignore[misc]
            request, force
        )
        return negotiated


# Categories and products are deleted only while nothing refers to them (409 otherwise).
DELETE_UNLESS_REFERENCED = extend_schema(
    responses={
        204: OpenApiResponse(description="Deleted"),
        **domain_error_responses(ProtectedError),
    }
)


def validated_query(serializer_class: type[Any], request: Request) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


# =============================================================================
# Categories
# =============================================================================
def category_dict(category: Category) -> dict[str, Any]:
    return {
        "id": category.pk,
        "name": category.name,
        "slug": category.slug,
        "parent": category.parent_id,
        "path": category.full_path,
        "depth": category.depth,
        "description": category.description,
    }


@extend_schema_view(
    list=extend_schema(
        parameters=[CategoryListQuerySerializer], responses=CategoryOutputSerializer(many=True)
    ),
    retrieve=extend_schema(responses=CategoryDetailOutputSerializer),
    create=extend_schema(
        request=CategoryInputSerializer, responses={201: CategoryOutputSerializer}
    ),
    partial_update=extend_schema(
        request=CategoryInputSerializer,
        responses={
            200: CategoryOutputSerializer,
            **domain_error_responses(InvalidCategoryParent),
        },
    ),
    destroy=DELETE_UNLESS_REFERENCED,
)
class CategoryViewSet(CatalogReadMixin, viewsets.GenericViewSet[Category]):
    """The category tree. Anyone reads; staff write."""

    queryset = Category.objects.all()
    serializer_class = CategoryOutputSerializer
    permission_classes = [IsStaffOrReadOnly]
    filter_backends: list[Any] = []
    # ASCII digits: `\d` would also take "\u0661" (Arabic-Indic one), which int() reads as 1.
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def list(self, request: Request) -> HttpResponse:
        def build(_version: str | None) -> Any:
            parent = validated_query(CategoryListQuerySerializer, request).get("parent")
            categories = Category.objects.order_by("full_path", "id")
            if parent == "null":
                categories = categories.filter(parent__isnull=True)
            elif parent is not None:
                categories = categories.filter(parent_id=int(parent))
            page = self.paginate_queryset(categories)
            assert page is not None
            assert self.paginator is not None
            return self.paginator.get_paginated_response([category_dict(c) for c in page]).data

        return catalog_read(request, build)

    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        def build(_version: str | None) -> Any:
            category = self.get_object()
            data = category_dict(category)
            data["children"] = [
                category_dict(child) for child in category.children.order_by("name", "id")
            ]
            return data

        return catalog_read(request, build)

    @extend_schema(responses=CategoryTreeNodeSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None)
    def tree(self, request: Request) -> HttpResponse:
        """The whole tree, nested, from one query."""

        def build(_version: str | None) -> Any:
            nodes: dict[int, dict[str, Any]] = {}
            roots: list[dict[str, Any]] = []
            # Ordered by depth, so every parent is seen before its children.
            for category in Category.objects.order_by("depth", "name", "id"):
                node = {
                    "id": category.pk,
                    "name": category.name,
                    "slug": category.slug,
                    "path": category.full_path,
                    "depth": category.depth,
                    "children": [],
                }
                nodes[category.pk] = node
                parent = nodes.get(category.parent_id) if category.parent_id else None
                (parent["children"] if parent else roots).append(node)
            return roots

        return catalog_read(request, build)

    def create(self, request: Request) -> HttpResponse:
        data = CategoryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        category = services.category_create(**data.validated_data)
        return json_response(category_dict(category), status_code=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> HttpResponse:
        category = self.get_object()
        data = CategoryInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        category = services.category_update(category=category, **data.validated_data)
        return json_response(category_dict(category))

    def destroy(self, request: Request, pk: str) -> Response:
        services.category_delete(category=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# =============================================================================
# Products
# =============================================================================
def product_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A `.values()` row in the API's shape and key order."""
    data = {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "slug": row["slug"],
        "description": row["description"],
        "category": row["category_id"],
        "category_path": row["category_path"],
        "price_cents": row["price_cents"],
        "currency": row["currency"],
        "metadata": row["metadata"],
    }
    if "image_list" in row:
        data["images"] = [image_dict(**image) for image in row["image_list"]]
    name = row.get("image_name")
    data["image"] = image_url(name) if name else None
    data["is_active"] = row["is_active"]
    data["available"] = row["available"]
    data["created_at"] = row["created_at"]
    data["updated_at"] = row["updated_at"]
    if "low_stock_threshold" in row:
        data["low_stock_threshold"] = row["low_stock_threshold"]
    return data


def product_dicts(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [product_dict(row) for row in rows]


@extend_schema_view(
    list=extend_schema(
        parameters=[ProductListQuerySerializer], responses=ProductOutputSerializer(many=True)
    ),
    retrieve=extend_schema(responses=ProductOutputSerializer),
    create=extend_schema(request=ProductInputSerializer, responses={201: ProductOutputSerializer}),
    update=extend_schema(request=ProductInputSerializer, responses=ProductOutputSerializer),
    partial_update=extend_schema(request=ProductInputSerializer, responses=ProductOutputSerializer),
    destroy=DELETE_UNLESS_REFERENCED,
)
class ProductViewSet(CatalogReadMixin, viewsets.GenericViewSet[Product]):
    """Products. Anyone reads active ones; staff read all and write."""

    queryset = Product.objects.all()
    serializer_class = ProductOutputSerializer
    permission_classes = [IsStaffOrReadOnly]
    pagination_class = CatalogPagination
    filter_backends: list[Any] = []
    # Reads take the numeric id or the slug (API.md); writes and stock actions only the id.
    lookup_value_regex = r"[A-Za-z0-9_-]+"

    def list(self, request: Request) -> HttpResponse:
        def build(version: str | None) -> Any:
            staff = is_staff_user(request.user)
            query = browse_query(request.query_params) or validated_query(
                ProductListQuerySerializer, request
            )
            filters = selectors.ProductFilters(
                category=query.get("category", ""),
                min_price=query.get("min_price"),
                max_price=query.get("max_price"),
                in_stock=query.get("in_stock"),
                search=query.get("search", "").strip(),
                attrs=tuple(tuple(item.split(":", 1)) for item in query.get("attr", [])),
                sku=query.get("sku", ""),
                ordering=query.get("ordering", ""),
                is_active=query.get("is_active"),
            )
            counted = self._count(filters, staff=staff, version=version)

            def fetch(offset: int, limit: int) -> list[dict[str, Any]]:
                return selectors.product_page_rows(
                    staff=staff, filters=filters, fuzzy=counted.fuzzy, offset=offset, limit=limit
                )

            paginator = self.paginator
            assert isinstance(paginator, CatalogPagination)
            page = paginator.paginate_rows(request=request, count=counted.count, fetch=fetch)
            if (
                not page
                and filters.category
                and not selectors.category_exists(value=filters.category)
            ):  # checked only for an empty page, so a good filter costs no extra query
                raise ValidationError({"category": ["No such category."]})
            return paginator.get_paginated_response(product_dicts(page)).data

        return catalog_read(request, build)

    @staticmethod
    def _count(
        filters: selectors.ProductFilters, *, staff: bool, version: str | None
    ) -> selectors.ProductCount:
        """The count of a filter, the same on all its pages: cached per (filter, staff or not)
        under the catalog version (`inventory.cache.cached_count`), so only a filter's first
        read after a catalog write counts. Staff reads bring no version: it is read along."""

        def count() -> tuple[int, bool]:
            counted = selectors.product_count(staff=staff, filters=filters)
            return counted.count, counted.fuzzy

        # The filter, not the query string: pages, page sizes, orderings and the order of the
        # parameters share one count (`is_active` is a staff filter: ignored for others).
        normalized = replace(
            filters,
            ordering="",
            attrs=tuple(sorted(filters.attrs)),
            is_active=filters.is_active if staff else None,
        )
        key = count_key("products", "staff" if staff else "public", repr(normalized))
        if staff:
            found = cached_count(key, count)
        elif version is not None:
            found = cached_count(key, count, version=version)
        else:  # the cache is unreachable
            found = count()
        return selectors.ProductCount(*found)

    def _detail(self, request: Request, pk: int | str) -> dict[str, Any]:
        row = selectors.product_detail_row(staff=is_staff_user(request.user), product=pk)
        if row is None:
            raise NotFound()
        return product_dict(row)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The product's numeric id, or its slug (any case).",
            )
        ]
    )
    def retrieve(self, request: Request, pk: str) -> HttpResponse:
        """A product by its numeric id or its slug."""
        return catalog_read(request, lambda _version: self._detail(request, pk))

    def create(self, request: Request) -> HttpResponse:
        data = ProductInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = services.product_create(**data.validated_data, actor=acting_user(request))
        return json_response(self._detail(request, product.pk), status_code=201)

    def _update(self, request: Request, *, partial: bool) -> HttpResponse:
        product = self.get_object()
        data = ProductInputSerializer(
            data=request.data, partial=partial, context={"product": product}
        )
        data.is_valid(raise_exception=True)
        services.product_update(product=product, changes=data.validated_data)
        return json_response(self._detail(request, product.pk))

    def update(self, request: Request, pk: str) -> HttpResponse:
        return self._update(request, partial=False)

    def partial_update(self, request: Request, pk: str) -> HttpResponse:
        return self._update(request, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        services.product_delete(product=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=StockLevelOutputSerializer)
    @action(detail=True, methods=["get"], permission_classes=[IsStaff])
    def stock(self, request: Request, pk: str) -> Response:
        # The route also matches slugs (for reads); stock is reached by id only.
        is_id = selectors.is_id(pk)
        level = StockLevel.objects.filter(product_id=int(pk)).first() if is_id else None
        if level is None:
            raise NotFound()
        return Response(StockLevelOutputSerializer(level).data)

    @extend_schema(
        request=StockAdjustInputSerializer,
        responses={
            201: StockMovementOutputSerializer,
            **domain_error_responses(InsufficientStock, StockLimitExceeded),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="stock/adjust",
        url_name="stock-adjust",
        permission_classes=[IsStaff],
    )
    def stock_adjust(self, request: Request, pk: str) -> Response:
        """Receive, write off or correct units on hand; each change is one ledger row."""
        product = self.get_object()
        data = StockAdjustInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        movement = services.stock_adjust(
            product_id=product.pk, actor=acting_user(request), **data.validated_data
        )
        movement.product = product
        return Response(StockMovementOutputSerializer(movement).data, status=201)


# =============================================================================
# Stock ledger and low stock
# =============================================================================
@extend_schema_view(
    list=extend_schema(
        parameters=[StockMovementListQuerySerializer],
        responses=StockMovementOutputSerializer(many=True),
    )
)
class StockMovementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[StockMovement]):
    """The append-only stock ledger, newest first (cursor pagination)."""

    serializer_class = StockMovementOutputSerializer
    permission_classes = [IsStaff]
    pagination_class = LedgerCursorPagination
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        query = validated_query(StockMovementListQuerySerializer, self.request)
        return selectors.stock_movement_list(
            product_id=query.get("product"),
            reason=query.get("reason", ""),
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
        )


class LowStockListView(ListAPIView[StockLevel]):
    """Products whose available units are at or below their low-stock threshold."""

    serializer_class = LowStockOutputSerializer
    permission_classes = [IsStaff]
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.stock_low_list()
