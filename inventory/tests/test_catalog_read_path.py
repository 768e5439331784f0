"""The catalog read path at scale (issue 14): a search reads its indexes (full text first, the
typo fallback only when full text finds too few); the count of a filter is kept in the cache per
catalog version, so only a filter's first page pays it; a cached read is one Redis round trip; and
ids are digits in ASCII only."""

from __future__ import annotations

import re
from dataclasses import replace
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conftest import client_for
from inventory import selectors
from inventory.selectors import ProductCount, ProductFilters
from inventory.services import category_create, product_create

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
UNREACHABLE_CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there: a refused connection
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True},
    },
    "throttles": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}


def names(response):
    assert response.status_code == 200, response.json()
    return [item["name"] for item in response.json()["results"]]


def count_queries(captured):
    return [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.fixture
def trigrams(db):
    """pg_trgm and the name's trigram index, as migration 0002 makes them where the server has
    the extension (the test database is built from the models); rolled back with the test."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no pg_trgm")
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS inventory_product_name_trgm_idx "
            "ON inventory_product USING gin (name gin_trgm_ops)"
        )
    selectors._trigram_available.clear()
    yield
    selectors._trigram_available.clear()


def add_filler(category, number):
    """`number` plain products written straight in SQL (with their stock levels, so the ledger
    audit holds), then fresh planner statistics: a table where a full scan would show."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH made AS (
                INSERT INTO inventory_product (created_at, updated_at, name, sku, slug,
                    description, price_cents, currency, metadata, is_active, category_id,
                    primary_image)
                SELECT now(), now(), 'Filler item ' || n, 'FILL-' || n, 'filler-item-' || n,
                       repeat('Nothing to see here. ', 20), 100 + n, 'USD', '{}', true, %s, ''
                FROM generate_series(1, %s) AS n
                RETURNING id
            )
            INSERT INTO inventory_stocklevel
                (product_id, on_hand, reserved, low_stock_threshold, low_stock_alerted, updated_at)
            SELECT id, 0, 0, 0, false, now() FROM made
            """,
            [category.pk, number],
        )
        # As autovacuum would: the new index entries out of GIN's pending list, fresh statistics.
        cursor.execute("SELECT gin_clean_pending_list('inventory_product_search_idx'::regclass)")
        cursor.execute("ANALYZE inventory_product")


def assert_no_product_scan(plan):
    # `\b`: inventory_productimage is another table.
    assert not re.search(r"Seq Scan on inventory_product\b", plan), plan


# =============================================================================
# Search: its indexes, and the typo fallback only when full text finds too few
# =============================================================================
def explain(sql):
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("with_trigrams", [False, True])
def test_a_full_text_search_reads_its_gin_index_and_no_trigrams(
    request, api_client, category, with_trigrams
):
    if with_trigrams:  # as in production, where the fallback is there to be (wrongly) taken
        request.getfixturevalue("trigrams")
    add_filler(category, 5000)
    for number in range(selectors.FUZZY_BELOW + 1):
        product_create(
            sku=f"TENT-{number}", name=f"Trail Tent {number}", category=category, price_cents=1
        )
    filters = ProductFilters(search="tent")
    plain_page = selectors.product_rows(
        selectors.product_page(staff=False, filters=filters, offset=0, limit=20), staff=False
    )
    with_ordering = selectors.product_rows(
        selectors.product_page(
            staff=False, filters=replace(filters, ordering="-price_cents"), offset=0, limit=20
        ),
        staff=False,
    )
    # What the API runs for `?search=tent` (its count, then its page), and the ORM's statements
    # for the same page and for one with an ordering.
    with CaptureQueriesContext(connection) as captured:
        response = api_client.get(f"{PRODUCTS}?search=tent")
    assert response.json()["count"] == 6
    statements = [q["sql"] for q in captured.captured_queries if "inventory_product" in q["sql"]]
    assert len(statements) == 2
    for plan in (*map(explain, statements), plain_page.explain(), with_ordering.explain()):
        assert "Bitmap Index Scan on inventory_product_search_idx" in plan, plan
        assert_no_product_scan(plan)
        # Full text found enough: no similarity is computed on any row.
        assert "word_similarity" not in plan, plan
        assert "%>" not in plan, plan


def test_the_typo_fallback_reads_the_trigram_index(category, trigrams):
    add_filler(category, 5000)
    product_create(sku="HP-1", name="Studio Headphones", category=category, price_cents=1)
    filters = ProductFilters(search="headphnes")
    assert selectors.product_count(staff=False, filters=filters) == ProductCount(1, fuzzy=True)
    page = selectors.product_rows(
        selectors.product_page(staff=False, filters=filters, fuzzy=True, offset=0, limit=20),
        staff=False,
    )
    plan = page.explain()
    assert "Bitmap Index Scan on inventory_product_name_trgm_idx" in plan, plan
    assert "Bitmap Index Scan on inventory_product_search_idx" in plan, plan
    assert_no_product_scan(plan)
    assert [row["name"] for row in page] == ["Studio Headphones"]


def test_typos_are_matched_only_when_full_text_finds_too_few(
    api_client, category, trigrams, django_capture_on_commit_callbacks
):
    assert selectors.FUZZY_BELOW == 5
    for number in range(1, 5):
        product_create(
            sku=f"LAMP-{number}", name=f"Desk Lamp {number}", category=category, price_cents=1
        )
    # "lampshade" is not the word "lamp" to full text, but close to it by trigrams.
    product_create(sku="SHADE-1", name="Lampshade", category=category, price_cents=1)
    lamps = [f"Desk Lamp {number}" for number in range(1, 5)]
    # Four full-text matches: too few, the similar name comes after them.
    assert names(api_client.get(f"{PRODUCTS}?search=lamp")) == [*lamps, "Lampshade"]
    with django_capture_on_commit_callbacks(execute=True):
        product_create(sku="LAMP-5", name="Desk Lamp 5", category=category, price_cents=1)
    # Five: full text alone.
    assert names(api_client.get(f"{PRODUCTS}?search=lamp")) == [*lamps, "Desk Lamp 5"]


def test_the_typo_fallback_is_bounded_and_pages_agree(api_client, category, trigrams, monkeypatch):
    monkeypatch.setattr(selectors, "FUZZY_LIMIT", 4)
    product_create(sku="HP-0", name="Headphones", category=category, price_cents=1)
    for number in range(1, 7):
        product_create(
            sku=f"HP-{number}", name=f"Headphones model {number}", category=category, price_cents=1
        )
    first = api_client.get(f"{PRODUCTS}?search=headphnes&page_size=3").json()
    second = api_client.get(f"{PRODUCTS}?search=headphnes&page_size=3&page=2").json()
    assert first["count"] == second["count"] == 4  # the 4 most similar names, no more
    listed = [item["name"] for item in first["results"] + second["results"]]
    assert len(listed) == len(set(listed)) == 4
    assert listed[0] == "Headphones"  # the most similar first


def test_full_text_ranking_is_kept_name_matches_first(api_client, category):
    # Six matches (enough for full text alone): names (weight A) rank above descriptions (B),
    # equal ranks by id.
    for number in range(3):
        product_create(
            sku=f"D-{number}",
            name=f"Shelter {number}",
            description="A tent.",
            category=category,
            price_cents=1,
        )
    for number in range(3):
        product_create(sku=f"N-{number}", name=f"Tent {number}", category=category, price_cents=1)
    assert names(api_client.get(f"{PRODUCTS}?search=tent")) == [
        "Tent 0",
        "Tent 1",
        "Tent 2",
        "Shelter 0",
        "Shelter 1",
        "Shelter 2",
    ]
    assert names(api_client.get(f"{PRODUCTS}?search=tent&page_size=2&page=2")) == [
        "Tent 2",
        "Shelter 0",
    ]


# =============================================================================
# The storefront's hot reads (a page of the catalog or a category, a product) in SQL written
# once: the same rows as the ORM's statement for the same filter
# =============================================================================
@pytest.fixture
def shop(category):
    from inventory.images import primary_image_refresh
    from inventory.models import Product, ProductImage
    from inventory.services import StockLine, stock_reserve

    child = category_create(name="Earbuds", parent=category)
    other = category_create(name="Kitchen")
    products = [
        product_create(
            sku=f"SHOP-{number}",
            name=f"Shop item {number}",
            description=f"Item number {number}.",
            category=(category, child, other)[number % 3],
            price_cents=100 * number,
            metadata={"n": number, "nested": {"list": [1, "two", None]}},
            is_active=number % 4 != 0,
            on_hand=number,
            low_stock_threshold=number % 2,
        )
        for number in range(1, 10)
    ]
    stock_reserve(lines=[StockLine(products[1].pk, 1)], actor=None, reference="order:1")
    Product.objects.filter(pk=products[2].pk).update(metadata={"big": 10**30})
    for position in (1, 0):
        ProductImage.objects.create(
            product=products[1],
            file=f"products/{products[1].pk}/{position}.jpg",
            thumbnail=f"products/{products[1].pk}/{position}-320.webp" if position else "",
            alt=f"view {position}",
            position=position,
            width=1600,
            height=1200,
        )
    primary_image_refresh(product_id=products[1].pk)
    return {"parent": category, "child": child, "other": other, "products": products}


def orm_page(*, staff, filters, offset, limit):
    page = selectors.product_page(staff=staff, filters=filters, offset=offset, limit=limit)
    return list(selectors.product_rows(page, staff=staff))


def orm_detail(*, staff, product):
    from django.db.models import Q
    from django.db.models.functions import Lower
    from django.db.models.lookups import Exact

    lookup = (
        Q(pk=int(product))
        if isinstance(product, int) or product.isdigit()
        else Q(Exact(Lower("slug"), product.lower()))
    )
    products = selectors.product_list(staff=staff, filters=ProductFilters()).filter(lookup)
    return selectors.product_rows(products, staff=staff, images=True).first()


@pytest.mark.parametrize("staff", [False, True])
@pytest.mark.parametrize("search", ["", "item", "number", '"shop item" -kitchen', "nothing"])
def test_catalog_category_and_search_pages_are_the_orm_rows(shop, staff, search):
    parent, child = shop["parent"], shop["child"]
    for category in ("", str(parent.pk), parent.slug, str(child.pk), child.slug, "no-such", "9"):
        filters = ProductFilters(category=category, search=search)
        for offset, limit in ((0, 2), (2, 3), (0, 100), (50, 20)):
            rows = selectors.product_page_rows(
                staff=staff, filters=filters, offset=offset, limit=limit
            )
            assert rows == orm_page(staff=staff, filters=filters, offset=offset, limit=limit)
    everything = selectors.product_page_rows(
        staff=staff, filters=ProductFilters(), offset=0, limit=100
    )
    assert len(everything) == (9 if staff else 7)  # staff also see the two inactive ones
    assert ("low_stock_threshold" in everything[0]) is staff


@pytest.mark.parametrize("staff", [False, True])
def test_the_product_is_the_orm_row(shop, staff):
    for product in shop["products"]:
        for key in (product.pk, str(product.pk), product.slug, product.slug.upper()):
            assert selectors.product_detail_row(staff=staff, product=key) == orm_detail(
                staff=staff, product=key
            )
    with_images = selectors.product_detail_row(staff=staff, product=shop["products"][1].pk)
    assert with_images is not None
    assert [image["alt"] for image in with_images["image_list"]] == ["view 0", "view 1"]
    assert selectors.product_detail_row(staff=staff, product="no-such-product") is None
    assert selectors.product_detail_row(staff=staff, product=10**20) is None


def test_catalog_pages_searches_and_products_are_read_with_the_written_statements(api_client, shop):
    parent, product = shop["parent"], shop["products"][1]
    for url in (
        f"{PRODUCTS}?category={parent.slug}&page=2&page_size=2",
        f"{PRODUCTS}?page_size=3",
        f"{PRODUCTS}?search=item&category={parent.pk}",
        f"{PRODUCTS}{product.pk}/",
        f"{PRODUCTS}{product.slug}/",
    ):
        with CaptureQueriesContext(connection) as captured:
            assert api_client.get(url).status_code == 200
        reads = [q["sql"] for q in captured.captured_queries if "COUNT(" not in q["sql"]]
        assert len(reads) == 1
        assert reads[0].lstrip().startswith("SELECT p.id, p.sku"), reads[0]


# =============================================================================
# The count of a filter: counted once per catalog version
# =============================================================================
@pytest.fixture
def five_products(category):
    return [
        product_create(
            sku=f"P-{number}", name=f"Product {number}", category=category, price_cents=number
        )
        for number in range(1, 6)
    ]


@pytest.mark.parametrize("who", ["anonymous", "customer", "staff"])
@pytest.mark.parametrize("cache_seconds", [0, 300])
def test_the_next_pages_of_a_filter_count_nothing(
    api_client, make_user, settings, five_products, who, cache_seconds
):
    # With the response cache off too: the count is cached on its own.
    settings.CATALOG_CACHE_SECONDS = cache_seconds
    client = api_client if who == "anonymous" else client_for(make_user(who))
    url = f"{PRODUCTS}?ordering=price_cents&page_size=2"
    with CaptureQueriesContext(connection) as first:
        assert names(client.get(url)) == ["Product 1", "Product 2"]
    assert len(count_queries(first)) == 1
    with CaptureQueriesContext(connection) as later:
        assert names(client.get(f"{url}&page=2")) == ["Product 3", "Product 4"]
        # Another page size, another ordering, the parameters in another order: the same filter.
        body = client.get(f"{PRODUCTS}?page=2&page_size=3&ordering=-price_cents").json()
        assert [item["name"] for item in body["results"]] == ["Product 2", "Product 1"]
    assert count_queries(later) == []
    assert body["count"] == 5


@pytest.mark.parametrize("cache_seconds", [0, 300])
def test_a_catalog_write_makes_the_count_fresh(
    api_client, settings, category, five_products, django_capture_on_commit_callbacks, cache_seconds
):
    settings.CATALOG_CACHE_SECONDS = cache_seconds
    url = f"{PRODUCTS}?page_size=2&page=2"
    assert api_client.get(url).json()["count"] == 5
    with django_capture_on_commit_callbacks(execute=True):
        product_create(sku="NEW-1", name="Newcomer", category=category, price_cents=9)
    assert api_client.get(url).json()["count"] == 6
    assert api_client.get(f"{PRODUCTS}?page_size=2&page=3").json()["count"] == 6


def test_filters_and_kinds_of_caller_do_not_share_counts(
    api_client, staff_client, settings, category, five_products
):
    settings.CATALOG_CACHE_SECONDS = 0
    other = category_create(name="Other")
    product_create(sku="O-1", name="Other one", category=other, price_cents=1)
    product_create(sku="O-2", name="Hidden", category=other, price_cents=1, is_active=False)

    def count(client, query):
        response = client.get(f"{PRODUCTS}?{query}")
        assert response.status_code == 200, response.json()
        return response.json()["count"]

    assert count(api_client, f"category={category.pk}") == 5
    assert count(api_client, f"category={other.pk}") == 1
    assert count(api_client, "") == 6
    assert count(api_client, "max_price=2") == 3
    assert count(api_client, "search=product") == 5
    assert count(staff_client, f"category={other.pk}") == 2  # staff see the inactive one
    assert count(staff_client, f"category={other.pk}&is_active=false") == 1
    assert count(api_client, f"category={other.pk}&is_active=false") == 1  # ignored for others
    assert count(api_client, f"category={other.pk}&page=1") == 1


def test_with_the_cache_unreachable_every_page_counts(api_client, settings, five_products):
    settings.CACHES = UNREACHABLE_CACHES
    for page in (1, 2, 3):
        with CaptureQueriesContext(connection) as captured:
            response = api_client.get(f"{PRODUCTS}?page_size=2&page={page}")
        assert response.status_code == 200
        assert response.json()["count"] == 5
        assert len(count_queries(captured)) == 1


# =============================================================================
# A cached read: one round trip to Redis
# =============================================================================
@pytest.mark.redis
@pytest.mark.parametrize("url", ["detail", PRODUCTS, f"{PRODUCTS}?search=headphones"])
def test_a_cached_read_is_one_redis_round_trip(api_client, product, url):
    from django_redis import get_redis_connection  # type: ignore[import-untyped]

    url = f"{PRODUCTS}{product.pk}/" if url == "detail" else url
    first = api_client.get(url)
    assert first.status_code == 200
    redis = get_redis_connection("default")
    with mock.patch.object(redis, "execute_command", wraps=redis.execute_command) as spy:
        hit = api_client.get(url)
        not_modified = api_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert (hit.status_code, hit.content) == (200, first.content)
    assert not_modified.status_code == 304
    assert [call.args[0] for call in spy.call_args_list] == ["MGET", "MGET"]


# =============================================================================
# Ids are ASCII digits: "¹" passes str.isdigit() but not int()
# =============================================================================
@pytest.mark.parametrize("value", ["%C2%B9", "%C2%B2&page=2", "%D9%A1", "%C2%B9&search=x"])
def test_a_category_in_other_digits_is_a_400(api_client, product, value):
    response = api_client.get(f"{PRODUCTS}?category={value}")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["errors"][0]["attr"] == "category"


def test_ids_in_other_digits_are_not_found(api_client, staff_client, product):
    # The same number in Arabic-Indic digits (int() reads them) is no id of ours either.
    category_id = "".join(chr(0x0660 + int(digit)) for digit in str(product.category_id))
    product_id = "".join(chr(0x0660 + int(digit)) for digit in str(product.pk))
    assert api_client.get(f"/api/v1/categories/{product.category_id}/").status_code == 200
    for client in (api_client, staff_client):
        for url in (
            f"/api/v1/categories/{category_id}/",
            "/api/v1/categories/%C2%B9/",
            f"{PRODUCTS}{product_id}/",
            f"{PRODUCTS}%C2%B9/stock/",
        ):
            assert client.get(url).status_code == 404, url
    assert selectors.category_exists(value="\u00b9") is False
