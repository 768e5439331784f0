import pytest
from django.core.management import call_command
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import (
    IsAdmin,
    IsStaff,
    IsStaffOrReadOnly,
    is_staff_user,
    owned_by,
    owned_or_all_for_staff,
)

from .conftest import bearer, login

pytestmark = pytest.mark.django_db

VIEW = APIView()


def test_createsuperuser_with_email_makes_a_verified_admin(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-passphrase")
    call_command("createsuperuser", "--noinput", "--email", "Boss@Example.com")
    boss = User.objects.get()
    assert (boss.email, boss.role) == ("Boss@example.com", "admin")
    assert boss.is_superuser
    assert boss.is_staff
    assert boss.email_verified


def test_a_user_needs_an_email():
    with pytest.raises(ValueError, match="email address is required"):
        User.objects.create_user(email="")


def test_names_and_derived_flags(make_user):
    ann = make_user(email="ann@example.com", first_name="Ann", last_name="Lovelace")
    assert (str(ann), ann.get_full_name(), ann.get_short_name()) == (
        "ann@example.com",
        "Ann Lovelace",
        "Ann",
    )
    assert not ann.is_staff
    admin = make_user("admin", is_active=False)
    assert not admin.is_superuser  # a suspended admin has no rights at all
    assert not admin.is_staff


def test_suspension_works_even_if_simplejwt_stopped_checking(monkeypatch, make_user):
    # The settings object simplejwt's authentication module reads.
    monkeypatch.setattr(
        "rest_framework_simplejwt.authentication.api_settings.CHECK_USER_IS_ACTIVE", False
    )
    user = make_user(email="ann@example.com")
    client = bearer(login("ann@example.com")["access"])
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = client.get("/api/v1/users/me/")
    assert response.status_code == 401
    assert response.json()["errors"] == [
        {"code": "user_inactive", "detail": "User is inactive.", "attr": None}
    ]


@pytest.mark.parametrize(
    ("role", "active", "staff", "admin"),
    [
        ("customer", True, False, False),
        ("staff", True, True, False),
        ("admin", True, True, True),
        ("staff", False, False, False),
        ("admin", False, False, False),
    ],
)
def test_role_permissions(make_user, role, active, staff, admin):
    request = APIRequestFactory().post("/")
    request.user = make_user(role, is_active=active)
    assert IsStaff().has_permission(request, VIEW) is staff
    assert IsAdmin().has_permission(request, VIEW) is admin
    assert IsStaffOrReadOnly().has_permission(request, VIEW) is staff
    read = APIRequestFactory().get("/")
    read.user = request.user
    assert IsStaffOrReadOnly().has_permission(read, VIEW) is True


def test_ownership_helpers(make_user):
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
    from rest_framework_simplejwt.tokens import RefreshToken

    ann, bob, sam = make_user(), make_user(), make_user("staff")
    for user in (ann, bob, sam):
        RefreshToken.for_user(user)
    tokens = OutstandingToken.objects.order_by("id")

    def owners(queryset):
        return [token.user for token in queryset]

    assert owners(owned_by(tokens, ann)) == [ann]
    assert owners(owned_or_all_for_staff(tokens, bob)) == [bob]
    assert owners(owned_or_all_for_staff(tokens, sam)) == [ann, bob, sam]
    assert is_staff_user(sam)
