"""The Swagger UI (/api/docs/) reads well: tags in the order a client meets them, request bodies
with realistic examples instead of "string", and a favicon that loads."""

import re
from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

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
