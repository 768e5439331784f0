"""Input that used to crash the server gets the 4xx API.md promises (Conventions: "A 500 is always
a bug"): malformed, non-UTF-8 or too deeply nested JSON, NUL characters, bodies over the limit,
integers beyond what a column or a 64-bit total holds, and product metadata the catalog could
store but not render.
"""

from __future__ import annotations

import json
import time
import uuid

import orjson
import pytest
from django.test import Client
from rest_framework.test import APIClient

from common.exceptions import BIGINT_MAX, INTEGER_MAX
from common.parsers import JSON_MAX_DEPTH, _nesting_exceeds, json_problem
from common.renderers import json_bytes
from inventory.api.serializers import ProductInputSerializer
from inventory.catalog_csv import COLUMNS, METADATA_MAX_DEPTH, RowError, import_catalog
from inventory.models import Product, StockLevel, StockMovement
from inventory.services import category_create, product_create
from orders.models import CartItem, Order
from orders.services import cart_item_add
from orders.tests.conftest import ADDRESS

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]

ECHO = "/api/v1/_test/validate/"  # AllowAny; `{"quantity": int >= 1}` (tests/urls.py)
PRODUCTS = "/api/v1/products/"


def error_of(response, status: int) -> dict[str, object]:
    """The one error shape; returns the first error."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"type", "errors"}
    assert all(set(error) == {"code", "detail", "attr"} for error in body["errors"])
    first: dict[str, object] = body["errors"][0]
    return first


def post_raw(client: APIClient, url: str, body: bytes | str):
    return client.post(url, data=body, content_type="application/json")


def nested(levels: int, leaf: object = 1) -> object:
    """`levels` objects, one inside the other, around `leaf`."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def category():
    return category_create(name="Audio")


@pytest.fixture
def product(category):
    return product_create(sku="HP-1", name="Headphones", category=category, price_cents=4999)


# =============================================================================
# JSON bodies (common/parsers.py)
# =============================================================================
def test_a_100000_level_body_is_a_fast_400_parse_error(api_client):
    started = time.perf_counter()
    response = post_raw(api_client, ECHO, "[" * 100_000 + "]" * 100_000)
    assert time.perf_counter() - started < 1
    error = error_of(response, 400)
    assert error["code"] == "parse_error"
    assert f"deeper than {JSON_MAX_DEPTH} levels" in str(error["detail"])


def test_unclosed_nesting_is_a_400_too(api_client):
    assert error_of(post_raw(api_client, ECHO, "{" * 1_000_000), 400)["code"] == "parse_error"


def test_64_levels_are_parsed_and_65_are_refused(api_client):
    # The body itself is level 1.
    inside = json.dumps(nested(JSON_MAX_DEPTH - 1))
    ok = post_raw(api_client, ECHO, f'{{"quantity": 2, "x": {inside}}}')
    assert ok.status_code == 200, ok.content
    assert ok.json() == {"quantity": 2}
    too_deep = json.dumps(nested(JSON_MAX_DEPTH))
    refused = post_raw(api_client, ECHO, f'{{"quantity": 2, "x": {too_deep}}}')
    assert error_of(refused, 400)["code"] == "parse_error"


@pytest.mark.parametrize(
    ("body", "deeper_than_2"),
    [
        ("[[1]]", False),
        ("[[[1]]]", True),
        ('["[[[[", "]]]]"]', False),  # brackets inside strings are text
        ('["\\"[[[[", {"k]]": "\\\\"}]', False),  # escaped quotes and backslashes
        ('{"a": {"b": {"c": 1}}}', True),
        ('"[[[[[[[\\"', False),  # an unterminated string: still linear, parsing says why
    ],
)
def test_nesting_is_measured_outside_strings(body, deeper_than_2):
    assert _nesting_exceeds(body.encode(), 2) is deeper_than_2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"quantity": "\xff"}', id="invalid-utf8"),
        pytest.param('{"quantity": "é"}'.encode("latin-1"), id="latin-1"),
        pytest.param('{"quantity": 1}'.encode("utf-16"), id="utf-16"),
    ],
)
def test_a_body_that_is_not_utf8_is_a_400_parse_error(api_client, body):
    error = error_of(post_raw(api_client, ECHO, body), 400)
    assert error["code"] == "parse_error"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"quantity": 1, "x": "a\\u0000b"}', id="nul-in-a-value"),
        pytest.param('{"quantity": 1, "a\\u0000": 1}', id="nul-in-a-key"),
        pytest.param(
            '{"quantity": 1, "x": [["\\\\\\u0000"]]}', id="nul-after-an-escaped-backslash"
        ),
        pytest.param('{"quantity": 1, "x": "\\ud800"}', id="lone-surrogate"),
        pytest.param('{"quantity": 1e400}', id="number-out-of-range"),
        pytest.param('{"quantity": NaN}', id="nan"),
        pytest.param('{"quantity": 1', id="truncated"),
    ],
)
def test_unstorable_or_invalid_json_is_a_400_parse_error(api_client, body):
    assert error_of(post_raw(api_client, ECHO, body), 400)["code"] == "parse_error"


def test_an_escaped_backslash_before_u0000_is_not_a_nul(api_client):
    response = post_raw(
        api_client, ECHO, '{"quantity": 3, "x": "\\\\u0000", "y": "\\ud83d\\ude00"}'
    )
    assert response.status_code == 200, response.content


def test_json_problem_walks_without_recursion():
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]
    assert json_problem(deep, max_depth=32) == "is nested deeper than 32 levels"
    assert json_problem(nested(32), max_depth=32) is None
    assert json_problem({"k": ["x\x00"]}, max_depth=32) == "contains a NUL character (\\u0000)"


def test_a_wrong_content_type_is_a_415(api_client):
    response = api_client.post(ECHO, data="quantity=1", content_type="text/plain")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


# =============================================================================
# Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE → 413
# =============================================================================
def big_json(settings) -> str:
    return json.dumps({"quantity": 1, "x": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})


def test_a_json_body_over_the_limit_is_a_413(api_client, settings):
    error = error_of(post_raw(api_client, ECHO, big_json(settings)), 413)
    assert error["code"] == "request_too_large"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in str(error["detail"])


def test_a_body_over_the_limit_read_raw_by_a_drf_view_is_a_413(api_client, settings):
    # The webhook view reads `request.body` itself (the signed bytes), not `request.data`.
    response = post_raw(api_client, "/api/v1/payments/webhooks/test/", big_json(settings))
    assert error_of(response, 413)["code"] == "request_too_large"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_a_form_over_the_limit_outside_drf_is_a_413(settings, encoding):
    client = Client()
    payload = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    if encoding == "urlencoded":
        response = client.post(
            "/admin/login/", f"a={payload}", content_type="application/x-www-form-urlencoded"
        )
    else:
        response = client.post("/admin/login/", {"a": payload})
    assert error_of(response, 413)["code"] == "request_too_large"


# =============================================================================
# NUL characters in query parameters (filters, search)
# =============================================================================
@pytest.mark.parametrize(
    ("url", "who"),
    [
        (PRODUCTS + "?search=a%00", "anonymous"),
        (PRODUCTS + "?category=a%00", "anonymous"),
        (PRODUCTS + "?sku=a%00", "anonymous"),
        (PRODUCTS + "?attr=color:%00", "anonymous"),
        (PRODUCTS + "?ordering=%00", "anonymous"),
        ("/api/v1/categories/?parent=%00", "anonymous"),
        ("/api/v1/stock-movements/?reason=%00", "staff"),
        ("/api/v1/stock-movements/?created_after=%00", "staff"),
        ("/api/v1/orders/?status=%00", "customer"),
        ("/api/v1/orders/?created_after=%00", "customer"),
        ("/api/v1/payments/?status=%00", "customer"),
        ("/api/v1/users/?search=%00", "admin"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400(
    url, who, api_client, staff_client, customer_client, admin_client_api
):
    client = {
        "anonymous": api_client,
        "staff": staff_client,
        "customer": customer_client,
        "admin": admin_client_api,
    }[who]
    error_of(client.get(url), 400)


# =============================================================================
# Product metadata: API.md's limits at the door, and reads that survive what is already stored
# =============================================================================
def product_body(category, **fields):
    return {"sku": "NEW-1", "name": "New", "category": category.pk, "price_cents": 100, **fields}


def test_metadata_nested_32_levels_is_accepted_and_33_is_a_400_naming_it(staff_client, category):
    assert METADATA_MAX_DEPTH == 32  # API.md, Catalog
    ok = staff_client.post(PRODUCTS, product_body(category, metadata=nested(32)), format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["metadata"] == nested(32)
    refused = staff_client.post(
        PRODUCTS, product_body(category, sku="NEW-2", metadata=nested(33)), format="json"
    )
    error = error_of(refused, 400)
    assert error["attr"] == "metadata"
    assert "nested deeper than 32 levels" in str(error["detail"])


def test_metadata_with_a_nul_is_refused_by_the_serializer_too(category):
    # Over HTTP the parser refuses it first; the serializer also guards any other input path.
    for metadata in ({"k": "a\x00"}, {"k\x00": 1}):
        serializer = ProductInputSerializer(data=product_body(category, metadata=metadata))
        assert not serializer.is_valid()
        assert "NUL" in str(serializer.errors["metadata"])


def test_metadata_too_large_is_still_a_400(staff_client, category):
    body = product_body(category, metadata={"x": "y" * 17_000})
    assert error_of(staff_client.post(PRODUCTS, body, format="json"), 400)["attr"] == "metadata"


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(nested(300), id="300-levels"),  # orjson stops at 255
        pytest.param({"big": 10**30, "small": -(10**25)}, id="integers-beyond-64-bits"),
    ],
)
def test_catalog_reads_survive_metadata_stored_before_validation(
    metadata, product, api_client, staff_client
):
    """An independent review stored 300-level metadata: every catalog read was then a 500."""
    other = product_create(
        sku="OK-1", name="Fine", category=product.category, price_cents=1, metadata={"k": "v"}
    )
    Product.objects.filter(pk=product.pk).update(metadata=metadata)  # no validation on this path

    for client in (api_client, staff_client):  # cached anonymous reads and uncached staff reads
        listing = client.get(PRODUCTS)
        assert listing.status_code == 200, listing.content
        by_id = {row["id"]: row["metadata"] for row in listing.json()["results"]}
        assert by_id == {product.pk: metadata, other.pk: {"k": "v"}}
        detail = client.get(f"{PRODUCTS}{product.pk}/")
        assert detail.status_code == 200, detail.content
        assert detail.json()["metadata"] == metadata


def test_json_bytes_matches_orjson_and_goes_on_where_it_stops():
    plain = {"a": [1, "é", None, True, 1.5], "b": {}}
    assert json_bytes(plain) == orjson.dumps(plain)
    deep: object = [10**20]
    for _ in range(5_000):
        deep = [deep]
    assert json_bytes(deep) == b"[" * 5_001 + b"100000000000000000000" + b"]" * 5_001
    with pytest.raises(TypeError):
        json_bytes({"a": [object()], "deep": nested(300)})


CSV_HEADER = ",".join(COLUMNS)


def csv_row(sku: str, metadata: object) -> str:
    cell = json.dumps(metadata).replace('"', '""')
    return f'{sku},Name,Home,1.00,USD,1,0,true,,"{cell}"'


def test_csv_import_reports_metadata_too_deep_or_with_a_nul_as_bad_rows(tmp_path):
    path = tmp_path / "products.csv"
    lines = [
        CSV_HEADER,
        csv_row("OK-1", nested(32)),
        csv_row("DEEP-1", nested(33)),
        csv_row("NUL-1", {"k": "a\x00"}),
        csv_row("NUL-2", {"k\x00": 1}),
    ]
    path.write_text("\n".join(lines) + "\n")
    errors: list[RowError] = []
    result = import_catalog(path, on_error=errors.append)
    assert not result.ok
    assert [str(error) for error in errors] == [
        "line 3, column metadata: Metadata is nested deeper than 32 levels.",
        "line 4, column metadata: Metadata contains a NUL character (\\u0000).",
        "line 5, column metadata: Metadata contains a NUL character (\\u0000).",
    ]
    assert not Product.objects.exists()


# =============================================================================
# Integers beyond what a column or a 64-bit total holds → 400 naming the field
# =============================================================================
@pytest.mark.parametrize(
    ("url", "attr"),
    [
        (f"{PRODUCTS}?min_price={2**63}", "min_price"),
        (f"{PRODUCTS}?max_price={10**30}", "max_price"),
        (f"/api/v1/categories/?parent={2**63}", "parent"),
        (f"/api/v1/stock-movements/?product={2**63}", "product"),
        (f"{PRODUCTS}?category=%C2%B2", "category"),  # "²": isdigit() but not int()
    ],
)
def test_query_integers_out_of_range_are_a_400_naming_the_field(url, attr, staff_client):
    assert error_of(staff_client.get(url), 400)["attr"] == attr


def test_query_integers_at_the_limit_are_fine(api_client):
    assert api_client.get(f"{PRODUCTS}?min_price=0&max_price={BIGINT_MAX}").status_code == 200


@pytest.mark.parametrize(
    "url", [f"{PRODUCTS}{2**70}/", f"/api/v1/categories/{2**70}/", f"{PRODUCTS}?page={2**70}"]
)
def test_ids_and_pages_out_of_range_are_a_404(api_client, url):
    assert error_of(api_client.get(url), 404)["code"] == "not_found"


def test_a_huge_page_size_is_capped(api_client, product):
    assert api_client.get(f"{PRODUCTS}?page_size={2**70}").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_cents", 2**63),
        ("low_stock_threshold", INTEGER_MAX + 1),
    ],
)
def test_product_integers_out_of_range_are_a_400_naming_the_field(
    field, value, staff_client, product
):
    response = staff_client.patch(f"{PRODUCTS}{product.pk}/", {field: value}, format="json")
    assert error_of(response, 400)["attr"] == field


def stock(product) -> tuple[int, int]:
    level = StockLevel.objects.get(product=product)
    return level.on_hand, level.reserved


def test_a_stock_adjustment_out_of_range_is_a_400(staff_client, product):
    url = f"{PRODUCTS}{product.pk}/stock/adjust/"
    too_big = {"delta": INTEGER_MAX + 1, "reason": "receipt"}
    assert error_of(staff_client.post(url, too_big, format="json"), 400)["attr"] == "delta"


def test_a_stock_adjustment_whose_result_overflows_is_a_409_and_changes_nothing(
    staff_client, product
):
    url = f"{PRODUCTS}{product.pk}/stock/adjust/"
    assert staff_client.post(url, {"delta": 10, "reason": "receipt"}, format="json").status_code
    movements = StockMovement.objects.count()
    response = staff_client.post(url, {"delta": INTEGER_MAX, "reason": "receipt"}, format="json")
    # Refused by the service before the database's "integer out of range", naming the field.
    error = error_of(response, 409)
    assert (error["code"], error["attr"]) == ("stock_limit_exceeded", "delta")
    assert stock(product) == (10, 0)
    assert StockMovement.objects.count() == movements


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"product": 2**63, "quantity": 1}, "product"),
        ({"product": 1, "quantity": 2**63}, "quantity"),
    ],
)
def test_cart_integers_out_of_range_are_a_400_naming_the_field(body, attr, customer_client):
    response = customer_client.post("/api/v1/cart/items/", body, format="json")
    assert error_of(response, 400)["attr"] == attr


def test_a_refund_amount_out_of_range_is_a_400_naming_the_field(staff_client):
    response = staff_client.post(
        f"/api/v1/orders/{uuid.uuid4()}/refund/",
        {"amount_cents": 2**63, "restock": False},
        format="json",
    )
    assert error_of(response, 400)["attr"] == "amount_cents"


def test_a_checkout_whose_total_overflows_64_bits_is_a_400_and_writes_nothing(
    customer, customer_client, category
):
    # 2**53 (the highest price) x 1024 units = 2**63: one more than a 64-bit total holds.
    expensive = product_create(
        sku="GOLD-1", name="Gold", category=category, price_cents=2**53, on_hand=1024
    )
    cart_item_add(user=customer, product_id=expensive.pk, quantity=1024)
    response = customer_client.post("/api/v1/orders/", {"shipping_address": ADDRESS}, format="json")
    assert error_of(response, 400) == {
        "code": "order_total_too_large",
        "detail": "The order's total is larger than a payment can be.",
        "attr": "items",
    }
    assert not Order.objects.exists()
    assert stock(expensive) == (1024, 0)
    assert CartItem.objects.filter(cart__user=customer).get().quantity == 1024


def test_a_malformed_ledger_cursor_is_a_400(staff_client):
    # "p=garbage": a position the queryset cannot compare with a date (Django ValidationError).
    response = staff_client.get("/api/v1/stock-movements/?cursor=cD1nYXJiYWdl")
    error_of(response, 400)
