"""Content-Security-Policy on the admin and the API docs, and ReDoc without outside requests.

The pages under `/admin/`, `/api/docs/` and `/api/redoc/` load everything from this server
(API.md, "Outside /api/v1/"): scripts only from files here (no inline script: Swagger UI's
initialiser is fetched from `?script`, config/urls.py), styles from files here plus inline ones
(the stock admin's and our admin pages' `style` attributes and ReDoc's generated styles: no hash
can cover them), images from here, `data:` URIs and the media storage's origin (product images
on S3 or a CDN), no framing by anyone. ReDoc builds its search index in a worker from a `blob:`
URL, which `worker-src` allows on the ReDoc page alone.

ReDoc's bundle shows the Redocly logo from cdn.redoc.ly in its sidebar, with no option to turn
it off; `redoc_bundle` serves the bundle (from drf-spectacular-sidecar) with that one URL
replaced by an empty inline image, so the page makes no request to another host and no CSP
violation (`SPECTACULAR_SETTINGS["REDOC_DIST"]` points at it).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified

HEADER = "Content-Security-Policy"
# The pages that get the policy: the admin (its login page included) and the docs.
PROTECTED_PREFIXES = ("/admin/", "/api/docs/", "/api/redoc/")

REDOC_LOGO_URL = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = "data:image/svg+xml,%3Csvg%20xmlns=%22http://www.w3.org/2000/svg%22/%3E"


def content_security_policy(path: str) -> str:
    images = " ".join(["'self'", "data:", *_media_origins()])
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        f"img-src {images}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:" if path.startswith("/api/redoc/") else "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


@functools.cache
def _media_origins() -> tuple[str, ...]:
    """The origin of uploaded images when they live elsewhere (absolute MEDIA_URL, S3, a CDN)."""
    try:
        url = storages["default"].url("csp-origin-probe")
    except Exception:  # noqa: BLE001 (a storage that cannot build a URL here: nothing extra is allowed)
        return ()
    parts = urlsplit(url)
    if parts.scheme in {"http", "https"} and parts.netloc:
        return (f"{parts.scheme}://{parts.netloc}",)
    return ()


@receiver(setting_changed)
def _forget_media_origins(*, setting: str, **kwargs: Any) -> None:
    if setting in {"STORAGES", "MEDIA_URL"}:
        _media_origins.cache_clear()


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        path = request.path_info
        if path.startswith(PROTECTED_PREFIXES) and not response.has_header(HEADER):
            response[HEADER] = content_security_policy(path)
        return response


@functools.cache
def _redoc_bundle() -> tuple[bytes, bytes, str]:
    """ReDoc's standalone bundle without its outside request: (body, gzipped body, ETag)."""
    import drf_spectacular_sidecar

    path = (
        Path(drf_spectacular_sidecar.__file__).parent
        / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
    )
    body = path.read_bytes().replace(REDOC_LOGO_URL.encode(), EMPTY_IMAGE.encode())
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return body, gzip.compress(body, compresslevel=6), etag


def redoc_bundle(request: HttpRequest) -> HttpResponseBase:
    body, compressed, etag = _redoc_bundle()
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponseBase = HttpResponseNotModified()
    elif "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(compressed, content_type="text/javascript; charset=utf-8")
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=86400"
    response["Vary"] = "Accept-Encoding"
    return response
