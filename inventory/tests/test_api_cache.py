"""Catalog reads are cached for everyone but staff; any catalog write makes the next read fresh."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection

from inventory.cache import VERSION_KEY
from inventory.models import Product
from inventory.services import (
    StockLine,
    category_update,
    product_update,
    stock_adjust,
    stock_reserve,
)

pytestmark = pytest.mark.django_db


def sneak_rename(product, name):
    """Change the row behind the services' back, so only a cache miss can show it."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_product SET name = %s WHERE id = %s", [name, product.pk])


def test_anonymous_reads_are_cached(api_client, product, django_assert_num_queries):
    url = f"/api/v1/products/{product.pk}/"
    assert api_client.get(url).json()["name"] == "Studio Headphones"
    assert api_client.get("/api/v1/products/").json()["results"][0]["name"] == "Studio Headphones"
    sneak_rename(product, "Renamed Behind The Cache")
    with django_assert_num_queries(0):
        assert api_client.get(url).json()["name"] == "Studio Headphones"
        list_body = api_client.get("/api/v1/products/").json()
    assert list_body["results"][0]["name"] == "Studio Headphones"


def test_staff_reads_are_never_cached(staff_client, product):
    url = f"/api/v1/products/{product.pk}/"
    staff_client.get(url)
    sneak_rename(product, "Fresh For Staff")
    assert staff_client.get(url).json()["name"] == "Fresh For Staff"


@pytest.mark.parametrize(
    "write",
    [
        lambda product: product_update(product=product, changes={"price_cents": 1}),
        lambda product: stock_adjust(product_id=product.pk, delta=1, reason="receipt", actor=None),
        lambda product: stock_reserve(
            lines=[StockLine(product.pk, 1)], actor=None, reference="o:1"
        ),
        lambda product: category_update(category=product.category, description="new"),
    ],
    ids=["product", "stock-adjust", "reservation", "category"],
)
def test_any_catalog_write_makes_next_read_fresh(
    api_client, product, write, django_capture_on_commit_callbacks
):
    url = f"/api/v1/products/{product.pk}/"
    api_client.get(url)
    api_client.get("/api/v1/categories/tree/")
    sneak_rename(product, "Seen After The Write")
    with django_capture_on_commit_callbacks(execute=True):
        write(Product.objects.get(pk=product.pk))
    assert api_client.get(url).json()["name"] == "Seen After The Write"


def test_api_write_invalidates(
    api_client, staff_client, product, django_capture_on_commit_callbacks
):
    url = f"/api/v1/products/{product.pk}/"
    assert api_client.get(url).json()["price_cents"] == product.price_cents
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.patch(url, {"price_cents": 777}, format="json")
    assert api_client.get(url).json()["price_cents"] == 777


def test_evicted_version_never_brings_old_entries_back(api_client, product):
    url = f"/api/v1/products/{product.pk}/"
    api_client.get(url)
    old_version = cache.get(VERSION_KEY)
    cache.delete(VERSION_KEY)
    sneak_rename(product, "After Eviction")
    assert api_client.get(url).json()["name"] == "After Eviction"
    assert cache.get(VERSION_KEY) != old_version


@pytest.mark.redis
def test_cached_reads_live_in_redis(api_client, product):
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    api_client.get(f"/api/v1/products/{product.pk}/")
    keys = get_redis_connection("default").keys("*catalog:*")
    assert len(keys) == 2  # the version and the one response


def test_cache_can_be_turned_off(api_client, product, settings):
    settings.CATALOG_CACHE_SECONDS = 0
    url = f"/api/v1/products/{product.pk}/"
    api_client.get(url)
    sneak_rename(product, "No Cache")
    assert api_client.get(url).json()["name"] == "No Cache"


def test_jwt_catalog_reads_of_a_customer_make_no_user_query(
    product, make_user, django_assert_num_queries
):
    from conftest import client_for

    client = client_for(make_user("customer"))
    url = f"/api/v1/products/{product.pk}/"
    with django_assert_num_queries(1):  # the product; the token is taken at its word
        client.get(url)
    with django_assert_num_queries(0):  # the response is cached
        assert client.get(url).status_code == 200


def test_catalog_writes_still_check_the_user_every_time(
    product, staff, django_capture_on_commit_callbacks
):
    from conftest import client_for

    client = client_for(staff)
    assert client.get(f"/api/v1/products/{product.pk}/").status_code == 200
    staff.is_active = False
    staff.save()
    response = client.patch(f"/api/v1/products/{product.pk}/", {"price_cents": 1}, format="json")
    assert response.status_code == 401


def test_catalog_reads_are_throttled(api_client, product, monkeypatch):
    from inventory.api import throttling

    monkeypatch.setattr(throttling.CatalogReadThrottle, "THROTTLE_RATES", {"anon": "2/min"})
    url = f"/api/v1/products/{product.pk}/"
    assert [api_client.get(url).status_code for _ in range(3)] == [200, 200, 429]


def test_a_customer_token_stops_at_its_expiry(product, make_user):
    import time as time_module
    from datetime import UTC, datetime
    from unittest import mock

    from conftest import client_for

    client = client_for(make_user("customer"))
    url = f"/api/v1/products/{product.pk}/"
    assert client.get(url).status_code == 200
    later = time_module.time() + 3600
    with mock.patch(
        "rest_framework_simplejwt.tokens.aware_utcnow",
        return_value=datetime.fromtimestamp(later, tz=UTC),
    ):
        assert client.get(url).status_code == 401


def test_bad_token_on_catalog_read_is_401(api_client, product):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert api_client.get(f"/api/v1/products/{product.pk}/").status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION="Basic abc")
    assert api_client.get(f"/api/v1/products/{product.pk}/").status_code == 200


def test_a_suspended_staff_member_loses_the_staff_catalog_view_at_once(make_user):
    from conftest import client_for

    staff_member = make_user("staff")
    client = client_for(staff_member)
    url = "/api/v1/products/?is_active=false"
    assert client.get(url).status_code == 200  # staff may filter inactive products
    staff_member.is_active = False
    staff_member.save()
    response = client.get(url)
    assert response.status_code == 401
    assert [error["code"] for error in response.json()["errors"]] == ["user_inactive"]


def test_a_staff_token_is_checked_on_every_catalog_read(
    product, make_user, django_assert_num_queries
):
    from conftest import client_for

    client = client_for(make_user("staff"))
    url = f"/api/v1/products/{product.pk}/"
    client.get(url)
    with django_assert_num_queries(2) as captured:  # staff reads are not cached
        assert client.get(url).status_code == 200
    assert '"accounts_user"' in captured.captured_queries[0]["sql"]  # the user, every time
