import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import services
from accounts.models import User

from .conftest import PASSWORD, bearer, login

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/users/me/"
BAD_LOGIN = [
    {
        "code": "invalid_credentials",
        "detail": "No active account found with the given credentials.",
        "attr": None,
    }
]
BAD_REFRESH = [
    {
        "code": "token_not_valid",
        "detail": "The refresh token is invalid, expired or already used.",
        "attr": None,
    }
]


def test_login_returns_a_working_pair(make_user):
    user = make_user(email="ann@example.com")
    response = APIClient().post(TOKEN, {"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    me = bearer(response.json()["access"]).get(ME)
    assert me.status_code == 200
    assert me.json()["id"] == user.pk
    refresh = RefreshToken(response.json()["refresh"])
    assert OutstandingToken.objects.get(jti=refresh["jti"]).user == user
    user.refresh_from_db()
    assert user.last_login is not None


def test_login_ignores_the_case_of_the_email(make_user):
    make_user(email="ann@example.com")
    assert "access" in login("ANN@Example.com")


@pytest.mark.parametrize(
    "case", ["unknown email", "wrong password", "suspended", "empty password", "not an email"]
)
def test_every_failed_login_looks_the_same(make_user, case):
    make_user(email="ann@example.com")
    make_user(email="sus@example.com", is_active=False)
    body = {
        "unknown email": {"email": "nobody@example.com", "password": PASSWORD},
        "wrong password": {"email": "ann@example.com", "password": "wrong-password-123"},
        "suspended": {"email": "sus@example.com", "password": PASSWORD},
        "empty password": {"email": "ann@example.com", "password": "x"},
        "not an email": {"email": "ann", "password": PASSWORD},
    }[case]
    response = APIClient().post(TOKEN, body)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {"type": "client_error", "errors": BAD_LOGIN}
    assert OutstandingToken.objects.count() == 0


def test_login_without_fields_is_a_validation_error():
    response = APIClient().post(TOKEN, {})
    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == ["email", "password"]


@pytest.mark.parametrize(
    ("hasher", "prefix"),
    [("pbkdf2_sha256", "pbkdf2_sha256$"), ("bcrypt_sha256", "bcrypt_sha256$")],
)
def test_older_hashes_are_upgraded_to_argon2_on_login(
    make_user, production_hashers, hasher, prefix
):
    user = make_user(email="old@example.com")
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher=hasher))
    user.refresh_from_db()
    assert user.password.startswith(prefix)

    login("old@example.com")

    user.refresh_from_db()
    assert user.password.startswith("argon2$")
    assert user.check_password(PASSWORD)


def test_a_failed_login_does_not_upgrade_the_hash(make_user, production_hashers):
    user = make_user(email="old@example.com")
    old_hash = make_password(PASSWORD, hasher="pbkdf2_sha256")
    User.objects.filter(pk=user.pk).update(password=old_hash)
    response = APIClient().post(TOKEN, {"email": "old@example.com", "password": "nope-nope-1"})
    assert response.status_code == 401
    user.refresh_from_db()
    assert user.password == old_hash


def test_refresh_rotates_and_the_old_refresh_no_longer_works(make_user):
    make_user(email="ann@example.com")
    first = login("ann@example.com")

    response = APIClient().post(REFRESH, {"refresh": first["refresh"]})

    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"]
    assert bearer(second["access"]).get(ME).status_code == 200
    reuse = APIClient().post(REFRESH, {"refresh": first["refresh"]})
    assert reuse.status_code == 401
    assert reuse["WWW-Authenticate"] == 'Bearer realm="api"'
    assert reuse.json()["errors"] == BAD_REFRESH
    # A replay ends the chain descended from it too (test_security.py has the details).
    assert APIClient().post(REFRESH, {"refresh": second["refresh"]}).status_code == 401


def test_refresh_gives_claims_of_the_current_role(make_user, admin_user):
    user = make_user(email="ann@example.com")
    pair = login("ann@example.com")
    services.user_set_role(actor=admin_user, user=user, role="staff")
    access = AccessToken(APIClient().post(REFRESH, {"refresh": pair["refresh"]}).json()["access"])
    assert access["role"] == "staff"


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_refresh_with_a_broken_token_is_401(token):
    response = APIClient().post(REFRESH, {"refresh": token})
    assert response.status_code == 401
    assert response.json()["errors"] == BAD_REFRESH


def test_an_access_token_is_not_a_refresh_token(make_user):
    make_user(email="ann@example.com")
    access = login("ann@example.com")["access"]
    assert APIClient().post(REFRESH, {"refresh": access}).status_code == 401


def test_refresh_of_a_deleted_user_is_401(make_user):
    user = make_user(email="ann@example.com")
    refresh = login("ann@example.com")["refresh"]
    user.delete()
    assert APIClient().post(REFRESH, {"refresh": refresh}).status_code == 401


def test_refresh_without_a_token_is_400():
    response = APIClient().post(REFRESH, {})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "refresh"


def test_logout_blacklists_that_refresh_only(make_user):
    make_user(email="ann@example.com")
    phone, laptop = login("ann@example.com"), login("ann@example.com")

    response = bearer(phone["access"]).post(LOGOUT, {"refresh": phone["refresh"]})

    assert response.status_code == 204
    assert APIClient().post(REFRESH, {"refresh": phone["refresh"]}).status_code == 401
    assert bearer(phone["access"]).get(ME).status_code == 401  # that session's access too
    laptop = APIClient().post(REFRESH, {"refresh": laptop["refresh"]}).json()  # goes on
    # Logging out again changes nothing and is not an error.
    assert bearer(laptop["access"]).post(LOGOUT, {"refresh": phone["refresh"]}).status_code == 204
    assert BlacklistedToken.objects.count() == 2  # phone's, and laptop's rotated one


def test_logout_refuses_someone_elses_refresh_token(make_user):
    make_user(email="ann@example.com")
    make_user(email="bob@example.com")
    ann, bob = login("ann@example.com"), login("bob@example.com")
    response = bearer(ann["access"]).post(LOGOUT, {"refresh": bob["refresh"]})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "token_not_valid",
            "detail": "This is not a valid refresh token of yours.",
            "attr": "refresh",
        }
    ]
    assert BlacklistedToken.objects.count() == 0
    assert APIClient().post(REFRESH, {"refresh": bob["refresh"]}).status_code == 200


@pytest.mark.parametrize("which", ["access", "garbage"])
def test_logout_refuses_what_is_not_a_refresh_token(make_user, which):
    make_user(email="ann@example.com")
    pair = login("ann@example.com")
    token = pair["access"] if which == "access" else "garbage"
    assert bearer(pair["access"]).post(LOGOUT, {"refresh": token}).status_code == 400
    assert BlacklistedToken.objects.count() == 0


def test_logout_needs_a_signed_in_user(make_user):
    make_user(email="ann@example.com")
    pair = login("ann@example.com")
    assert APIClient().post(LOGOUT, {"refresh": pair["refresh"]}).status_code == 401
    assert BlacklistedToken.objects.count() == 0


def test_suspension_kills_live_access_and_refresh_tokens(make_user, admin_user):
    user = make_user(email="ann@example.com")
    phone, laptop = login("ann@example.com"), login("ann@example.com")
    assert bearer(phone["access"]).get(ME).status_code == 200

    response = bearer(login("admin@example.com")["access"]).patch(
        f"/api/v1/users/{user.pk}/", {"is_active": False}
    )

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    for pair in (phone, laptop):
        denied = bearer(pair["access"]).get(ME)
        assert denied.status_code == 401
        assert denied.json()["errors"] == [
            {"code": "user_inactive", "detail": "User is inactive", "attr": None}
        ]
        assert APIClient().post(REFRESH, {"refresh": pair["refresh"]}).status_code == 401
    assert set(BlacklistedToken.objects.values_list("token__user", flat=True)) == {user.pk}
    assert (
        APIClient().post(TOKEN, {"email": "ann@example.com", "password": PASSWORD}).status_code
        == 401
    )


def test_reactivated_users_sign_in_again_but_old_sessions_stay_dead(make_user, admin_user):
    user = make_user(email="ann@example.com")
    old = login("ann@example.com")
    services.user_suspend(actor=admin_user, user=user)
    services.user_reactivate(actor=admin_user, user=user)
    assert APIClient().post(REFRESH, {"refresh": old["refresh"]}).status_code == 401
    assert bearer(login("ann@example.com")["access"]).get(ME).status_code == 200


def test_jwt_authentication_adds_no_query_beyond_loading_the_user(
    make_user, django_assert_num_queries
):
    make_user(email="ann@example.com")
    client = bearer(login("ann@example.com")["access"])
    with django_assert_num_queries(1):  # SELECT the user: suspension is checked on that row
        assert client.get(ME).status_code == 200


def test_a_stale_authorization_header_does_not_block_public_endpoints(make_user):
    make_user(email="ann@example.com")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.garbage")
    assert client.post(TOKEN, {"email": "ann@example.com", "password": PASSWORD}).status_code == 200


def test_a_bad_access_token_is_one_401_error():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = client.get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "token_not_valid",
                "detail": "Given token not valid for any token type",
                "attr": None,
            }
        ],
    }


def test_an_access_token_of_a_deleted_user_is_401(make_user):
    user = make_user(email="ann@example.com")
    client = bearer(login("ann@example.com")["access"])
    user.delete()
    response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "user_not_found"
