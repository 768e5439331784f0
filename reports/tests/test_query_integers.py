"""`limit` is an integer written in digits, as the schema's `integer` is: the schema fuzzing
(tests/test_schema_fuzz.py) found `limit=5.0` and `limit= 5` taken as 5."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

TOP = "/api/v1/reports/top-products/"


@pytest.mark.parametrize("limit", ["5.0", " 5", "5 ", "0x5"])
def test_a_limit_not_written_in_digits_is_a_400_naming_it(
    db: None, staff_client: APIClient, limit: str
) -> None:
    response = staff_client.get(TOP, {"limit": limit})
    assert response.status_code == 400
    assert [(e["attr"], e["code"]) for e in response.json()["errors"]] == [("limit", "invalid")]


def test_a_signed_limit_in_digits_is_read(db: None, staff_client: APIClient) -> None:
    assert staff_client.get(TOP, {"limit": "+5"}).status_code == 200
