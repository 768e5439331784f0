"""The schema of the whole API with the test views of tests/urls.py in it: OpenAPI 3, and the
bearer scheme of the JWT sign-in (accounts/schema.py)."""

import pytest

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]


def test_schema_is_openapi_3_with_the_bearer_scheme(api_client):
    response = api_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
