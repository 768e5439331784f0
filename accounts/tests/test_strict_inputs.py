"""Account inputs take each value in its documented JSON type (found by the schema fuzzing,
tests/test_schema_fuzz.py: `{"last_name": 0}` was saved as "0")."""

import pytest

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me/"


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_a_name_that_is_not_a_string_is_refused(customer, customer_client, value):
    response = customer_client.patch(ME, {"last_name": value}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": "invalid", "detail": "Not a valid string.", "attr": "last_name"}
    ]
    customer.refresh_from_db()
    assert customer.last_name == ""


def test_registration_refuses_a_number_for_a_name(api_client):
    response = api_client.post(
        "/api/v1/auth/register/",
        {"email": "ada@example.com", "password": "a-long-enough-passphrase", "last_name": 0},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "last_name"
