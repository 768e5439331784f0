import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    ("/api/v1/auth/register/", "post"): ("202", False),
    ("/api/v1/auth/verify-email/", "post"): ("200", False),
    ("/api/v1/auth/verify-email/resend/", "post"): ("202", True),
    ("/api/v1/auth/token/", "post"): ("200", False),
    ("/api/v1/auth/token/refresh/", "post"): ("200", False),
    ("/api/v1/auth/logout/", "post"): ("204", True),
    ("/api/v1/auth/password/change/", "post"): ("204", True),
    ("/api/v1/auth/password/reset/", "post"): ("202", False),
    ("/api/v1/auth/password/reset/confirm/", "post"): ("204", False),
    ("/api/v1/users/me/", "get"): ("200", True),
    ("/api/v1/users/me/", "patch"): ("200", True),
    ("/api/v1/users/", "get"): ("200", True),
    ("/api/v1/users/{id}/", "get"): ("200", True),
    ("/api/v1/users/{id}/", "patch"): ("200", True),
}
NO_BODY = {"204"}
NO_REQUEST = {("/api/v1/auth/verify-email/resend/", "post")}


def test_every_accounts_endpoint_is_documented_with_bodies_and_auth(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    for (path, method), (success, needs_auth) in ENDPOINTS.items():
        operation = schema["paths"][path][method]
        assert success in operation["responses"], (path, method)
        if success not in NO_BODY:
            assert "application/json" in operation["responses"][success]["content"], path
        if method in ("post", "patch") and (path, method) not in NO_REQUEST:
            assert "application/json" in operation["requestBody"]["content"], (path, method)
        security = operation.get("security", [])
        assert ({"jwtAuth": []} in security) is needs_auth, (path, method, security)
    users = schema["paths"]["/api/v1/users/"]["get"]
    assert {p["name"] for p in users["parameters"]} >= {
        "role",
        "is_active",
        "email_verified",
        "search",
        "page",
        "page_size",
    }
    assert "put" not in schema["paths"]["/api/v1/users/{id}/"]
    assert "400" in schema["paths"]["/api/v1/auth/register/"]["post"]["responses"]
    assert "401" in schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
