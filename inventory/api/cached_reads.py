"""The catalog response cache, and the middleware that answers its hits before the rest of the
stack.

What is cached: a public catalog read (anyone but staff; `inventory.api.views.catalog_read`) as
the stack answered it, under the catalog version read before the database was (inventory.cache):
the body, its headers as the middleware below this one and DRF made them (Content-Type,
Cache-Control, Vary, Allow, X-Frame-Options, Content-Length; not the ETag, which names the kind
of caller) and the view's name for the request metrics. Any catalog write replaces the version,
and with it every entry.

`CachedCatalogReadMiddleware` (just inside CORS in `MIDDLEWARE`) owns the entries:

- **Hits.** A GET under `products/` or `categories/` asking for JSON (no Accept, `*/*`,
  `application/json`; no `?format=`), from an anonymous caller or with a customer's token: one
  MGET reads the catalog version and the entry for (host, path, query string). When the entry is
  current, the caller is counted by the catalog read throttle (one EVALSHA) and answered from it:
  200, or 304 for a matching If-None-Match. Sessions, CSRF, URL resolution and DRF are never
  entered, and the database is not touched.
- **Everything else goes down the stack, which answers as it always did**: a miss, a staff or
  admin token, a token that does not verify (its 401), another Accept, a caller over its rate
  (the 429 in the one error shape; the request is not counted twice). On a miss the version
  the middleware read is handed down (`SEEN_ATTRIBUTE`), so the view does not read it again,
  and on the way back a response the view marked cacheable (`mark_cacheable`) is stored.

A customer's token is verified as `CatalogReadJWTAuthentication` verifies it (signature, expiry,
token type, `role` claim; inventory/api/authentication.py) and never looked up. What a hit
answers is what the stack answered when it stored the entry, but for the caller's ETag
(inventory/tests/test_cached_reads.py holds them side by side).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from rest_framework.settings import api_settings

from common.metrics import VIEW_NAME_ATTRIBUTE

from ..cache import (
    catalog_etag,
    current_catalog_version,
    http_max_age,
    response_key,
    response_timeout,
    versioned_get,
    versioned_set,
)
from .authentication import CatalogReader, CatalogReadJWTAuthentication
from .throttling import COUNTED_ATTRIBUTE, CatalogReadThrottle

R = TypeVar("R", bound=HttpResponseBase)

# Where the middleware leaves (version, entry) for the view on a miss, and where the view leaves
# (key, version, timeout) on a response the middleware may store.
SEEN_ATTRIBUTE = "catalog_cache_seen"
_CACHEABLE_ATTRIBUTE = "catalog_cache_entry"

# What nearly every client sends; anything else is negotiated by DRF as usual.
PLAIN_ACCEPTS = frozenset({"*/*", "application/json", "application/json, text/plain, */*"})

# Headers a cached entry does not keep: the ETag is computed per kind of caller.
_PER_CALLER = frozenset({"etag"})


@dataclass(frozen=True)
class CachedResponse:
    body: bytes
    headers: tuple[tuple[str, str], ...]
    view_name: str


def cache_parts(request: HttpRequest) -> tuple[str, str, str]:
    """What a public catalog response varies with besides the caller: the host (pagination links
    are absolute URLs), the path and the query string."""
    return request.get_host(), request.path, request.META.get("QUERY_STRING", "")


def caller_kind(user: Any) -> str:
    return "customer" if user.is_authenticated else "anonymous"


def if_none_match(request: HttpRequest, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (weak comparison, RFC 9110 13.1.2)."""
    header = request.META.get("HTTP_IF_NONE_MATCH", "")
    return bool(header) and etag in (tag.removeprefix("W/") for tag in parse_etags(header))


def public(response: R, etag: str | None) -> R:
    """A public catalog response (API.md): cacheable by browsers and CDNs, with its ETag."""
    response["Cache-Control"] = f"public, max-age={http_max_age()}"
    if etag is not None:
        response["ETag"] = etag
    # Staff get another body for the same URL: a shared cache must not hand them this one.
    patch_vary_headers(response, ["Authorization"])
    return response


def seen_by_middleware(
    request: HttpRequest, parts: tuple[str, str, str]
) -> tuple[str | None, CachedResponse | None]:
    """The catalog version and current entry for this request (its `cache_parts`): as the
    middleware read them, or read now (one round trip; the version alone when the response
    cache is off)."""
    seen: tuple[str, None] | None = getattr(request, SEEN_ATTRIBUTE, None)
    if seen is not None:
        return seen
    if response_timeout() <= 0:
        return current_catalog_version(), None
    version, entry = versioned_get(response_key(*parts))
    # An entry of another shape (written by an earlier release) is a miss, replaced on the way out.
    return version, entry if isinstance(entry, CachedResponse) else None


def mark_cacheable(response: HttpResponseBase, parts: tuple[str, str, str], version: str) -> None:
    """Let the middleware keep `response` (the read of `parts`) under `version` on its way
    out."""
    timeout = response_timeout()
    if timeout > 0:
        setattr(response, _CACHEABLE_ATTRIBUTE, (response_key(*parts), version, timeout))


def answer_from(entry: CachedResponse, request: HttpRequest, etag: str) -> HttpResponse:
    """The stored response for this caller, or its 304."""
    response: HttpResponse
    if if_none_match(request, etag):
        response = public(HttpResponseNotModified(), etag)
        for name, value in entry.headers:
            if name.lower() not in ("content-type", "content-length"):
                response[name] = value
        response["Content-Length"] = "0"
        return response
    response = HttpResponse(entry.body)
    for name, value in entry.headers:
        response[name] = value
    response["ETag"] = etag
    return response


class CachedCatalogReadMiddleware:
    """See the module's doc."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.authentication = CatalogReadJWTAuthentication()

    @cached_property
    def prefixes(self) -> tuple[str, ...]:
        return (reverse("product-list"), reverse("category-list"))

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self._may_hit(request):
            hit = self._hit(request)
            if hit is not None:
                return hit
        response = self.get_response(request)
        self._store(request, response)
        return response

    def _may_hit(self, request: HttpRequest) -> bool:
        return (
            request.method == "GET"
            and response_timeout() > 0
            and request.path_info.startswith(self.prefixes)
            and request.META.get("HTTP_ACCEPT", "*/*") in PLAIN_ACCEPTS
            and api_settings.URL_FORMAT_OVERRIDE not in request.GET
        )

    def _hit(self, request: HttpRequest) -> HttpResponseBase | None:
        user: CatalogReader | AnonymousUser | None = AnonymousUser()
        if "HTTP_AUTHORIZATION" in request.META:
            user = self.authentication.customer(request)
            if user is None:  # staff, or a token the stack must answer for
                return None
        parts = cache_parts(request)
        version, entry = versioned_get(response_key(*parts))
        if version is None:  # the cache is unreachable
            return None
        setattr(request, SEEN_ATTRIBUTE, (version, None))
        if not isinstance(entry, CachedResponse):
            return None
        request.user = user  # type: ignore[assignment]  # for the access log, as DRF sets it
        throttle = CatalogReadThrottle()
        if not throttle.allow_caller(request, user):
            setattr(request, COUNTED_ATTRIBUTE, throttle)  # the view answers the 429
            return None
        setattr(request, VIEW_NAME_ATTRIBUTE, entry.view_name)
        return answer_from(entry, request, catalog_etag(version, *parts, caller_kind(user)))

    @staticmethod
    def _store(request: HttpRequest, response: HttpResponseBase) -> None:
        cacheable: tuple[str, str, int] | None = getattr(response, _CACHEABLE_ATTRIBUTE, None)
        if cacheable is None or response.status_code != 200 or response.cookies:
            return
        if not isinstance(response, HttpResponse):
            return
        key, version, timeout = cacheable
        match = getattr(request, "resolver_match", None)
        entry = CachedResponse(
            body=response.content,
            headers=tuple(
                (name, value) for name, value in response.items() if name.lower() not in _PER_CALLER
            ),
            view_name=match.view_name if match is not None and match.view_name else "",
        )
        versioned_set(key, version, entry, timeout)
