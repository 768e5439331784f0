"""`/api/v1/` is the API root (an index of the collections), and every authenticated response
that says nothing about caching says `Cache-Control: no-store` (API.md)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory

from common.middleware import NoStoreForAuthenticatedMiddleware

pytestmark = pytest.mark.django_db

COLLECTIONS = {
    "users",
    "users/me",
    "categories",
    "categories/tree",
    "products",
    "stock-movements",
    "inventory/low-stock",
    "cart",
    "orders",
    "payment-methods",
    "payments",
    "reports/sales",
    "reports/top-products",
    "reports/inventory",
}


def test_the_api_root_lists_every_collection_to_anyone(api_client):
    response = api_client.get("/api/v1/")
    assert response.status_code == 200
    index = response.json()
    assert set(index) == COLLECTIONS
    for name, url in index.items():
        assert url == f"http://testserver/api/v1/{name}/"
    # POST-only endpoints (auth/token/, cart/items/) and routes with an id are not collections.
    assert not any(name.startswith("auth") or "{" in name for name in index)
    assert "Cache-Control" not in response  # anonymous: nothing to keep private


def test_every_listed_collection_answers_get(admin_client_api):
    for name, url in admin_client_api.get("/api/v1/").json().items():
        assert admin_client_api.get(url).status_code == 200, name


def test_the_api_root_is_in_the_schema(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    assert "get" in schema["paths"]["/api/v1/"]


@pytest.mark.parametrize("url", ["/api/v1/orders/", "/api/v1/cart/", "/api/v1/users/me/"])
def test_authenticated_responses_are_no_store(customer_client, url):
    response = customer_client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_authenticated_writes_and_errors_are_no_store(customer_client, api_client):
    assert customer_client.get("/api/v1/no-such-thing/")["Cache-Control"] == "no-store"
    assert customer_client.get("/api/v1/reports/sales/")["Cache-Control"] == "no-store"  # 403
    assert customer_client.get("/api/v1/")["Cache-Control"] == "no-store"
    # A bad token is an Authorization header all the same.
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = api_client.get("/api/v1/orders/")
    assert (response.status_code, response["Cache-Control"]) == (401, "no-store")


def test_anonymous_responses_are_left_alone(api_client):
    assert "Cache-Control" not in api_client.get("/api/v1/orders/")  # 401
    assert "Cache-Control" not in api_client.get("/api/v1/no-such-thing/")  # 404


def middleware_response(request, response=None):
    middleware = NoStoreForAuthenticatedMiddleware(lambda request: response or HttpResponse())
    return middleware(request)


def test_the_middleware_sees_session_users_and_headers(make_user):
    factory = RequestFactory()
    signed_in = factory.get("/admin/something/")
    signed_in.user = make_user("staff")
    assert middleware_response(signed_in)["Cache-Control"] == "no-store"
    anonymous = factory.get("/somewhere/")
    anonymous.user = AnonymousUser()
    assert not middleware_response(anonymous).has_header("Cache-Control")
    assert not middleware_response(factory.get("/no-user-at-all/")).has_header("Cache-Control")
    with_header = factory.get("/somewhere/", HTTP_AUTHORIZATION="Bearer x")
    assert middleware_response(with_header)["Cache-Control"] == "no-store"


def test_the_middleware_keeps_a_cache_control_already_set():
    request = RequestFactory().get("/api/v1/products/", HTTP_AUTHORIZATION="Bearer x")
    public = HttpResponse()
    public["Cache-Control"] = "public, max-age=60"
    assert middleware_response(request, public)["Cache-Control"] == "public, max-age=60"


def test_the_admin_keeps_its_own_never_cache(admin_user, client):
    client.force_login(admin_user)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
