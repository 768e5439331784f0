"""Catalog and stock endpoints: thin views over `inventory.services` and `inventory.selectors`.

Why it is long: categories, products, images and stock share the catalog read path below
(`catalog_read`: ETag, Cache-Control, the versioned cache), which belongs next to its callers.

Product reads are built from `.values()` rows and encoded with orjson (no model instances, no
serializer per field; `common.renderers.json_bytes` also writes what orjson refuses, such as
metadata stored deeper than its 255 levels), and reads by anyone but staff are cached in the
Django cache under the catalog version (see `inventory.cache`), so a write anywhere in the
catalog makes the next read fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.core.cache import cache
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
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
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.models import User
from accounts.permissions import IsStaff, IsStaffOrReadOnly, is_staff_user
from common.exceptions import ProtectedError
from common.openapi import domain_error_responses
from common.pagination import LedgerCursorPagination
from common.renderers import json_bytes

from .. import selectors, services
from ..cache import (
    catalog_cache_key,
    catalog_etag,
    current_catalog_version,
    http_max_age,
    response_timeout,
)
from ..exceptions import InsufficientStock, InvalidCategoryParent
from ..images import image_dict, image_url
from ..models import Category, Product, StockLevel, StockMovement
from .authentication import CatalogReadJWTAuthentication
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
from .throttling import CatalogReadAnonThrottle, CatalogReadUserThrottle

JSON_OPTIONS = orjson.OPT_UTC_Z


def json_response(data: Any, *, status_code: int = status.HTTP_200_OK) -> HttpResponse:
    return HttpResponse(
        json_bytes(data, option=JSON_OPTIONS),
        content_type="application/json",
        status=status_code,
    )


def _if_none_match(request: Request, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (weak comparison, RFC 9110 13.1.2)."""
    header = request.META.get("HTTP_IF_NONE_MATCH", "")
    return bool(header) and etag in (tag.removeprefix("W/") for tag in parse_etags(header))


def _public(response: HttpResponse, etag: str | None) -> HttpResponse:
    response["Cache-Control"] = f"public, max-age={http_max_age()}"
    if etag is not None:
        response["ETag"] = etag
    # Staff get another body for the same URL: a shared cache must not hand them this one.
    patch_vary_headers(response, ["Authorization"])
    return response


def catalog_read(request: Request, build: Callable[[], Any]) -> HttpResponse:
    """Build a catalog read. Staff get it fresh and private (`no-store`, common.middleware);
    anyone else gets a public response (API.md): `Cache-Control: public, max-age=…` and an ETag,
    with the body from the Django cache when it is there.

    The catalog version is read before the database is: a matching If-None-Match is answered 304
    with no query at all, and a response built while a write commits is stored (and tagged)
    under the old version, never the new one.
    """
    if is_staff_user(request.user):
        return json_response(build())
    version = current_catalog_version()  # None: the cache is unreachable, so no ETag either
    # The host is part of the key: pagination links are absolute URLs.
    parts = (request.get_host(), request.path, request.META.get("QUERY_STRING", ""))
    etag = None
    if version is not None:
        caller = "customer" if request.user.is_authenticated else "anonymous"
        etag = catalog_etag(version, *parts, caller)
        if _if_none_match(request, etag):
            return _public(HttpResponseNotModified(), etag)
    timeout = response_timeout()
    if timeout <= 0 or version is None:
        return _public(json_response(build()), etag)
    key = catalog_cache_key(*parts, version=version)
    body = cache.get(key)
    if body is None:
        body = json_bytes(build(), option=JSON_OPTIONS)
        cache.set(key, body, timeout)
    return _public(HttpResponse(body, content_type="application/json"), etag)


def acting_user(request: Request) -> User | None:
    return request.user if isinstance(request.user, User) else None


class CatalogReadMixin:
    """Catalog GETs authenticate JWTs with `CatalogReadJWTAuthentication` (no per-request
    user query) and count throttles in process memory (no cache round trip); writes keep the
    project's defaults."""

    def get_throttles(self) -> list[BaseThrottle]:
        if getattr(self, "_safe_request", False):
            return [CatalogReadAnonThrottle(), CatalogReadUserThrottle()]
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
    destroy=extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted"),
            **domain_error_responses(ProtectedError),
        }
    ),
)
class CategoryViewSet(CatalogReadMixin, viewsets.GenericViewSet[Category]):
    """The category tree. Anyone reads; staff write."""

    queryset = Category.objects.all()
    serializer_class = CategoryOutputSerializer
    permission_classes = [IsStaffOrReadOnly]
    filter_backends: list[Any] = []
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def list(self, request: Request) -> HttpResponse:
        def build() -> Any:
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
        def build() -> Any:
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

        def build() -> Any:
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
    destroy=extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted"),
            **domain_error_responses(ProtectedError),
        }
    ),
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

    @staticmethod
    def lookup_filter(value: int | str) -> Q:
        """A product by id (all digits) or by slug, regardless of case (a slug is never all
        digits: see `services.product_slug`)."""
        if isinstance(value, int) or (value.isascii() and value.isdigit()):
            return Q(pk=int(value))
        return Q(Exact(Lower("slug"), value.lower()))

    def list(self, request: Request) -> HttpResponse:
        def build() -> Any:
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
                attrs=[tuple(item.split(":", 1)) for item in query.get("attr", [])],
                sku=query.get("sku", ""),
                ordering=query.get("ordering", ""),
                is_active=query.get("is_active"),
            )
            products = selectors.product_list(staff=staff, filters=filters)
            paginator = self.paginator
            assert isinstance(paginator, CatalogPagination)
            page = paginator.paginate_rows(
                rows=selectors.product_rows(products, staff=staff),
                count_from=products.order_by(),
                request=request,
            )
            if (
                not page
                and filters.category
                and not selectors.category_exists(value=filters.category)
            ):  # checked only for an empty page, so a good filter costs no extra query
                raise ValidationError({"category": ["No such category."]})
            return paginator.get_paginated_response(product_dicts(page)).data

        return catalog_read(request, build)

    def _detail(self, request: Request, pk: int | str) -> dict[str, Any]:
        staff = is_staff_user(request.user)
        products = selectors.product_list(staff=staff, filters=selectors.ProductFilters())
        row = selectors.product_rows(
            products.filter(self.lookup_filter(pk)), staff=staff, images=True
        ).first()
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
        return catalog_read(request, lambda: self._detail(request, pk))

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
        level = StockLevel.objects.filter(product_id=int(pk)).first() if pk.isdigit() else None
        if level is None:
            raise NotFound()
        return Response(StockLevelOutputSerializer(level).data)

    @extend_schema(
        request=StockAdjustInputSerializer,
        responses={201: StockMovementOutputSerializer, **domain_error_responses(InsufficientStock)},
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
