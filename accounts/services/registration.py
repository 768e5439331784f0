"""New accounts: sign-up, accounts made in the console, and email verification.

Sign-up never tells whether an address already has an account (`user_register`).
"""

from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.outbox import enqueue_after_commit

from .. import security, tasks
from ..exceptions import EmailAlreadyRegistered, InvalidVerificationToken
from ..models import User
from ..roles import sync_role_groups
from ..tokens import email_verification_matches, email_verification_token_read
from .passwords import password_reset_email_schedule, password_validate
from .users import admin_required


def _verification_email_schedule(user: User) -> None:
    enqueue_after_commit(tasks.send_verification_email, user_id=user.pk)


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    role: str = User.Role.CUSTOMER,
) -> User:
    """A new user; `password=None` makes one who must set a password through the reset link."""
    email = User.objects.normalize_email(email).strip()
    candidate = User(email=email, first_name=first_name, last_name=last_name, role=role)
    if User.objects.filter(email__iexact=email).exists():
        raise EmailAlreadyRegistered
    if password is not None:
        password_validate(password, user=candidate, attr="password")
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email,
                password=password,
                first_name=first_name,
                last_name=last_name,
                role=role,
            )
    except (IntegrityError, DjangoValidationError):
        # The same address registered concurrently: the model's constraint check (full_clean)
        # or the unique index refused it. Anything else is a bug and is raised as it is.
        if not User.objects.filter(email__iexact=email).exists():
            raise
        raise EmailAlreadyRegistered from None
    sync_role_groups(user)
    return user


@transaction.atomic
def user_register(*, email: str, password: str, first_name: str = "", last_name: str = "") -> str:
    """Sign up as a customer; returns the address as stored (normalized).

    A new address gets an account and a verification email. An address that already has an
    account gets no second one and no error: its owner is emailed that someone tried to sign up
    with it (with a sign-in and a reset link). The caller learns nothing: the same return value,
    the same work (the password is validated and hashed in both cases, one email queued), so
    neither the answer nor its timing tells whether the account exists. A weak password is
    refused in both cases alike.
    """
    email = User.objects.normalize_email(email).strip()
    candidate = User(email=email, first_name=first_name, last_name=last_name)
    password_validate(password, user=candidate, attr="password")
    existing = User.objects.filter(email__iexact=email).first()
    if existing is None:
        try:
            user = user_create(
                email=email, password=password, first_name=first_name, last_name=last_name
            )
        except EmailAlreadyRegistered:  # registered concurrently, just now
            existing = User.objects.filter(email__iexact=email).first()
            if existing is None:
                raise
        else:
            _verification_email_schedule(user)
            return email
    make_password(password)  # the hash a new account costs, so both answers take as long
    enqueue_after_commit(tasks.send_account_exists_email, user_id=existing.pk)
    security.security_event(security.REGISTRATION_EXISTING_EMAIL, user=existing)
    return email


@transaction.atomic
def user_verify_email(*, token: str) -> User:
    """Mark the address verified. Using a valid link again changes nothing."""
    content = email_verification_token_read(token)
    if content is None:
        raise InvalidVerificationToken
    user_id, digest = content
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None or not email_verification_matches(user, digest):
        raise InvalidVerificationToken
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


@transaction.atomic
def user_resend_verification(*, user: User) -> None:
    """Send a new verification link; nothing is sent to an address already verified."""
    if not user.email_verified and user.is_active:
        _verification_email_schedule(user)


@transaction.atomic
def user_create_by_admin(
    *, actor: User, email: str, first_name: str = "", last_name: str = "", role: str = "customer"
) -> User:
    """An account made in the console from an email alone; its owner sets a password by email."""
    admin_required(actor)
    user = user_create(
        email=email, password=None, first_name=first_name, last_name=last_name, role=role
    )
    password_reset_email_schedule(user.email)
    return user
