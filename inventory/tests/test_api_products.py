"""The products API: create, read (list, filters, search, ordering, detail by id or slug),
update, delete, and stock adjustment, for staff, customers and anonymous callers. Long on
purpose: the whole product contract of docs/API.md, endpoint by endpoint."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db.models import ProtectedError as DjangoProtectedError

from conftest import client_for
from inventory import selectors
from inventory.models import Product, StockLevel, StockMovement
from inventory.services import (
    StockLine,
    category_create,
    product_create,
    stock_reserve,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    electronics = category_create(name="Electronics")
    audio = category_create(name="Audio", parent=electronics)
    headphones = category_create(name="Headphones", parent=audio)
    clothing = category_create(name="Clothing")
    products = {
        "hp": product_create(
            sku="HP-100",
            name="Studio Headphones",
            description="Closed-back headphones for mixing.",
            category=headphones,
            price_cents=12900,
            metadata={"color": "black", "wired": True},
            on_hand=5,
        ),
        "spk": product_create(
            sku="SPK-200",
            name="Bookshelf Speaker",
            description="Compact speaker with deep bass.",
            category=audio,
            price_cents=8900,
            metadata={"color": "white"},
            on_hand=2,
        ),
        "tee": product_create(
            sku="TEE-300",
            name="Cotton T-Shirt",
            description="Soft organic cotton.",
            category=clothing,
            price_cents=1900,
            metadata={"color": "black", "size": "M"},
            on_hand=0,
        ),
        "old": product_create(
            sku="OLD-400",
            name="Retired Headphones",
            category=headphones,
            price_cents=5000,
            is_active=False,
            on_hand=1,
        ),
    }
    return {
        "electronics": electronics,
        "audio": audio,
        "headphones": headphones,
        "clothing": clothing,
        **products,
    }


def skus(response):
    assert response.status_code == 200, response.json()
    return [item["sku"] for item in response.json()["results"]]


def test_product_list_shape_for_anonymous(api_client, catalog):
    stock_reserve(lines=[StockLine(catalog["hp"].pk, 2)], actor=None, reference="order:1")
    response = api_client.get("/api/v1/products/?sku=hp-100")
    body = response.json()
    assert body["count"] == 1
    item = body["results"][0]
    product = catalog["hp"]
    product.refresh_from_db()
    assert item == {
        "id": product.pk,
        "sku": "HP-100",
        "name": "Studio Headphones",
        "slug": "studio-headphones-hp-100",
        "description": "Closed-back headphones for mixing.",
        "category": catalog["headphones"].pk,
        "category_path": "Electronics/Audio/Headphones",
        "price_cents": 12900,
        "currency": "USD",
        "metadata": {"color": "black", "wired": True},
        "image": None,  # no image yet: the primary's thumbnail URL once there is one
        "is_active": True,
        "available": 3,
        "created_at": product.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": product.updated_at.isoformat().replace("+00:00", "Z"),
    }


def test_inactive_products_hidden_from_anonymous_and_customers(
    api_client, customer_client, catalog
):
    assert skus(api_client.get("/api/v1/products/")) == ["HP-100", "SPK-200", "TEE-300"]
    assert skus(customer_client.get("/api/v1/products/")) == ["HP-100", "SPK-200", "TEE-300"]
    assert api_client.get(f"/api/v1/products/{catalog['old'].pk}/").status_code == 404
    assert customer_client.get(f"/api/v1/products/{catalog['old'].pk}/").status_code == 404
    # is_active is a staff filter: ignored for others.
    assert skus(api_client.get("/api/v1/products/?is_active=false")) == [
        "HP-100",
        "SPK-200",
        "TEE-300",
    ]


def test_staff_see_all_and_threshold(staff_client, catalog):
    assert skus(staff_client.get("/api/v1/products/")) == [
        "HP-100",
        "SPK-200",
        "TEE-300",
        "OLD-400",
    ]
    assert skus(staff_client.get("/api/v1/products/?is_active=false")) == ["OLD-400"]
    detail = staff_client.get(f"/api/v1/products/{catalog['old'].pk}/").json()
    assert (detail["is_active"], detail["low_stock_threshold"]) == (False, 0)


def test_anonymous_does_not_see_threshold(api_client, catalog):
    detail = api_client.get(f"/api/v1/products/{catalog['hp'].pk}/").json()
    assert "low_stock_threshold" not in detail
    assert detail["available"] == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category={electronics}", ["HP-100", "SPK-200"]),
        ("category=audio", ["HP-100", "SPK-200"]),
        ("category={headphones}", ["HP-100"]),
        ("min_price=2000&max_price=9000", ["SPK-200"]),
        ("max_price=1900", ["TEE-300"]),
        ("in_stock=true", ["HP-100", "SPK-200"]),
        ("in_stock=false", ["TEE-300"]),
        ("attr=color:black", ["HP-100", "TEE-300"]),
        ("attr=color:black&attr=size:M", ["TEE-300"]),
        ("attr=wired:true", ["HP-100"]),
        ("attr=color:green", []),
        ("sku=SPK-200", ["SPK-200"]),
        ("ordering=price_cents", ["TEE-300", "SPK-200", "HP-100"]),
        ("ordering=-price_cents", ["HP-100", "SPK-200", "TEE-300"]),
        ("ordering=name", ["SPK-200", "TEE-300", "HP-100"]),
        ("ordering=-created_at", ["TEE-300", "SPK-200", "HP-100"]),
    ],
)
def test_product_filters(api_client, catalog, query, expected):
    query = query.format(**{key: value.pk for key, value in catalog.items()})
    assert skus(api_client.get(f"/api/v1/products/?{query}")) == expected


def test_in_stock_counts_reservations(api_client, catalog):
    stock_reserve(lines=[StockLine(catalog["spk"].pk, 2)], actor=None, reference="order:1")
    assert skus(api_client.get("/api/v1/products/?in_stock=true")) == ["HP-100"]


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ("category=999999", "category"),
        ("category=no-such-slug", "category"),
        ("min_price=-1", "min_price"),
        ("min_price=500&max_price=100", "max_price"),
        ("ordering=sku", "ordering"),
        ("attr=nocolon", "attr.0"),
        ("in_stock=maybe", "in_stock"),
    ],
)
def test_bad_filters_are_400(api_client, catalog, query, attr):
    response = api_client.get(f"/api/v1/products/?{query}")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["errors"][0]["attr"] == attr


def test_search_ranks_best_match_first(api_client, catalog):
    product_create(
        sku="CAB-1",
        name="Audio Cable",
        description="Works with headphones.",
        category=catalog["audio"],
        price_cents=900,
    )
    # Name matches (weight A) rank above description-only matches (weight B); stemming finds
    # "headphone" in "Headphones".
    assert skus(api_client.get("/api/v1/products/?search=headphone")) == ["HP-100", "CAB-1"]
    assert skus(api_client.get("/api/v1/products/?search=spk-200")) == ["SPK-200"]
    assert skus(api_client.get('/api/v1/products/?search="deep bass" -cable')) == ["SPK-200"]
    assert skus(api_client.get("/api/v1/products/?search=headphone&ordering=price_cents")) == [
        "CAB-1",
        "HP-100",
    ]
    assert skus(api_client.get("/api/v1/products/?search=zeppelin")) == []


def test_search_typo_uses_trigrams_when_available(api_client, catalog, django_db_blocker):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            pytest.skip("this PostgreSQL has no pg_trgm")
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # rolled back with the test
    selectors._trigram_available.clear()
    try:
        assert skus(api_client.get("/api/v1/products/?search=headphnes")) == ["HP-100"]
    finally:
        selectors._trigram_available.clear()


def test_search_without_trigrams_needs_real_words(api_client, catalog):
    selectors._trigram_available.clear()
    with mock.patch.object(selectors, "trigram_available", return_value=False):
        assert skus(api_client.get("/api/v1/products/?search=headphnes")) == []
        assert skus(api_client.get("/api/v1/products/?search=headphones")) == ["HP-100"]


@pytest.mark.parametrize("page_size", [1, 50])
@pytest.mark.parametrize(
    ("who", "query", "queries"),
    [
        ("anonymous", "", 2),
        ("anonymous", "category=electronics&search=headphones&attr=color:black", 2),
        ("customer", "in_stock=true&ordering=-price_cents", 2),  # no user query
        ("staff", "is_active=true", 3),
    ],
)
def test_product_list_query_count_is_fixed(
    api_client, make_user, catalog, page_size, who, query, queries, django_assert_num_queries
):
    selectors.trigram_available()  # answered once per process, outside the count
    client = api_client if who == "anonymous" else client_for(make_user(who))
    for number in range(8):
        product_create(
            sku=f"EXTRA-{number}",
            name=f"Black Headphones {number}",
            category=catalog["headphones"],
            price_cents=100 + number,
            metadata={"color": "black"},
            on_hand=3,
        )
    with django_assert_num_queries(queries):
        response = client.get(f"/api/v1/products/?page_size={page_size}&{query}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(page_size, response.json()["count"])
    assert response.json()["count"] >= 8


def test_product_detail_query_count(api_client, catalog, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = api_client.get(f"/api/v1/products/{catalog['hp'].pk}/")
    assert response.json()["sku"] == "HP-100"


def test_staff_creates_product(staff_client, catalog):
    response = staff_client.post(
        "/api/v1/products/",
        {
            "sku": "MIC-1",
            "name": "USB Microphone",
            "category": catalog["audio"].pk,
            "price_cents": 4999,
            "metadata": {"color": "silver"},
            "low_stock_threshold": 2,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["sku"], body["category_path"], body["available"], body["low_stock_threshold"]) == (
        "MIC-1",
        "Electronics/Audio",
        0,
        2,
    )
    assert (body["currency"], body["is_active"], body["description"]) == ("USD", True, "")
    level = StockLevel.objects.get(product_id=body["id"])
    assert (level.on_hand, level.reserved, level.low_stock_threshold) == (0, 0, 2)


@pytest.mark.parametrize(
    ("changes", "attr"),
    [
        ({"sku": "hp-100"}, "sku"),
        ({"sku": "has space"}, "sku"),
        ({"price_cents": -1}, "price_cents"),
        ({"currency": "EUR"}, "currency"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"metadata": {"x": "y" * 17000}}, "metadata"),
        ({"category": 999999}, "category"),
        ({"low_stock_threshold": -1}, "low_stock_threshold"),
        ({"name": ""}, "name"),
    ],
)
def test_create_product_bad_input(staff_client, catalog, changes, attr):
    payload = {
        "sku": "NEW-1",
        "name": "New",
        "category": catalog["audio"].pk,
        "price_cents": 100,
        **changes,
    }
    response = staff_client.post("/api/v1/products/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["errors"][0]["attr"] == attr
    assert Product.objects.count() == 4


def test_customer_cannot_write_products(customer_client, catalog):
    response = customer_client.post("/api/v1/products/", {"sku": "X"}, format="json")
    assert response.status_code == 403
    response = customer_client.patch(f"/api/v1/products/{catalog['hp'].pk}/", {"name": "Y"})
    assert response.status_code == 403
    assert Product.objects.get(pk=catalog["hp"].pk).name == "Studio Headphones"


def test_staff_patches_and_puts_product(staff_client, catalog):
    url = f"/api/v1/products/{catalog['hp'].pk}/"
    response = staff_client.patch(
        url, {"price_cents": 9900, "low_stock_threshold": 7}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["price_cents"], response.json()["low_stock_threshold"]) == (9900, 7)
    # Its own SKU is not "taken".
    response = staff_client.put(
        url,
        {
            "sku": "hp-100",
            "name": "Studio Headphones II",
            "category": catalog["audio"].pk,
            "price_cents": 10000,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["sku"], response.json()["category_path"]) == (
        "hp-100",
        "Electronics/Audio",
    )
    response = staff_client.put(url, {"name": "Missing fields"}, format="json")
    assert response.status_code == 400


def test_delete_product(staff_client, catalog):
    assert staff_client.delete(f"/api/v1/products/{catalog['tee'].pk}/").status_code == 204
    assert not Product.objects.filter(pk=catalog["tee"].pk).exists()
    assert staff_client.delete(f"/api/v1/products/{catalog['tee'].pk}/").status_code == 404


def test_delete_product_with_stock_history_is_409_and_keeps_its_ledger(staff_client, catalog):
    response = staff_client.delete(f"/api/v1/products/{catalog['hp'].pk}/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "protected"
    assert catalog["hp"].movements.count() == 1  # the receipt of its 5 units


def test_delete_product_on_an_order_is_409(staff_client, catalog):
    # Stand-in for orders' OrderItem.product (on_delete=PROTECT); inventory never imports orders.
    error = DjangoProtectedError("protected", set())
    with mock.patch.object(Product, "delete", side_effect=error):
        response = staff_client.delete(f"/api/v1/products/{catalog['hp'].pk}/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "protected"
    assert Product.objects.filter(pk=catalog["hp"].pk).exists()


def test_product_stock_endpoint(staff_client, customer_client, catalog):
    stock_reserve(lines=[StockLine(catalog["hp"].pk, 2)], actor=None, reference="order:1")
    response = staff_client.get(f"/api/v1/products/{catalog['hp'].pk}/stock/")
    assert response.json() == {
        "on_hand": 5,
        "reserved": 2,
        "available": 3,
        "low_stock_threshold": 0,
    }
    assert customer_client.get(f"/api/v1/products/{catalog['hp'].pk}/stock/").status_code == 403
    assert staff_client.get("/api/v1/products/999999/stock/").status_code == 404


def test_stock_adjust_endpoint(staff_client, staff, catalog):
    url = f"/api/v1/products/{catalog['hp'].pk}/stock/adjust/"
    response = staff_client.post(
        url, {"delta": 10, "reason": "receipt", "note": "PO-7"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    movement = StockMovement.objects.get(pk=body["id"])
    assert body == {
        "id": movement.pk,
        "product": catalog["hp"].pk,
        "sku": "HP-100",
        "reason": "receipt",
        "delta_on_hand": 10,
        "delta_reserved": 0,
        "on_hand_after": 15,
        "reserved_after": 0,
        "actor": staff.pk,
        "reference": "",
        "note": "PO-7",
        "created_at": movement.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_stock_adjust_past_what_a_level_holds_is_409_and_changes_nothing(staff_client, catalog):
    """Found by the schema fuzz: the database refused it as a nameless 400 before."""
    url = f"/api/v1/products/{catalog['hp'].pk}/stock/adjust/"
    count = StockMovement.objects.count()
    response = staff_client.post(url, {"delta": 2**31 - 1, "reason": "receipt"}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "code": "stock_limit_exceeded",
            "detail": "The stock level cannot hold that many units.",
            "attr": "delta",
        }
    ]
    assert StockMovement.objects.count() == count
    assert staff_client.get(f"/api/v1/products/{catalog['hp'].pk}/stock/").json()["on_hand"] == 5


def test_stock_adjust_below_reserved_is_409(staff_client, catalog):
    stock_reserve(lines=[StockLine(catalog["hp"].pk, 4)], actor=None, reference="order:1")
    count = StockMovement.objects.count()
    response = staff_client.post(
        f"/api/v1/products/{catalog['hp'].pk}/stock/adjust/",
        {"delta": -2, "reason": "damage"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "insufficient_stock",
                "detail": "HP-100: 1 available, 2 requested.",
                "attr": "items",
            }
        ],
    }
    assert StockMovement.objects.count() == count
    level = StockLevel.objects.get(product=catalog["hp"])
    assert (level.on_hand, level.reserved) == (5, 4)


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"delta": 0, "reason": "receipt"}, "delta"),
        ({"delta": 1, "reason": "sale"}, "reason"),
        ({"reason": "receipt"}, "delta"),
    ],
)
def test_stock_adjust_bad_input(staff_client, catalog, payload, attr):
    count = StockMovement.objects.count()
    response = staff_client.post(
        f"/api/v1/products/{catalog['hp'].pk}/stock/adjust/", payload, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert StockMovement.objects.count() == count


def test_stock_adjust_needs_staff(customer_client, api_client, catalog):
    url = f"/api/v1/products/{catalog['hp'].pk}/stock/adjust/"
    assert customer_client.post(url, {"delta": 1, "reason": "receipt"}).status_code == 403
    assert api_client.post(url, {"delta": 1, "reason": "receipt"}).status_code == 401


def test_empty_category_is_an_empty_page(api_client, catalog):
    empty = category_create(name="Empty", parent=catalog["clothing"])
    response = api_client.get(f"/api/v1/products/?category={empty.pk}")
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "category=5",
        "category=audio-gear&page=2",
        "category=audio_gear&page=2&page_size=50",
        "page=3",
        "category=" + "a" * 120,
        "category=" + "a" * 121,  # too long: the serializer says so
        "category=",
        "category=%205",
        "category=%C2%B9",  # a superscript digit
        "category=caf%C3%A9",
        "category=a&category=b",
        "category=a/b",
        "category=5&in_stock=true",
        "category=5&search=x",
        "min_price=-1",
        "ordering=nonsense",
        "page=x",
    ],
)
def test_the_browse_shortcut_agrees_with_the_serializer(rf, query):
    from django.http import QueryDict

    from inventory.api.serializers import ProductListQuerySerializer, browse_query

    params = QueryDict(query)
    shortcut = browse_query(params)
    serializer = ProductListQuerySerializer(data=params)
    valid = serializer.is_valid()
    if shortcut is not None:  # it only answers what the serializer accepts, and the same way
        assert valid
        assert shortcut == dict(serializer.validated_data)
    assert (shortcut is not None) == (query in BROWSE_QUERIES)


BROWSE_QUERIES = {
    "",
    "category=5",
    "category=audio-gear&page=2",
    "category=audio_gear&page=2&page_size=50",
    "page=3",
    "page=x",  # pages are the paginator's business (404), either way
    "category=" + "a" * 120,
}
