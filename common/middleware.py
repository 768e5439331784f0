"""X-Request-ID on every request and response, and one JSON access-log line per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from .health import healthz, readyz
from .logging import request_id_var

access_logger = logging.getLogger("shop.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id_from(request: HttpRequest) -> str:
    given = request.headers.get("X-Request-ID", "")
    # A client's id is echoed only when it is safe to put in a header and a log line.
    return given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = _request_id_from(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            user = getattr(request, "user", None)
            access_logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": user.pk if user is not None and user.is_authenticated else None,
                },
            )
            return response
        finally:
            request_id_var.reset(token)


class HealthCheckMiddleware:
    """Answer `/healthz` and `/readyz` first, before host validation and the HTTPS redirect.

    A container healthcheck or a load balancer probes `http://127.0.0.1:8000/readyz`; with
    `ALLOWED_HOSTS` set to the real domain and `SECURE_SSL_REDIRECT` on, that probe would get a
    400 or a 301 from the middleware below. These two paths read nothing from the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info == "/healthz":
            return healthz(request)
        if request.path_info == "/readyz":
            return readyz(request)
        return self.get_response(request)


class NoStoreForAuthenticatedMiddleware:
    """`Cache-Control: no-store` on every response to an authenticated request (API.md).

    Authenticated means an `Authorization` header (valid or not: the answer depends on it) or a
    signed-in user: a session's, or the one DRF authenticated (it sets `request.user` too). A
    response that already says how to cache it keeps its own header: the public catalog reads
    (`inventory.api.views.catalog_read`), the admin's `never_cache`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and _authenticated(request):
            response["Cache-Control"] = "no-store"
        return response


def _authenticated(request: HttpRequest) -> bool:
    if "HTTP_AUTHORIZATION" in request.META:
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)
