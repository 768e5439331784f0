import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts import services
from accounts.models import User

from .conftest import PASSWORD, login

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/user/"
ADD = "/admin/accounts/user/add/"


def change_url(user: User) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def form_data(user: User, **changes) -> dict[str, str]:
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": user.role,
        "is_active": "on" if user.is_active else "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


@pytest.fixture
def admin_browser(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def staff_member():
    return services.user_create(email="sam@example.com", password=PASSWORD, role=User.Role.STAFF)


@pytest.fixture
def staff_browser(client, staff_member):
    client.force_login(staff_member)
    return client


def test_admin_searches_and_filters_users(admin_browser, make_user):
    make_user(email="ann@example.com", first_name="Ann")
    make_user(email="bob@example.com", verified=False)
    make_user("staff", email="sue@example.com", is_active=False)

    def listed(**params) -> list[str]:
        response = admin_browser.get(CHANGELIST, params)
        assert response.status_code == 200
        return sorted(user.email for user in response.context["cl"].result_list)

    assert listed(q="ann") == ["ann@example.com"]
    assert listed(role__exact="staff") == ["sue@example.com"]
    assert listed(is_active__exact="0") == ["sue@example.com"]
    assert listed(verified="no") == ["bob@example.com"]
    assert "bob@example.com" not in listed(verified="yes")


def test_staff_see_users_but_change_nothing(staff_browser, customer):
    assert staff_browser.get(CHANGELIST).status_code == 200
    page = staff_browser.get(change_url(customer))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False

    response = staff_browser.post(change_url(customer), form_data(customer, role="admin"))

    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.role == "customer"
    assert staff_browser.get(ADD).status_code == 403


def test_staff_cannot_raise_their_own_role_in_the_admin(staff_browser, staff_member):
    response = staff_browser.post(change_url(staff_member), form_data(staff_member, role="admin"))
    assert response.status_code == 403
    staff_member.refresh_from_db()
    assert staff_member.role == "staff"


def test_staff_cannot_suspend_with_an_action(staff_browser, customer):
    offered = staff_browser.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in offered if name] == ["resend_verification"]
    staff_browser.post(CHANGELIST, {"action": "suspend_users", ACTION_CHECKBOX_NAME: [customer.pk]})
    customer.refresh_from_db()
    assert customer.is_active


def test_admin_changes_a_role_and_groups_follow(admin_browser, customer):
    response = admin_browser.post(
        change_url(customer), form_data(customer, role="staff", first_name="Cleo")
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.role, customer.first_name) == ("staff", "Cleo")
    assert list(customer.groups.values_list("name", flat=True)) == ["Staff"]


def test_admin_suspends_in_the_form_and_sessions_end(admin_browser, customer):
    pair = login("customer@example.com")
    response = admin_browser.post(change_url(customer), form_data(customer, is_active=""))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert not customer.is_active
    assert (
        APIClient().post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}).status_code
        == 401
    )


def test_an_admin_cannot_demote_or_suspend_themselves_in_the_admin(admin_browser, admin_user):
    page = admin_browser.get(change_url(admin_user))
    assert {"role", "is_active"} <= set(page.context["adminform"].readonly_fields)
    response = admin_browser.post(
        change_url(admin_user), form_data(admin_user, role="customer", is_active="")
    )
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert (admin_user.role, admin_user.is_active) == ("admin", True)


def test_admin_creates_a_user_from_an_email_alone(
    admin_browser, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_browser.post(ADD, {"email": "new@example.com", "role": "staff"})
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.role == "staff"
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == ["Staff"]
    assert [(m.to, m.subject) for m in mail.outbox] == [(["new@example.com"], "Set your password")]
    assert "An account was created for you." in mail.outbox[0].body


def test_admin_add_refuses_a_duplicate_email(admin_browser, customer):
    response = admin_browser.post(ADD, {"email": "CUSTOMER@example.com", "role": "customer"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "An account with this email address already exists."
    ]
    assert User.objects.filter(email__iexact="customer@example.com").count() == 1


def test_suspend_and_reactivate_actions(admin_browser, admin_user, make_user):
    ann = make_user(email="ann@example.com")
    pair = login("ann@example.com")
    admin_browser.post(
        CHANGELIST,
        {"action": "suspend_users", ACTION_CHECKBOX_NAME: [ann.pk, admin_user.pk]},
    )
    ann.refresh_from_db()
    admin_user.refresh_from_db()
    assert not ann.is_active
    assert admin_user.is_active  # not themselves
    assert BlacklistedToken.objects.filter(token__user=ann).count() == 1
    assert (
        APIClient()
        .get("/api/v1/users/me/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
        .status_code
        == 401
    )

    admin_browser.post(CHANGELIST, {"action": "reactivate_users", ACTION_CHECKBOX_NAME: [ann.pk]})
    ann.refresh_from_db()
    assert ann.is_active


def test_staff_resend_verification_from_the_list(
    staff_browser, make_user, django_capture_on_commit_callbacks
):
    unverified = make_user(email="new@example.com", verified=False)
    verified = make_user(email="old@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_browser.post(
            CHANGELIST,
            {"action": "resend_verification", ACTION_CHECKBOX_NAME: [unverified.pk, verified.pk]},
        )
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


def test_customers_do_not_reach_the_admin(client, customer):
    client.force_login(customer)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_admin_cannot_delete_themselves(admin_browser, admin_user, customer):
    delete = "/admin/accounts/user/{}/delete/"
    assert admin_browser.get(delete.format(admin_user.pk)).status_code == 403
    assert admin_browser.get(delete.format(customer.pk)).status_code == 200
    assert User.objects.filter(pk=admin_user.pk).exists()
