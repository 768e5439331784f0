from django.urls import path
from rest_framework.routers import BaseRouter

from .images import ProductImageDetailView, ProductImageListView
from .views import CategoryViewSet, LowStockListView, ProductViewSet, StockMovementViewSet

urlpatterns = [
    path("inventory/low-stock/", LowStockListView.as_view(), name="inventory-low-stock"),
    path(
        "products/<int:product_id>/images/",
        ProductImageListView.as_view(),
        name="product-image-list",
    ),
    path(
        "products/<int:product_id>/images/<int:image_id>/",
        ProductImageDetailView.as_view(),
        name="product-image-detail",
    ),
]


def register(router: BaseRouter) -> None:
    """Register this app's viewsets on the one API router."""
    router.register("categories", CategoryViewSet, basename="category")
    router.register("products", ProductViewSet, basename="product")
    router.register("stock-movements", StockMovementViewSet, basename="stock-movement")
