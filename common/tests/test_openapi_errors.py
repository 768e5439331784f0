"""The schema documents the errors each operation really answers (common/openapi.py), as the
Schemathesis run (tests/test_schema_fuzz.py) found they were not:

- a 400 of an operation with domain codes lists the validation errors of its body too, not
  only `client_error`;
- 401 lists the codes of the JWT authentication (`token_not_valid`, `bad_authorization_header`…);
- a 502 domain error is a `server_error`;
- the catalog's reads document the token as optional;
- a serializer that refuses unknown fields says so, and documents the `not_allowed` error;
- a nested object that is missing or null is an error on the object itself (`attr: "card"`);
- query parameters validated by a serializer document their errors, and an empty value;
- a string that DRF trims must hold one character that is not whitespace.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from common.openapi import NOT_ONLY_WHITESPACE

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return result


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def response(schema: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    operation = schema["paths"][f"/api/v1/{path}"][method]
    body = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return resolve(schema, body)


def variants(schema: dict[str, Any], error_response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The 400 `oneOf`, by the `type` each variant documents."""
    found = {}
    for variant in error_response["oneOf"]:
        variant = resolve(schema, variant)
        (error_type,) = resolve(schema, variant["properties"]["type"])["enum"]
        found[error_type] = variant
    return found


def items(schema: dict[str, Any], variant: dict[str, Any]) -> list[dict[str, Any]]:
    """The error item schemas a variant allows (one, or the `oneOf` of a validation error)."""
    item = resolve(schema, variant["properties"]["errors"]["items"])
    return [resolve(schema, one) for one in item.get("oneOf", [item])]


def codes(schema: dict[str, Any], item: dict[str, Any]) -> set[str]:
    return set(resolve(schema, item["properties"]["code"])["enum"])


def test_a_400_with_domain_codes_documents_validation_errors_too(schema):
    by_type = variants(schema, response(schema, "cart/items/", "post", 400))
    assert set(by_type) == {"validation_error", "client_error"}
    attrs = {
        tuple(item["properties"]["attr"].get("enum", ["*"])): codes(schema, item)
        for item in items(schema, by_type["validation_error"])
    }
    assert "min_value" in attrs[("quantity",)]
    (client_item,) = items(schema, by_type["client_error"])
    assert codes(schema, client_item) == {"product_unavailable", "parse_error", "bad_request"}


def test_401_lists_every_code_the_jwt_authentication_answers(schema):
    (item,) = items(schema, response(schema, "cart/", "get", 401))
    assert item["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode401Enum"}
    assert {
        "not_authenticated",
        "token_not_valid",
        "bad_authorization_header",
        "user_inactive",
        "user_not_found",
    } <= codes(schema, item)


def test_a_502_domain_error_is_a_server_error(schema):
    body = response(schema, "orders/{id}/pay/", "post", 502)
    assert resolve(schema, body["properties"]["type"])["enum"] == ["server_error"]
    (item,) = items(schema, body)
    assert codes(schema, item) == {"gateway_error"}


def test_catalog_reads_document_the_token_as_optional_and_writes_as_required(schema):
    products = schema["paths"]["/api/v1/products/"]
    assert {} in products["get"]["security"]
    assert {} not in products["post"]["security"]
    assert {} not in schema["paths"]["/api/v1/cart/"]["get"]["security"]


def test_strict_input_documents_that_unknown_fields_are_refused(schema):
    operation = schema["paths"]["/api/v1/users/me/"]["patch"]
    body = resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
    assert body["additionalProperties"] is False
    validation = variants(schema, response(schema, "users/me/", "patch", 400))["validation_error"]
    unknown = [item for item in items(schema, validation) if "not" in item["properties"]["attr"]]
    assert [codes(schema, item) for item in unknown] == [{"not_allowed"}]
    assert unknown[0]["properties"]["attr"]["not"]["enum"] == ["first_name", "last_name"]


def test_a_missing_or_null_nested_object_is_an_error_on_the_object(schema):
    validation = variants(schema, response(schema, "payment-methods/", "post", 400))
    by_attr = {
        item["properties"]["attr"]["enum"][0]: codes(schema, item)
        for item in items(schema, validation["validation_error"])
        if "enum" in item["properties"]["attr"]
    }
    assert by_attr["card"] == {"null"}
    assert "null" not in by_attr["card.non_field_errors"]


def test_query_serializers_document_their_errors_and_empty_values(schema):
    validation = variants(schema, response(schema, "reports/sales/", "get", 400))
    by_attr = {
        item["properties"]["attr"]["enum"][0]: codes(schema, item)
        for item in items(schema, validation["validation_error"])
        if "enum" in item["properties"]["attr"]
    }
    assert {"invalid", "range_too_long", "date_from_after_date_to"} <= by_attr["date_from"]
    assert "invalid_choice" in by_attr["interval"]
    parameters = schema["paths"]["/api/v1/reports/sales/"]["get"]["parameters"]
    assert all(parameter.get("allowEmptyValue") for parameter in parameters)


def test_a_trimmed_string_must_hold_a_character_python_does_not_strip(schema):
    body = resolve(schema, schema["components"]["schemas"]["ShippingAddressRequest"])
    assert body["properties"]["city"]["pattern"] == NOT_ONLY_WHITESPACE
    assert "pattern" not in body["properties"]["line2"]  # may be blank
    pattern = re.compile(NOT_ONLY_WHITESPACE)
    whitespace = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert not any(pattern.search(char) for char in whitespace)
    assert all(pattern.search(chr(c)) for c in range(0x3100) if not chr(c).isspace())
