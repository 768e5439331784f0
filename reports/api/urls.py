"""Reports endpoints (staff only)."""

from __future__ import annotations

from django.urls import URLPattern
from rest_framework.routers import DefaultRouter

urlpatterns: list[URLPattern] = []


def register(router: DefaultRouter) -> None:
    """No viewsets: the reports are plain views in `urlpatterns`."""
