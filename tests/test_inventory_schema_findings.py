"""What the schema fuzzing (tests/test_schema_fuzz.py) found in inventory's API, fixed, and kept
as regression tests: inventory takes a value only as its schema documents it.

- A JSON body value of another JSON type than its field documents is a 400 naming the field
  (`0` for a category's `description` or an image's `alt`, `0` or `"true"` for `is_active`, a
  string for a category reference); an image's PATCH sent as a form still reads its strings.
- A product's `currency` is documented as the one value it takes, the store's; its `sku` by the
  SKU rule's pattern, which the value as sent must match.
- A stock adjustment's `delta` of 0, refused, is documented as refused.
- `?parent=` on categories: the documented pattern takes exactly what the API takes, and a
  number past the `bigint` range is the documented `max_value`.
- An `attr` filter item the documented pattern takes is taken as sent (not trimmed first), and
  a key of whitespace filters like any other; a `category` filter is a slug as sent, and the
  integer query values are digits.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from PIL import Image

from common.exceptions import BIGINT_MAX
from inventory.images import product_image_create
from inventory.models import Category, Product, ProductImage
from inventory.services import SKU_PATTERN, category_create, product_create

pytestmark = pytest.mark.django_db


def first_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    error: dict[str, Any] = response.json()["errors"][0]
    return error


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return result


# --- JSON types --------------------------------------------------------------------------------


def test_a_category_description_must_be_a_string(staff_client):
    response = staff_client.post(
        "/api/v1/categories/", {"name": "Audio", "description": 0}, format="json"
    )
    assert first_error(response)["attr"] == "description"
    assert not Category.objects.exists()


def test_a_category_parent_must_be_an_integer(staff_client):
    parent = category_create(name="Audio")
    response = staff_client.post(
        "/api/v1/categories/", {"name": "Headphones", "parent": str(parent.pk)}, format="json"
    )
    assert first_error(response) == {
        "code": "incorrect_type",
        "detail": "Incorrect type. Expected pk value, received str.",
        "attr": "parent",
    }
    response = staff_client.post(
        "/api/v1/categories/", {"name": "Headphones", "parent": parent.pk}, format="json"
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("is_active", [0, "true"])
def test_is_active_must_be_a_boolean(staff_client, is_active):
    category = category_create(name="Audio")
    response = staff_client.post(
        "/api/v1/products/",
        {
            "sku": "HP-1",
            "name": "Headphones",
            "category": category.pk,
            "price_cents": 100,
            "is_active": is_active,
        },
        format="json",
    )
    assert first_error(response) == {
        "code": "invalid",
        "detail": "Must be a valid boolean.",
        "attr": "is_active",
    }
    assert not Product.objects.exists()


@pytest.fixture
def image(settings, tmp_path) -> ProductImage:
    settings.MEDIA_ROOT = tmp_path
    product = product_create(
        sku="HP-1", name="Headphones", category=category_create(name="Audio"), price_cents=100
    )
    picture = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(picture, "JPEG")
    return product_image_create(product=product, upload=io.BytesIO(picture.getvalue()))


def test_an_image_alt_must_be_a_string(staff_client, image):
    response = staff_client.patch(
        f"/api/v1/products/{image.product_id}/images/{image.pk}/", {"alt": 0}, format="json"
    )
    assert first_error(response)["attr"] == "alt"
    image.refresh_from_db()
    assert image.alt == ""


def test_an_image_patch_sent_as_a_form_reads_its_strings(staff_client, image):
    response = staff_client.patch(
        f"/api/v1/products/{image.product_id}/images/{image.pk}/",
        {"alt": "Front view", "position": "0"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["alt"], response.json()["position"]) == ("Front view", 0)


# --- what the schema documents -----------------------------------------------------------------


def test_the_product_currency_is_documented_as_the_store_currency(schema, settings):
    components = schema["components"]["schemas"]
    currency = components["ProductInputRequest"]["properties"]["currency"]
    # drf-spectacular names every enum a component: `allOf: [{$ref: …/CurrencyEnum}]`.
    (reference,) = (part["$ref"] for part in currency.get("allOf", [currency]))
    assert components[reference.rsplit("/", 1)[1]]["enum"] == [settings.STORE_CURRENCY]


def test_only_the_store_currency_as_sent_is_taken(staff_client, settings):
    category = category_create(name="Audio")
    product = {"name": "Headphones", "category": category.pk, "price_cents": 100}
    currency = settings.STORE_CURRENCY
    for sku, other in (("HP-1", f" {currency}"), ("HP-2", "XXX")):
        response = staff_client.post(
            "/api/v1/products/", {**product, "sku": sku, "currency": other}, format="json"
        )
        assert first_error(response)["attr"] == "currency"
    response = staff_client.post(
        "/api/v1/products/", {**product, "sku": "HP-3", "currency": currency}, format="json"
    )
    assert response.status_code == 201, response.content


def test_a_sku_is_documented_by_its_rule_and_taken_as_sent(schema, staff_client):
    body = schema["components"]["schemas"]["ProductInputRequest"]
    assert body["properties"]["sku"]["pattern"] == SKU_PATTERN.pattern
    category = category_create(name="Audio")
    product = {"name": "Headphones", "category": category.pk, "price_cents": 100}
    response = staff_client.post("/api/v1/products/", {**product, "sku": " HP-1"}, format="json")
    assert first_error(response)["attr"] == "sku"
    response = staff_client.post("/api/v1/products/", {**product, "sku": "HP-1"}, format="json")
    assert response.status_code == 201, response.content


def test_a_zero_stock_delta_is_documented_as_refused(schema):
    body = schema["components"]["schemas"]["StockAdjustInputRequest"]
    assert body["properties"]["delta"].get("not") == {"enum": [0]}


def test_a_parent_past_the_bigint_range_is_documented(schema):
    body = schema["components"]["schemas"]["CategoriesListParentErrorComponent"]
    assert "max_value" in body["properties"]["code"]["enum"]


def test_a_parent_past_the_bigint_range_is_refused_as_max_value(api_client):
    response = api_client.get("/api/v1/categories/", {"parent": str(BIGINT_MAX + 1)})
    assert first_error(response)["code"] == "max_value"


@pytest.mark.parametrize(
    ("parent", "taken"),
    [
        ("null", True),
        ("0", True),
        ("007", True),
        (str(BIGINT_MAX), True),
        ("0" * 30 + str(BIGINT_MAX), True),
        (str(BIGINT_MAX + 1), False),
        ("9" * 19, False),
        ("1" * 20, False),
        (" 1", False),
        ("1 ", False),
        ("\u00b9", False),  # a superscript one: str.isdigit(), but not an id
        ("Null", False),
        ("-1", False),
    ],
)
def test_the_parent_pattern_takes_what_the_api_takes(schema, api_client, parent, taken):
    category_create(name="Audio")
    operation = schema["paths"]["/api/v1/categories/"]["get"]
    (documented,) = (p["schema"] for p in operation["parameters"] if p["name"] == "parent")
    # JSON Schema patterns search; Python's `re` reads this one the same way.
    assert bool(re.search(documented["pattern"], parent)) is taken
    response = api_client.get("/api/v1/categories/", {"parent": parent})
    assert response.status_code == (200 if taken else 400), response.content


def test_an_attr_filter_the_pattern_accepts_is_taken(api_client):
    response = api_client.get("/api/v1/products/", {"attr": "\u00a0:x"})
    assert response.status_code == 200, response.content


def test_an_attr_key_of_whitespace_is_matched_as_sent(api_client):
    category = category_create(name="Audio")
    wanted = product_create(
        sku="HP-1", name="A", category=category, price_cents=100, metadata={"\u00a0": "x"}
    )
    product_create(sku="HP-2", name="B", category=category, price_cents=100, metadata={" ": "x"})
    response = api_client.get("/api/v1/products/", {"attr": "\u00a0:x"})
    assert response.status_code == 200, response.content
    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]


@pytest.mark.parametrize(
    ("url", "attr"),
    [
        ("/api/v1/products/?category=%20audio", "category"),  # the slug pattern, untrimmed
        ("/api/v1/products/?min_price=%205", "min_price"),  # an integer in digits
        ("/api/v1/products/?max_price=5.0", "max_price"),
        ("/api/v1/stock-movements/?product=1.0", "product"),
    ],
)
def test_query_values_are_judged_as_sent(staff_client, url, attr):
    category = category_create(name="Audio")
    product_create(sku="HP-1", name="Headphones", category=category, price_cents=5, on_hand=1)
    assert staff_client.get(url.replace("%20", "").replace(".0", "")).status_code == 200
    assert first_error(staff_client.get(url)) == {
        "code": "invalid",
        "detail": first_error(staff_client.get(url))["detail"],
        "attr": attr,
    }
