"""Reports endpoints (staff only)."""

from __future__ import annotations

from django.urls import URLPattern, path
from rest_framework.routers import DefaultRouter

from .views import InventoryReportView, SalesReportView, TopProductsReportView

urlpatterns: list[URLPattern] = [
    path("reports/sales/", SalesReportView.as_view(), name="reports-sales"),
    path("reports/top-products/", TopProductsReportView.as_view(), name="reports-top-products"),
    path("reports/inventory/", InventoryReportView.as_view(), name="reports-inventory"),
]


def register(router: DefaultRouter) -> None:
    """No viewsets: the reports are plain views in `urlpatterns`."""
