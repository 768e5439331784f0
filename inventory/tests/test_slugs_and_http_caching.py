"""Readable product URLs (`products/{id or slug}/`, unique slugs, never all digits) and public
catalog responses a browser or a CDN may cache (ETag, `Cache-Control: public`, 304)."""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from conftest import client_for
from inventory.catalog_csv import COLUMNS, import_catalog
from inventory.exceptions import CatalogValidationError
from inventory.models import Product
from inventory.services import catalog as catalog_services
from inventory.services import (
    category_create,
    category_update,
    product_update,
    stock_adjust,
)

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS)


def write_csv(tmp_path, *rows, name="products.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def slugs():
    return dict(Product.objects.values_list("sku", "slug"))


# =============================================================================
# The slug route
# =============================================================================
def test_a_product_is_found_by_slug_and_by_id(api_client, product):
    assert product.slug == "studio-headphones-hp-100"
    by_id = api_client.get(f"/api/v1/products/{product.pk}/")
    by_slug = api_client.get("/api/v1/products/studio-headphones-hp-100/")
    assert by_id.status_code == by_slug.status_code == 200
    assert by_slug.json() == by_id.json()
    # Regardless of case, as the slug is unique regardless of case.
    assert api_client.get("/api/v1/products/Studio-Headphones-HP-100/").json()["id"] == product.pk


def test_staff_read_by_slug_too(staff_client, make_product):
    hidden = make_product(sku="OLD-1", name="Old Lamp", is_active=False)
    assert staff_client.get(f"/api/v1/products/{hidden.slug}/").json()["id"] == hidden.pk


def test_unknown_or_inactive_slugs_are_404(api_client, make_product):
    hidden = make_product(sku="OLD-1", name="Old Lamp", is_active=False)
    assert api_client.get("/api/v1/products/no-such-thing/").status_code == 404
    assert api_client.get(f"/api/v1/products/{hidden.slug}/").status_code == 404
    assert api_client.get("/api/v1/products/bad.slug/").status_code == 404  # not a route


def test_reading_by_slug_costs_what_reading_by_id_does(
    api_client, product, django_assert_num_queries
):
    with django_assert_num_queries(1):  # the product (with its stock and images), once
        api_client.get(f"/api/v1/products/{product.slug}/")


def test_staff_writes_and_stock_keep_the_numeric_id(staff_client, product):
    slug_url = f"/api/v1/products/{product.slug}/"
    assert staff_client.patch(slug_url, {"price_cents": 1}, format="json").status_code == 404
    assert staff_client.delete(slug_url).status_code == 404
    assert staff_client.get(f"{slug_url}stock/").status_code == 404
    adjust = {"delta": 1, "reason": "receipt"}
    assert staff_client.post(f"{slug_url}stock/adjust/", adjust, format="json").status_code == 404
    assert staff_client.get(f"/api/v1/products/{product.pk}/stock/").status_code == 200
    response = staff_client.patch(
        f"/api/v1/products/{product.pk}/", {"price_cents": 1}, format="json"
    )
    assert response.status_code == 200


def test_a_slug_never_looks_like_an_id(api_client, make_product):
    dated = make_product(sku="42", name="2024")
    assert dated.slug == "2024-42"
    # A name that slugifies to nothing leaves the SKU alone: all digits, so it gets a prefix.
    symbols = make_product(sku="12345", name="¡¿!")
    assert symbols.slug == "p-12345"
    assert api_client.get("/api/v1/products/p-12345/").json()["id"] == symbols.pk
    assert api_client.get(f"/api/v1/products/{symbols.pk}/").json()["id"] == symbols.pk
    # The database refuses one all the same (and an empty one).
    for bad in ("12345", ""):
        with pytest.raises(IntegrityError), transaction.atomic():
            Product.objects.filter(pk=symbols.pk).update(slug=bad)


def test_names_and_skus_that_slugify_alike_get_different_slugs(api_client, make_product):
    first = make_product(name="Foo Bar", sku="X1")
    second = make_product(name="Foo", sku="Bar-X1")
    third = make_product(name="¡!", sku="Foo-Bar-X1")
    assert [first.slug, second.slug, third.slug] == ["foo-bar-x1", "foo-bar-x1-2", "foo-bar-x1-3"]
    for product in (first, second, third):
        assert api_client.get(f"/api/v1/products/{product.slug}/").json()["id"] == product.pk
    # A slug does not move while its name and SKU stay: not when another product frees the base.
    first = product_update(product=first, changes={"name": "Other Name"})
    assert first.slug == "other-name-x1"
    second = product_update(product=second, changes={"price_cents": 1})
    assert second.slug == "foo-bar-x1-2"
    # A product whose name changes takes the first free slug of its new base.
    fourth = make_product(name="Other", sku="Name-X1")
    assert fourth.slug == "other-name-x1-2"


def test_the_slug_is_unique_regardless_of_case_in_the_database(make_product):
    first = make_product(name="Lamp", sku="L1")
    second = make_product(name="Desk", sku="D1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=second.pk).update(slug=first.slug.upper())


def test_a_slug_taken_by_a_concurrent_writer_is_picked_again(make_product, monkeypatch):
    taken = make_product(name="Lamp", sku="L1")
    real = catalog_services.unique_product_slug
    calls = []

    def stale_then_real(**kwargs):
        calls.append(kwargs)
        # The first check ran before the other writer committed: it offers the taken slug.
        return taken.slug if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(catalog_services, "unique_product_slug", stale_then_real)
    product = make_product(name="Lamp", sku="l1-2")
    assert (product.slug, len(calls)) == ("lamp-l1-2", 2)


def test_a_slug_conflict_that_never_clears_is_an_error(make_product, monkeypatch):
    taken = make_product(name="Lamp", sku="L1")
    monkeypatch.setattr(catalog_services, "unique_product_slug", lambda **kwargs: taken.slug)
    with pytest.raises(IntegrityError):
        make_product(name="Desk", sku="D1")


def test_a_sku_taken_concurrently_is_still_a_sku_error(make_product, monkeypatch):
    make_product(name="Lamp", sku="L1")
    monkeypatch.setattr(catalog_services, "_check_sku_free", lambda *args, **kwargs: None)
    with pytest.raises(CatalogValidationError, match="SKU"):
        make_product(name="Other Lamp", sku="l1")


# =============================================================================
# The CSV import: same slugs as the services, idempotent, set-based
# =============================================================================
def test_import_gives_alike_rows_different_slugs_and_reimport_changes_nothing(
    tmp_path, make_product
):
    make_product(name="Foo Bar", sku="X1")  # holds the base `foo-bar-x1`
    path = write_csv(
        tmp_path,
        "Bar-X1,Foo,Home,1.00,USD,1,0,true,,",
        "Foo-Bar-X1,¡!,Home,1.00,USD,1,0,true,,",
        "777,???,Home,1.00,USD,1,0,true,,",
        "Lamp-1,Lamp,Home,1.00,USD,1,0,true,,",
    )
    first = import_catalog(path)
    assert (first.ok, first.created) == (True, 4)
    assert slugs() == {
        "X1": "foo-bar-x1",
        "Bar-X1": "foo-bar-x1-2",
        "Foo-Bar-X1": "foo-bar-x1-3",
        "777": "p-777",
        "Lamp-1": "lamp-lamp-1",
    }
    before = list(Product.objects.order_by("pk").values_list("pk", "slug", "updated_at"))
    again = import_catalog(path)
    assert (again.ok, again.created, again.updated, again.unchanged) == (True, 0, 0, 4)
    assert list(Product.objects.order_by("pk").values_list("pk", "slug", "updated_at")) == before


def test_import_keeps_a_suffixed_slug_and_moves_only_renamed_products(tmp_path, make_product):
    make_product(name="Foo Bar", sku="X1")
    suffixed = make_product(name="Foo", sku="Bar-X1")
    assert suffixed.slug == "foo-bar-x1-2"
    renamed = make_product(name="Desk", sku="D1")
    path = write_csv(
        tmp_path,
        "Bar-X1,Foo,Home,1.00,USD,1,0,true,,",
        "D1,Standing Desk,Home,1.00,USD,1,0,true,,",
    )
    result = import_catalog(path)
    assert result.ok
    assert slugs()["Bar-X1"] == "foo-bar-x1-2"
    assert slugs()["D1"] == "standing-desk-d1"
    assert api_slug_id("standing-desk-d1") == renamed.pk


def api_slug_id(slug):
    from rest_framework.test import APIClient

    return APIClient().get(f"/api/v1/products/{slug}/").json()["id"]


def test_a_new_row_never_takes_a_slug_another_row_is_leaving(tmp_path, make_product):
    # `lamp-l1`'s product is renamed by the file while a new row wants that very slug: the new
    # row takes `-2`, so no write meets a slug before it is freed.
    make_product(name="Lamp", sku="L1")
    path = write_csv(
        tmp_path,
        "L1,Table Lamp,Home,1.00,USD,1,0,true,,",
        "l1-2,Lamp L1,Home,1.00,USD,1,0,true,,",  # base `lamp-l1-l1-2`: its own, no conflict
        "Lamp-L1,¡!,Home,1.00,USD,1,0,true,,",  # base `lamp-l1`: held by the product renamed above
    )
    assert import_catalog(path).ok
    assert slugs() == {"L1": "table-lamp-l1", "l1-2": "lamp-l1-l1-2", "Lamp-L1": "lamp-l1-2"}


def alike_rows(count, *, word="t"):
    """`count` rows whose names and SKUs all slugify to one base (`t-t-…-t`): the base split
    at a different dash each time (name "T T", SKU "T-T-T"...), and once as the SKU alone."""
    assert count <= 26
    parts = [word] * 26
    rows = [f"{'-'.join(parts).upper()},¡!,Home,1.00,USD,0,0,true,,"]
    rows += [
        f"{'-'.join(parts[i:]).upper()},{' '.join(parts[:i])},Home,1.00,USD,0,0,true,,"
        for i in range(1, count)
    ]
    return rows


def test_import_slug_resolution_takes_no_query_per_row(tmp_path):
    category_create(name="Home")

    def queries_for(rows, name):
        Product.objects.all().delete()
        path = write_csv(tmp_path, *rows, name=name)
        with CaptureQueriesContext(connection) as captured:
            assert import_catalog(path).ok
        return len(captured.captured_queries)

    plain = [f"P-{n},Plain {n},Home,1.00,USD,0,0,true,," for n in range(40)]
    assert queries_for(plain[:3], "a.csv") == queries_for(plain, "b.csv")
    # Alike rows cost a few queries more, but not one per row.
    assert queries_for([*plain[:3], *alike_rows(3)], "c.csv") == queries_for(
        [*plain, *alike_rows(15)], "d.csv"
    )


def test_many_rows_sharing_one_base_each_get_their_own_slug(tmp_path, make_product, monkeypatch):
    from inventory.catalog_csv import slugs as import_slugs

    # One candidate per waiting row and no spare: a held candidate takes a second round.
    monkeypatch.setattr(import_slugs, "SLUG_CANDIDATES_PER_QUERY", 0)
    base = "-".join(["t"] * 26)
    lamp = make_product(name="Lamp", sku="L1")
    Product.objects.filter(pk=lamp.pk).update(slug=f"{base}-5")  # held by another product
    assert import_catalog(write_csv(tmp_path, *alike_rows(26))).ok
    by_sku = slugs()
    assert by_sku[base.upper()] == base  # the first line keeps the base
    taken = sorted(slug for sku, slug in by_sku.items() if sku != "L1")
    expected = [base] + [f"{base}-{n}" for n in range(2, 28) if n != 5]
    assert taken == sorted(expected)
    again = import_catalog(write_csv(tmp_path, *alike_rows(26), name="again.csv"))
    assert (again.updated, again.unchanged) == (0, 26)
    assert slugs() == by_sku


# =============================================================================
# The migration's de-duplication of existing rows
# =============================================================================
def test_the_migration_makes_existing_slugs_unique_deterministically(make_product):
    migration = importlib.import_module("inventory.migrations.0004_product_slug_unique")
    products = [make_product(name=f"Lamp {n}", sku=f"L{n}") for n in range(6)]
    with connection.cursor() as cursor:
        # The state before the migration: no unique index, no check. (The products' deferred
        # foreign-key checks run first: a table with pending ones cannot be altered.)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DROP INDEX inventory_product_slug_ci_unique")
        cursor.execute(
            "ALTER TABLE inventory_product DROP CONSTRAINT inventory_product_slug_not_numeric"
        )
        old = ["lamp", "lamp", "LAMP", "lamp-2", "123", ""]
        for product, slug in zip(products, old, strict=True):
            cursor.execute(
                "UPDATE inventory_product SET slug = %s WHERE id = %s", [slug, product.pk]
            )
        migration.make_slugs_unique(None, SimpleNamespace(connection=connection))
        # What the migration adds next now holds.
        cursor.execute(
            "CREATE UNIQUE INDEX inventory_product_slug_ci_unique ON inventory_product "
            "(lower(slug))"
        )
        cursor.execute(
            "ALTER TABLE inventory_product ADD CONSTRAINT inventory_product_slug_not_numeric "
            "CHECK (NOT slug ~ '^[0-9]*$')"
        )
    assert [Product.objects.get(pk=p.pk).slug for p in products] == [
        "lamp",  # the lowest id keeps it
        "lamp-3",  # `lamp-2` is held
        "lamp-4",
        "lamp-2",
        "p-123",
        f"p-{products[5].pk}",
    ]


# =============================================================================
# Public catalog responses: ETag, Cache-Control, 304
# =============================================================================
PUBLIC_URLS = [
    "/api/v1/products/",
    "/api/v1/products/?ordering=-price_cents&page_size=5",
    "/api/v1/products/{product.pk}/",
    "/api/v1/products/{product.slug}/",
    "/api/v1/categories/",
    "/api/v1/categories/tree/",
    "/api/v1/categories/{product.category_id}/",
]


@pytest.fixture
def reader(request, api_client, make_user):
    return api_client if request.param == "anonymous" else client_for(make_user("customer"))


@pytest.mark.parametrize("reader", ["anonymous", "customer"], indirect=True)
@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_public_reads_carry_an_etag_and_are_publicly_cacheable(
    reader, product, url, django_assert_num_queries
):
    url = url.format(product=product)
    response = reader.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=60"
    assert "Authorization" in response["Vary"]
    etag = response["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    # No catalog read, and no user lookup: a customer's token is taken at its word.
    with django_assert_num_queries(0):
        not_modified = reader.get(url, HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert (not_modified["ETag"], not_modified["Cache-Control"]) == (etag, "public, max-age=60")


def test_if_none_match_takes_lists_and_weak_tags(api_client, product):
    url = f"/api/v1/products/{product.pk}/"
    etag = api_client.get(url)["ETag"]
    assert api_client.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert api_client.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    assert api_client.get(url, HTTP_IF_NONE_MATCH="*").status_code == 200
    assert api_client.head(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_the_etag_varies_with_path_query_and_kind_of_caller(api_client, customer_client, product):
    tags = {
        api_client.get("/api/v1/products/")["ETag"],
        api_client.get("/api/v1/products/?page=1")["ETag"],
        api_client.get(f"/api/v1/products/{product.pk}/")["ETag"],
        api_client.get(f"/api/v1/products/{product.slug}/")["ETag"],
        customer_client.get("/api/v1/products/")["ETag"],
    }
    assert len(tags) == 5
    assert api_client.get("/api/v1/products/")["ETag"] in tags  # and is stable


def test_staff_reads_are_not_publicly_cacheable(staff_client, product):
    for url in (f"/api/v1/products/{product.slug}/", "/api/v1/categories/tree/"):
        response = staff_client.get(url)
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        assert not response.has_header("ETag")


def test_max_age_is_a_setting(api_client, product, settings):
    settings.CATALOG_HTTP_MAX_AGE = 5
    assert api_client.get("/api/v1/products/")["Cache-Control"] == "public, max-age=5"


@pytest.mark.parametrize("cache_seconds", [300, 0])
def test_without_a_catalog_version_there_is_no_etag(api_client, product, settings, cache_seconds):
    # The cache (which keeps the version) is unreachable: a refused connection, failing open.
    settings.CATALOG_CACHE_SECONDS = cache_seconds
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True},
        },
        "throttles": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    response = api_client.get(f"/api/v1/products/{product.pk}/")
    assert (response.status_code, response["Cache-Control"]) == (200, "public, max-age=60")
    assert response.json()["id"] == product.pk
    assert not response.has_header("ETag")


def test_etags_work_with_the_response_cache_off(api_client, product, settings):
    settings.CATALOG_CACHE_SECONDS = 0
    url = f"/api/v1/products/{product.pk}/"
    etag = api_client.get(url)["ETag"]
    assert api_client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_errors_are_not_tagged(api_client, customer_client):
    missing = api_client.get("/api/v1/products/no-such-thing/")
    assert missing.status_code == 404
    assert not missing.has_header("ETag")
    assert "public" not in missing.get("Cache-Control", "")
    bad = customer_client.get("/api/v1/products/?min_price=x")
    assert (bad.status_code, bad["Cache-Control"]) == (400, "no-store")


@pytest.mark.parametrize(
    "write",
    [
        lambda product: product_update(product=product, changes={"price_cents": 1}),
        lambda product: stock_adjust(product_id=product.pk, delta=1, reason="receipt", actor=None),
        lambda product: category_update(category=product.category, description="new"),
        lambda product: category_create(name="Garden"),
    ],
    ids=["product", "stock", "category", "new-category"],
)
@pytest.mark.parametrize(
    "url",
    ["/api/v1/products/{product.slug}/", "/api/v1/products/", "/api/v1/categories/tree/"],
)
def test_any_catalog_write_changes_the_etag(
    api_client, product, write, url, django_capture_on_commit_callbacks
):
    url = url.format(product=product)
    etag = api_client.get(url)["ETag"]
    assert api_client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        write(Product.objects.get(pk=product.pk))
    fresh = api_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200
    assert fresh["ETag"] != etag
    assert api_client.get(url, HTTP_IF_NONE_MATCH=fresh["ETag"]).status_code == 304


def test_an_api_write_changes_the_etag(
    api_client, staff_client, product, django_capture_on_commit_callbacks
):
    url = f"/api/v1/products/{product.slug}/"
    etag = api_client.get(url)["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"/api/v1/products/{product.pk}/stock/adjust/",
            {"delta": 2, "reason": "receipt"},
            format="json",
        )
    assert response.status_code == 201
    fresh = api_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert (fresh.status_code, fresh.json()["available"]) == (200, 12)
