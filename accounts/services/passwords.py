"""Passwords: change, reset through an emailed link, and what makes one acceptable.

A new password, whichever way it is set, ends every other session of the user
(`sessions.sessions_end`).
"""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from common.exceptions import ErrorItem
from common.outbox import enqueue_after_commit

from .. import security, tasks
from ..exceptions import InvalidPassword, InvalidResetToken, WrongPassword
from ..models import User
from ..tokens import password_reset_tokens, uid_decode
from .sessions import sessions_end, user_lock


def password_validate(password: str, *, user: User, attr: str) -> None:
    """Django's password validators: InvalidPassword, one item on `attr` per reason, if any."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise InvalidPassword(
            items=[ErrorItem(message, attr) for message in error.messages]
        ) from None


def password_reset_email_schedule(email: str) -> None:
    """The reset link, emailed after the transaction commits (if an active account has `email`)."""
    enqueue_after_commit(tasks.send_password_reset_email, email=email)


@transaction.atomic
def user_change_password(
    *, user: User, old_password: str, new_password: str, current_refresh_jti: str | None = None
) -> None:
    """Change the password; every other session of the user ends at once.

    Other sessions: their refresh tokens are blacklisted, and every access token ends with the
    session generation. The caller's own session (the refresh token `current_refresh_jti`) is
    kept: its current access token ends too, and refreshing gives a pair of the new generation.
    """
    locked = user_lock(user)
    if not locked.check_password(old_password):
        raise WrongPassword
    password_validate(new_password, user=locked, attr="new_password")
    locked.set_password(new_password)
    sessions_end(locked, changed=["password"], keep_jti=current_refresh_jti)
    user.password = locked.password
    user.session_generation = locked.session_generation
    security.security_event(security.PASSWORD_CHANGED, user=locked, on_commit=True)


@transaction.atomic
def user_request_password_reset(*, email: str) -> None:
    """Email a reset link if an active account has this address; the caller learns nothing.

    The request does exactly the same work whatever the address: it queues a task, and the task
    looks the account up and sends the link only to a real one. Neither the answer nor its
    timing tells whether the account exists.
    """
    email = email.strip()
    password_reset_email_schedule(email)
    security.security_event(
        security.PASSWORD_RESET_REQUESTED, email_hash=security.email_hash(email)
    )


@transaction.atomic
def user_reset_password(*, uid: str, token: str, new_password: str) -> User:
    """Set a new password from a reset link; every session of the user ends.

    The link works once (its token hashes the current password) and for PASSWORD_RESET_TIMEOUT.
    Following it proves the address, so an unverified address becomes verified.
    """
    user_id = uid_decode(uid)
    user = (
        User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user_id is not None
        else None
    )
    if user is None or not password_reset_tokens.check_token(user, token):
        raise InvalidResetToken
    password_validate(new_password, user=user, attr="new_password")
    user.set_password(new_password)
    changed = ["password"]
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        changed.append("email_verified_at")
    sessions_end(user, changed=changed)
    security.security_event(security.PASSWORD_RESET_COMPLETED, user=user, on_commit=True)
    return user
