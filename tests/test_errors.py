"""Every error, wherever it comes from, has the one shape of API.md."""

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]


def only_error(response, status: int):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"type", "errors"}
    assert len(body["errors"]) >= 1
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}
    return body


def test_validation_error_names_the_field(api_client):
    body = only_error(api_client.post("/api/v1/_test/validate/", {"quantity": 0}), 400)
    assert body["type"] == "validation_error"
    assert body["errors"][0]["code"] == "min_value"
    assert body["errors"][0]["attr"] == "quantity"


def test_malformed_json_is_a_400_parse_error(api_client):
    response = api_client.post(
        "/api/v1/_test/validate/", data="{not json", content_type="application/json"
    )
    body = only_error(response, 400)
    assert body["errors"][0]["code"] == "parse_error"


def test_unauthenticated_is_401(api_client):
    body = only_error(api_client.get("/api/v1/_test/staff/"), 401)
    assert body == {
        "type": "client_error",
        "errors": [
            {
                "code": "not_authenticated",
                "detail": "Authentication credentials were not provided.",
                "attr": None,
            }
        ],
    }


def test_bad_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    body = only_error(api_client.get("/api/v1/_test/staff/"), 401)
    assert body["errors"][0]["code"] == "token_not_valid"


def test_wrong_role_is_403(customer_client):
    body = only_error(customer_client.get("/api/v1/_test/staff/"), 403)
    assert body["errors"][0]["code"] == "permission_denied"


def test_staff_passes_the_role_check(staff_client):
    assert staff_client.get("/api/v1/_test/staff/").json() == {"ok": True}


def test_unknown_url_is_a_json_404(api_client):
    body = only_error(api_client.get("/api/v1/no-such-thing/"), 404)
    assert body == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }


def test_wrong_method_is_405(api_client):
    body = only_error(api_client.delete("/api/v1/_test/validate/"), 405)
    assert body["errors"][0]["code"] == "method_not_allowed"


def test_domain_error_keeps_its_code_status_and_field(api_client):
    body = only_error(api_client.get("/api/v1/_test/domain/"), 409)
    assert body == {
        "type": "client_error",
        "errors": [{"code": "protected", "detail": "Still used by order 7.", "attr": "product"}],
    }


def test_crash_is_a_generic_500_without_internals():
    client = APIClient(raise_request_exception=False)
    response = client.get("/api/v1/_test/crash/")
    body = only_error(response, 500)
    assert body["type"] == "server_error"
    assert "boom" not in response.content.decode()


def test_schema_documents_the_error_shape(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    assert "ValidationErrorEnum" in components
    assert "ErrorCode401Enum" in components
    conflict = schema["paths"]["/api/v1/_test/domain/"]["get"]["responses"]["409"]
    assert "`protected`" in conflict["description"]
    assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("DomainErrorResponse")
