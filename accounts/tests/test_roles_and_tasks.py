import smtplib

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db.migrations.state import ProjectState

from accounts import roles, services, tasks
from accounts.exceptions import NotAllowed
from accounts.models import User

pytestmark = pytest.mark.django_db


def staff_codenames(*app_labels: str) -> set[str]:
    """The Staff group's permissions within these apps (other apps declare their own)."""
    permissions = Group.objects.get(name="Staff").permissions
    return set(
        permissions.filter(content_type__app_label__in=app_labels).values_list(
            "codename", flat=True
        )
    )


def test_the_staff_group_exists_with_view_user_after_migrate():
    assert staff_codenames("accounts") == {"view_user"}


def test_grant_staff_permissions_works_with_historical_models_in_a_migration():
    state_apps = ProjectState.from_apps(global_apps).apps  # what a migration receives
    roles.grant_staff_permissions(state_apps, app_label="accounts", codenames=["change_user"])
    assert staff_codenames("accounts") == {"view_user", "change_user"}


def test_grant_staff_permissions_all_of_an_app_and_unknown_codenames():
    roles.grant_staff_permissions(app_label="token_blacklist")
    staff = Group.objects.get(name="Staff")
    assert staff.permissions.filter(content_type__app_label="token_blacklist").count() == (
        Permission.objects.filter(content_type__app_label="token_blacklist").count()
    )
    with pytest.raises(LookupError, match="no_such_permission"):
        roles.grant_staff_permissions(app_label="accounts", codenames=["no_such_permission"])


def test_declared_permissions_are_granted_after_migrate(monkeypatch):
    monkeypatch.setattr(roles, "_declared", {})
    roles.declare_staff_permissions("token_blacklist", ["view_outstandingtoken"])
    roles.declare_staff_permissions("token_blacklist", ["view_blacklistedtoken"])
    roles.declare_staff_permissions("accounts")
    roles.declare_staff_permissions("accounts", ["view_user"])  # "all" stays all
    assert roles._declared == {
        "token_blacklist": {"view_outstandingtoken", "view_blacklistedtoken"},
        "accounts": None,
    }
    for label in ("token_blacklist", "accounts", "auth"):
        roles.grant_declared_staff_permissions(sender=global_apps.get_app_config(label))
    granted = staff_codenames("token_blacklist", "accounts", "auth")
    assert granted == {
        "view_outstandingtoken",
        "view_blacklistedtoken",
        "view_user",
        "add_user",
        "change_user",
        "delete_user",
    }


def test_only_admins_use_the_admin_services(staff, customer):
    for call in (
        lambda: services.user_set_role(actor=staff, user=customer, role="staff"),
        lambda: services.user_suspend(actor=staff, user=customer),
        lambda: services.user_reactivate(actor=staff, user=customer),
        lambda: services.user_create_by_admin(actor=staff, email="x@example.com"),
    ):
        with pytest.raises(NotAllowed):
            call()
    customer.refresh_from_db()
    assert (customer.role, customer.is_active) == ("customer", True)
    assert not User.objects.filter(email="x@example.com").exists()


def test_set_role_refuses_an_unknown_role(admin_user, customer):
    with pytest.raises(NotAllowed):
        services.user_set_role(actor=admin_user, user=customer, role="owner")


class FlakySMTPBackend(EmailBackend):
    """Stands in for an SMTP relay that fails the first attempt."""

    attempts = 0

    def send_messages(self, messages):
        type(self).attempts += 1
        if type(self).attempts == 1:
            raise smtplib.SMTPServerDisconnected("relay went away")
        return super().send_messages(messages)


def test_account_emails_are_retried_on_smtp_failure(
    settings, make_user, django_capture_on_commit_callbacks, run_outbox
):
    settings.EMAIL_BACKEND = f"{__name__}.FlakySMTPBackend"
    FlakySMTPBackend.attempts = 0
    user = make_user(verified=False)
    with django_capture_on_commit_callbacks(execute=True):
        services.user_resend_verification(user=user)
    assert (FlakySMTPBackend.attempts, mail.outbox) == (1, [])
    assert run_outbox() == 1
    assert FlakySMTPBackend.attempts == 2
    assert [m.to for m in mail.outbox] == [[user.email]]


def test_email_tasks_skip_users_they_no_longer_concern(make_user):
    verified = make_user()
    suspended = make_user(verified=False, is_active=False)
    tasks.send_verification_email(user_id=verified.pk)
    tasks.send_verification_email(user_id=suspended.pk)
    tasks.send_password_reset_email(email=suspended.email)
    tasks.send_password_reset_email(email="nobody@example.com")
    tasks.send_verification_email(user_id=999_999)
    assert mail.outbox == []


def test_expired_refresh_tokens_are_flushed(make_user):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
    from rest_framework_simplejwt.tokens import RefreshToken

    user = make_user()
    live, old, old_blacklisted = (RefreshToken.for_user(user) for _ in range(3))
    old_blacklisted.blacklist()
    OutstandingToken.objects.filter(jti__in=[old["jti"], old_blacklisted["jti"]]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert tasks.flush_expired_tokens.delay().get() == 2

    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [live["jti"]]
    assert BlacklistedToken.objects.count() == 0
