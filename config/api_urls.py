"""Everything under /api/v1/: one router for the viewsets, plus each app's command endpoints."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api.urls import register as register_accounts

router = DefaultRouter()
router.include_root_view = False
register_accounts(router)

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include(router.urls)),
]
