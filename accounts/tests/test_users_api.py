import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.models import User
from conftest import client_for

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me/"
USERS = "/api/v1/users/"


def test_me_shows_the_profile(customer, customer_client):
    response = customer_client.get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "id": customer.pk,
        "email": "customer@example.com",
        "first_name": "",
        "last_name": "",
        "role": "customer",
        "email_verified": True,
        "date_joined": customer.date_joined.isoformat().replace("+00:00", "Z"),
    }


def test_me_needs_a_signed_in_user():
    assert APIClient().get(ME).status_code == 401


def test_me_patch_changes_the_name(customer, customer_client):
    response = customer_client.patch(ME, {"first_name": "Ann", "last_name": "Lovelace"})
    assert response.status_code == 200
    assert response.json()["first_name"] == "Ann"
    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name) == ("Ann", "Lovelace")


@pytest.mark.parametrize(
    "field",
    [
        {"role": "admin"},
        {"role": "staff"},
        {"is_staff": True},
        {"is_superuser": True},
        {"email_verified": False},
        {"email_verified_at": None},
        {"email": "new@example.com"},
        {"is_active": False},
        {"groups": [1]},
        {"id": 999},
    ],
)
@pytest.mark.parametrize("who", ["customer", "staff", "admin"])
def test_nobody_writes_their_own_privileged_fields(make_user, who, field):
    user = make_user(who, email=f"{who}@example.com")
    before = User.objects.filter(pk=user.pk).values().get()
    response = client_for(user).patch(ME, {**field, "first_name": "Mallory"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "not_allowed",
            "detail": "This field cannot be set here.",
            "attr": next(iter(field)),
        }
    ]
    assert User.objects.filter(pk=user.pk).values().get() == before


def test_users_list_is_for_admins_only(customer_client, staff_client):
    for client in (customer_client, staff_client):
        response = client.get(USERS)
        assert response.status_code == 403
        assert response.json()["errors"][0]["code"] == "permission_denied"
    assert APIClient().get(USERS).status_code == 401


def test_staff_cannot_change_anyones_role_including_their_own(staff, staff_client, customer):
    for target in (staff, customer):
        response = staff_client.patch(f"{USERS}{target.pk}/", {"role": "admin"})
        assert response.status_code == 403
    staff.refresh_from_db()
    customer.refresh_from_db()
    assert (staff.role, customer.role) == ("staff", "customer")
    assert staff_client.patch(ME, {"role": "admin"}).status_code == 400
    staff.refresh_from_db()
    assert staff.role == "staff"


def test_admin_lists_users_with_a_fixed_number_of_queries(
    admin_user, admin_client_api, make_user, django_assert_num_queries
):
    for _ in range(3):
        make_user()
    with django_assert_num_queries(3):  # the user (auth), the count, the page
        small = admin_client_api.get(USERS, {"page_size": 2})
    for _ in range(10):
        make_user()
    with django_assert_num_queries(3):
        large = admin_client_api.get(USERS, {"page_size": 100})
    assert small.json()["count"] == 4
    assert len(small.json()["results"]) == 2
    assert len(large.json()["results"]) == 14
    assert small.json()["results"][0] == {
        "id": admin_user.pk,
        "email": "admin@example.com",
        "first_name": "",
        "last_name": "",
        "role": "admin",
        "is_active": True,
        "email_verified": True,
        "email_verified_at": admin_user.email_verified_at.isoformat().replace("+00:00", "Z"),
        "date_joined": admin_user.date_joined.isoformat().replace("+00:00", "Z"),
        "last_login": None,
    }


def test_admin_filters_and_searches_users(admin_user, admin_client_api, make_user):
    ann = make_user(email="ann@example.com", first_name="Ann", last_name="Lovelace")
    bob = make_user("staff", email="bob@shop.test", first_name="Bob", verified=False)
    sus = make_user(email="sus@example.com", last_name="Lovelace", is_active=False)

    def ids(**params):
        response = admin_client_api.get(USERS, params)
        assert response.status_code == 200
        return [user["id"] for user in response.json()["results"]]

    assert ids() == [admin_user.pk, ann.pk, bob.pk, sus.pk]
    assert ids(role="staff") == [bob.pk]
    assert ids(role="customer") == [ann.pk, sus.pk]
    assert ids(is_active="false") == [sus.pk]
    assert ids(is_active="true") == [admin_user.pk, ann.pk, bob.pk]
    assert ids(email_verified="false") == [bob.pk]
    assert ids(search="lovelace") == [ann.pk, sus.pk]
    assert ids(search="ann lovelace") == [ann.pk]
    assert ids(search="SHOP.TEST") == [bob.pk]
    assert ids(search="lovelace", is_active="true") == [ann.pk]
    assert ids(search="nobody") == []
    response = admin_client_api.get(USERS, {"role": "owner"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "role"


def test_admin_reads_one_user(admin_client_api, customer):
    response = admin_client_api.get(f"{USERS}{customer.pk}/")
    assert response.status_code == 200
    assert response.json()["email"] == "customer@example.com"
    assert admin_client_api.get(f"{USERS}999999/").status_code == 404


def test_admin_promotes_and_demotes_and_groups_follow(admin_client_api, customer):
    response = admin_client_api.patch(f"{USERS}{customer.pk}/", {"role": "staff"})
    assert response.status_code == 200
    assert response.json()["role"] == "staff"
    customer.refresh_from_db()
    assert customer.role == "staff"
    assert customer.is_staff
    assert list(customer.groups.values_list("name", flat=True)) == ["Staff"]
    assert customer.has_perm("accounts.view_user")
    assert not customer.has_perm("accounts.change_user")

    admin_client_api.patch(f"{USERS}{customer.pk}/", {"role": "customer"})
    customer = User.objects.get(pk=customer.pk)
    assert customer.role == "customer"
    assert not customer.is_staff
    assert list(customer.groups.all()) == []
    assert not customer.has_perm("accounts.view_user")


def test_role_changes_leave_unmanaged_groups_alone(admin_user, customer):
    from accounts import services

    other = Group.objects.create(name="Newsletter editors")
    customer.groups.add(other)
    services.user_set_role(actor=admin_user, user=customer, role="staff")
    services.user_set_role(actor=admin_user, user=customer, role="admin")
    assert sorted(customer.groups.values_list("name", flat=True)) == ["Newsletter editors", "Staff"]
    services.user_set_role(actor=admin_user, user=customer, role="customer")
    assert list(customer.groups.values_list("name", flat=True)) == ["Newsletter editors"]


def test_admin_renames_and_reactivates(admin_client_api, make_user):
    user = make_user(is_active=False)
    response = admin_client_api.patch(
        f"{USERS}{user.pk}/", {"is_active": True, "first_name": "Back"}
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.is_active, user.first_name) == (True, "Back")


@pytest.mark.parametrize("change", [{"role": "customer"}, {"role": "staff"}, {"is_active": False}])
def test_an_admin_cannot_demote_or_suspend_themselves(admin_user, admin_client_api, change):
    response = admin_client_api.patch(f"{USERS}{admin_user.pk}/", change)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "code": "own_account",
            "detail": "You cannot change your own role or suspend yourself.",
            "attr": next(iter(change)),
        }
    ]
    admin_user.refresh_from_db()
    assert (admin_user.role, admin_user.is_active) == ("admin", True)


def test_an_admin_patch_is_all_or_nothing(admin_user, admin_client_api):
    response = admin_client_api.patch(
        f"{USERS}{admin_user.pk}/", {"first_name": "Changed", "is_active": False}
    )
    assert response.status_code == 400
    admin_user.refresh_from_db()
    assert admin_user.first_name == ""


@pytest.mark.parametrize(
    "body",
    [{"role": "superadmin"}, {"is_staff": True}, {"email": "x@example.com"}, {"password": "x"}],
)
def test_admin_patch_refuses_unknown_values_and_fields(admin_client_api, customer, body):
    before = User.objects.filter(pk=customer.pk).values().get()
    response = admin_client_api.patch(f"{USERS}{customer.pk}/", body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == next(iter(body))
    assert User.objects.filter(pk=customer.pk).values().get() == before


def test_put_and_delete_are_not_offered(admin_client_api, customer):
    url = f"{USERS}{customer.pk}/"
    assert admin_client_api.put(url, {"role": "staff"}).status_code == 405
    assert admin_client_api.delete(url).status_code == 405
    assert User.objects.filter(pk=customer.pk).exists()
