import re
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.core.files.storage import FileSystemStorage
from django.http import HttpRequest, HttpResponseBase
from django.urls import include, path, re_path
from django.utils.module_loading import import_string
from django.views.static import serve
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from common import health, metrics, security

admin.site.site_header = "Shop backend administration"
admin.site.site_title = "Shop admin"
admin.site.index_title = "Catalog, stock, orders and people"
admin.site.site_url = settings.ADMIN_SITE_URL

urlpatterns = [
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's initialiser comes from `?script`, not an inline script (Content-Security-Policy).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # ReDoc's bundle without its request to cdn.redoc.ly (common/security.py).
    path("api/redoc/bundles/redoc.standalone.js", security.redoc_bundle, name="redoc-bundle"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]


def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """Uploaded files while storage is the local filesystem (the single-host setup). Names are
    unique and never reused (inventory/images.py), so every response may be cached for good."""
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# With S3 storage the bucket (or its CDN) serves the files; the app only while they are local.
if issubclass(import_string(settings.STORAGES["default"]["BACKEND"]), FileSystemStorage):
    _media_prefix = urlsplit(settings.MEDIA_URL).path.strip("/")
    urlpatterns.append(re_path(rf"^{re.escape(_media_prefix)}/(?P<path>.+)$", media, name="media"))

handler400 = "common.exceptions.handler400"
handler403 = "common.exceptions.handler403"
handler404 = "common.exceptions.handler404"
handler500 = "common.exceptions.handler500"
