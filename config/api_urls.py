"""Everything under /api/v1/: one router for the viewsets, plus each app's other endpoints.

Each app's `api/urls.py` has `register(router)` for its viewsets and `urlpatterns` for the rest.
"""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api import urls as accounts_urls
from inventory.api import urls as inventory_urls
from orders.api import urls as orders_urls
from payments.api import urls as payments_urls
from reports.api import urls as reports_urls

APPS = (accounts_urls, inventory_urls, orders_urls, payments_urls, reports_urls)

router = DefaultRouter()
router.include_root_view = False
for app_urls in APPS:
    app_urls.register(router)

urlpatterns = [
    *(path("", include(app_urls)) for app_urls in APPS),
    path("", include(router.urls)),
]
