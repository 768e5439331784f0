"""The Swagger UI (/api/docs/) reads well: tags in the order a client meets them, each tag's
operations in the order a client uses them (common/openapi_flow.py), request bodies with realistic
examples instead of "string", and a favicon that loads."""

import re
from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from common.openapi_flow import OPERATION_FLOW

FLOW = [
    "auth",
    "users",
    "categories",
    "products",
    "inventory",
    "stock-movements",
    "cart",
    "orders",
    "payment-methods",
    "payments",
    "reports",
]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return result


def request_examples(schema: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
    examples: dict[str, Any] = body.get("examples", {})
    return {name: example["value"] for name, example in examples.items()}


def test_tags_come_in_flow_order_with_descriptions(schema):
    tags = schema["tags"]
    assert [tag["name"] for tag in tags] == FLOW
    assert all(tag["description"] for tag in tags)
    used = {
        tag
        for item in schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for tag in operation.get("tags", [])
    }
    assert used <= set(FLOW), f"tags missing from SPECTACULAR_SETTINGS['TAGS']: {used - set(FLOW)}"


ORDER = "/api/v1/orders/{id}/"
METHOD = "/api/v1/payment-methods/{id}/"
OPERATIONS_FLOW = {
    "orders": [
        ("get", "/api/v1/orders/"),
        ("post", "/api/v1/orders/"),
        ("get", ORDER),
        ("post", f"{ORDER}pay/"),
        ("post", f"{ORDER}cancel/"),
        ("post", f"{ORDER}ship/"),
        ("post", f"{ORDER}deliver/"),
        ("post", f"{ORDER}refund/"),
    ],
    "cart": [
        ("get", "/api/v1/cart/"),
        ("post", "/api/v1/cart/items/"),
        ("patch", "/api/v1/cart/items/{item_id}/"),
        ("delete", "/api/v1/cart/items/{item_id}/"),
        ("delete", "/api/v1/cart/"),
    ],
    "payment-methods": [
        ("get", "/api/v1/payment-methods/"),
        ("post", "/api/v1/payment-methods/setup-intent/"),
        ("post", "/api/v1/payment-methods/"),
        ("post", f"{METHOD}set-default/"),
        ("delete", METHOD),
    ],
}


def listed(schema: dict[str, Any], tag: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The tag's operations as the schema lists them (what ReDoc shows): path by path."""
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and tag in operation.get("tags", [])
    ]


def swagger_ui_order(schema: dict[str, Any], tag: str) -> list[tuple[str, str]]:
    """The tag's operations as Swagger UI shows them: by `x-flow-order` (its operationsSorter)."""
    operations = sorted(listed(schema, tag), key=lambda entry: entry[2]["x-flow-order"])
    return [(method, path) for method, path, _ in operations]


@pytest.mark.django_db
@pytest.mark.parametrize("tag", list(OPERATIONS_FLOW))
def test_each_tags_operations_come_in_flow_order(tag):
    served = Client().get("/api/schema/?format=json")
    assert served.status_code == 200
    assert swagger_ui_order(served.json(), tag) == OPERATIONS_FLOW[tag]


def test_the_schema_lists_the_order_flow_path_by_path_too(schema):
    # ReDoc and other readers follow the schema's own order (no sorter of their own).
    assert [(method, path) for method, path, _ in listed(schema, "orders")] == OPERATIONS_FLOW[
        "orders"
    ]


def test_every_operation_has_its_place_in_the_flow(schema):
    ids = [
        operation["operationId"]
        for item in schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
    ]
    assert len(set(OPERATION_FLOW)) == len(OPERATION_FLOW), "an operation listed twice"
    assert set(ids) == set(OPERATION_FLOW), (
        f"not in OPERATION_FLOW: {set(ids) - set(OPERATION_FLOW)}; "
        f"no longer in the API: {set(OPERATION_FLOW) - set(ids)}"
    )
    places = [operation["x-flow-order"] for _, _, operation in listed(schema, "orders")]
    assert places == sorted(places)


def test_the_docs_page_sorts_operations_by_their_place_in_the_flow():
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    sorter = re.search(r'"operationsSorter":\s*\(a, b\) =>([^}]+)', script.content.decode())
    assert sorter, "Swagger UI sorts operations its own way"
    assert sorter.group(1).count('"x-flow-order"') == 2


def test_checkout_shows_a_shipping_address(schema):
    (body,) = request_examples(schema, "/api/v1/orders/").values()
    address = body["shipping_address"]
    assert {"name", "line1", "city", "postal_code", "country"} <= set(address)
    assert re.fullmatch(r"[A-Z]{2}", address["country"])


def test_saving_a_card_shows_the_test_gateways_cards(schema):
    examples = request_examples(schema, "/api/v1/payment-methods/")
    numbers = {body["card"]["number"] for body in examples.values() if "card" in body}
    assert numbers == {
        "4242424242424242",
        "4000000000000002",
        "4000000000009995",
        "4000000000000119",
    }


def test_refund_examples_show_amount_restock_and_reason(schema):
    examples = request_examples(schema, "/api/v1/orders/{id}/refund/")
    assert any(body.get("restock") is True for body in examples.values())
    assert any({"amount_cents", "restock", "reason"} <= set(body) for body in examples.values())


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/api/v1/auth/register/", {"email", "password"}),
        ("/api/v1/auth/token/", {"email", "password"}),
        ("/api/v1/products/", {"sku", "name", "category", "price_cents"}),
    ],
)
def test_register_login_and_product_bodies_have_examples(schema, path, fields):
    (body,) = request_examples(schema, path).values()
    assert fields <= set(body)
    assert "string" not in body.values()


def test_the_favicon_the_docs_page_names_loads():
    client = Client()
    page = client.get("/api/docs/")
    assert page.status_code == 200
    match = re.search(r'<link rel="icon" href="([^"]+)"', page.content.decode())
    assert match, "the docs page names no favicon"
    favicon = client.get(match.group(1))
    assert favicon.status_code == 200
    assert favicon.getvalue()
    # Browsers ask every other page's site for /favicon.ico too.
    assert client.get("/favicon.ico").status_code == 200
