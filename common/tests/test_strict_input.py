"""Input the schema forbids is refused (Schemathesis found it accepted, tests/test_schema_fuzz.py):

- `page_size` that is not a whole number ≥ 1, written in digits, is a 400 naming it (it was
  silently ignored; `5.0` was taken as 5); an empty one means none, and one above 100 gives 100;
- a JSON body value of another type than its field documents (`0` for a string, `"true"` for a
  boolean, `"12"` for an integer, an integer for a UUID) is a 400 `invalid` naming the field
  (DRF's fields converted it);
- a trimmed string longer than its `maxLength` as sent is refused, even when trimming would
  shorten it.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from common.parsers import JSONInputSerializer

pytestmark = pytest.mark.django_db

METHODS = "/api/v1/payment-methods/"  # any paginated list


@pytest.mark.parametrize(
    ("page_size", "code"),
    [("abc", "invalid"), ("5.0", "invalid"), (" 5", "invalid"), ("0", "min_value")],
)
def test_a_bad_page_size_is_a_400_naming_it(customer_client, page_size, code):
    response = customer_client.get(METHODS, {"page_size": page_size})
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "errors": [
            {"code": code, "detail": response.json()["errors"][0]["detail"], "attr": "page_size"}
        ],
    }


@pytest.mark.parametrize("page_size", ["", "500"])
def test_an_empty_or_large_page_size_is_still_a_page(customer_client, page_size):
    response = customer_client.get(METHODS, {"page_size": page_size})
    assert response.status_code == 200


class _Input(JSONInputSerializer):
    name = serializers.CharField(max_length=5)
    count = serializers.IntegerField(required=False)
    flag = serializers.BooleanField(required=False)
    ref = serializers.UUIDField(required=False)


def errors(data: dict[str, Any]) -> dict[str, list[str]]:
    serializer = _Input(data=data)
    assert not serializer.is_valid()
    return {name: [error.code for error in found] for name, found in serializer.errors.items()}


@pytest.mark.parametrize(
    "data",
    [
        {"name": 0},
        {"name": "ok", "count": "12"},
        {"name": "ok", "count": True},
        {"name": "ok", "flag": "true"},
        {"name": "ok", "flag": 1},
        {"name": "ok", "ref": 12},
    ],
)
def test_a_value_of_another_json_type_is_invalid(data):
    (field,) = set(data) - {"name"} or {"name"}
    assert errors(data) == {field: ["invalid"]}


def test_the_documented_types_are_taken():
    serializer = _Input(
        data={
            "name": " ok ",
            "count": 3.0,
            "flag": False,
            "ref": "0f6a1c3e-8d2b-4a5e-9c7f-1b2d3e4f5a6b",
        }
    )
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["name"] == "ok"
    assert serializer.validated_data["count"] == 3


def test_max_length_holds_for_the_string_as_sent():
    assert errors({"name": "abcde "}) == {"name": ["max_length"]}
