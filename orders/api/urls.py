from django.urls import path
from rest_framework.routers import BaseRouter

from .views import CartItemDetailView, CartItemListView, CartView, OrderViewSet

urlpatterns = [
    path("cart/", CartView.as_view(), name="cart"),
    path("cart/items/", CartItemListView.as_view(), name="cart-items"),
    path("cart/items/<int:item_id>/", CartItemDetailView.as_view(), name="cart-item-detail"),
]


def register(router: BaseRouter) -> None:
    """Register this app's viewsets on the one API router."""
    router.register("orders", OrderViewSet, basename="order")
