"""Every state change of accounts: registration, verification, sessions, passwords, roles.

Why one long module: sessions, passwords and roles all move the same session generation and
blacklist (accounts.sessions); keeping every account write here keeps that rule in one place.

Services are keyword-only and atomic; they raise `DomainError`s and send email only after the
transaction commits (the email tasks load the user and make the token themselves, so no token
ever travels through the broker).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from common.exceptions import ErrorItem
from common.outbox import enqueue_after_commit

from . import security, tasks
from .exceptions import (
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidPassword,
    InvalidRefreshToken,
    InvalidResetToken,
    InvalidVerificationToken,
    LogoutTokenRejected,
    NotAllowed,
    OwnAccountChange,
    WrongPassword,
)
from .models import User
from .roles import sync_role_groups
from .tokens import (
    ROTATED_FROM_CLAIM,
    ShopRefreshToken,
    TokenPair,
    email_verification_matches,
    email_verification_token_read,
    password_reset_tokens,
    token_pair_for,
    uid_decode,
)

# --- helpers ---------------------------------------------------------------------------------


def _password_validate(password: str, *, user: User, attr: str) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise InvalidPassword(
            items=[ErrorItem(message, attr) for message in error.messages]
        ) from None


def _require_admin(actor: User) -> None:
    if not actor.is_superuser:
        raise NotAllowed("Only an admin may change roles or suspend users.")


def _schedule_verification_email(user: User) -> None:
    enqueue_after_commit(tasks.send_verification_email, user_id=user.pk)


def _schedule_password_reset_email(email: str) -> None:
    enqueue_after_commit(tasks.send_password_reset_email, email=email)


def _schedule_account_exists_email(user: User) -> None:
    enqueue_after_commit(tasks.send_account_exists_email, user_id=user.pk)


def _lock(user: User) -> User:
    """The user's row, locked until the transaction ends (serialises session changes)."""
    return User.objects.select_for_update().get(pk=user.pk)


def _end_access_tokens(locked: User, *, user: User | None = None) -> None:
    """Bump the session generation of a locked row: every access token made before is refused
    on its next request (accounts/sessions.py). `user`, the caller's copy, follows."""
    locked.bump_session_generation()
    locked.save(update_fields=["session_generation"])
    if user is not None:
        user.session_generation = locked.session_generation


# --- registration and verification -----------------------------------------------------------


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
        raise EmailAlreadyRegistered(items=[ErrorItem(EmailAlreadyRegistered.message, "email")])
    if password is not None:
        _password_validate(password, user=candidate, attr="password")
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
        raise EmailAlreadyRegistered(
            items=[ErrorItem(EmailAlreadyRegistered.message, "email")]
        ) from None
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
    _password_validate(password, user=candidate, attr="password")
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
            _schedule_verification_email(user)
            return email
    make_password(password)  # the hash a new account costs, so both answers take as long
    _schedule_account_exists_email(existing)
    security.security_event(security.REGISTRATION_EXISTING_EMAIL, user=existing)
    return email


@transaction.atomic
def user_verify_email(*, token: str) -> User:
    """Mark the address verified. Using a valid link again changes nothing."""
    invalid = InvalidVerificationToken(items=[ErrorItem(InvalidVerificationToken.message, "token")])
    content = email_verification_token_read(token)
    if content is None:
        raise invalid
    user_id, digest = content
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None or not email_verification_matches(user, digest):
        raise invalid
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


@transaction.atomic
def user_resend_verification(*, user: User) -> None:
    """Send a new verification link; nothing is sent to an address already verified."""
    if not user.email_verified and user.is_active:
        _schedule_verification_email(user)


# --- sessions (JWT) --------------------------------------------------------------------------


@transaction.atomic
def tokens_obtain(*, email: str, password: str) -> TokenPair:
    """Sign in. Unknown email, wrong password and suspended account fail the same way.

    Django's backend hashes the password even for an unknown email (no timing difference), and
    upgrades a hash made by an older hasher (bcrypt, PBKDF2) to Argon2 on success.
    """
    user = authenticate(request=None, email=email, password=password)
    if not isinstance(user, User) or not user.is_active:
        raise InvalidCredentials
    # The row as it is now, locked: a password change, a reset or a suspension that committed
    # while the password was being checked wins (its blacklisting could not see this session).
    locked = User.objects.select_for_update().filter(pk=user.pk).first()
    if locked is None or locked.password != user.password or not locked.is_active:
        raise InvalidCredentials
    # For the console; it also voids any reset link sent before this login (Django's reset
    # tokens hash last_login).
    locked.last_login = timezone.now()
    locked.save(update_fields=["last_login"])
    return token_pair_for(locked)


def tokens_refresh(*, refresh: str) -> TokenPair:
    """Rotate a refresh token: the old one is blacklisted, a new pair with fresh claims returned.

    The user's row is locked, so a refresh racing a suspension or a password change either
    finishes before it (and its new token is then blacklisted) or sees its outcome. Presenting
    the same refresh token twice, even concurrently, succeeds once.

    A token that was already rotated, presented again, is a replay: someone else holds a copy.
    Then every refresh token of the user is blacklisted and the session generation bumped (all
    access tokens end), so the thief's chain and the owner's both end; the owner signs in again.
    That is committed before the 401. (A token blacklisted by a logout, a password change or a
    suspension is only refused: presenting it again is no sign of theft.)
    """
    pair, replayed_by = _tokens_rotate(refresh)
    if pair is not None:
        return pair
    if replayed_by is not None:
        security.security_event(security.REFRESH_TOKEN_REUSED, user=replayed_by)
    raise InvalidRefreshToken


@transaction.atomic
def _tokens_rotate(refresh: str) -> tuple[TokenPair | None, User | None]:
    """(the new pair, None) or, refused, (None, the user whose sessions a replay ended, if so)."""
    try:
        # The signature and expiry, then simplejwt's checks but its blacklist one: whether the
        # token was used is decided below, under the lock, where a replay can be told apart.
        token_backend.decode(refresh, verify=True)  # type: ignore[arg-type]
        token = ShopRefreshToken(refresh, verify=False)  # type: ignore[arg-type]
        Token.verify(token)
    except (TokenBackendError, TokenError):
        raise InvalidRefreshToken from None
    user = User.objects.select_for_update().filter(pk=token.get(api_settings.USER_ID_CLAIM)).first()
    if user is None or not user.is_active:
        raise InvalidRefreshToken
    jti = token[api_settings.JTI_CLAIM]
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token[api_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "token": refresh,
            "created_at": datetime_from_epoch(token["iat"]) if "iat" in token else None,
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if created:
        return token_pair_for(user, rotated_from=jti), None
    if not _was_rotated(user=user, jti=jti, since=outstanding.created_at):
        return None, None
    tokens_blacklist_for_user(user=user)
    _end_access_tokens(user)
    return None, user


def _was_rotated(*, user: User, jti: str, since: datetime | None) -> bool:
    """Whether a refresh token was made by rotating the token `jti` (its `rotated_from`).

    Only the user's tokens made since that one are read (a few per active day); this runs only
    when a blacklisted token is presented again."""
    candidates = OutstandingToken.objects.filter(user=user).exclude(jti=jti)
    if since is not None:
        candidates = candidates.filter(created_at__gte=since - timedelta(seconds=1))
    for stored in candidates.values_list("token", flat=True).iterator():
        try:
            payload = token_backend.decode(stored, verify=False)  # type: ignore[arg-type]
        except TokenBackendError:
            continue
        if payload.get(ROTATED_FROM_CLAIM) == jti:
            return True
    return False


@transaction.atomic
def tokens_logout(*, user: User, refresh: str) -> None:
    """End a session: blacklist one of the user's refresh tokens and end the access tokens.

    Access tokens are ended by the user's session generation, which covers every session: the
    user's other sessions keep their refresh tokens and continue by refreshing (one 401, then a
    new pair). Logging out twice is harmless.
    """
    rejected = LogoutTokenRejected(items=[ErrorItem(LogoutTokenRejected.message, "refresh")])
    try:
        payload = token_backend.decode(refresh, verify=True)  # type: ignore[arg-type]
    except TokenBackendError:
        raise rejected from None
    if (
        payload.get(api_settings.TOKEN_TYPE_CLAIM) != "refresh"
        or str(payload.get(api_settings.USER_ID_CLAIM)) != str(user.pk)
        or api_settings.JTI_CLAIM not in payload
    ):
        raise rejected
    locked = _lock(user)
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=payload[api_settings.JTI_CLAIM],
        defaults={
            "user": locked,
            "token": refresh,
            "expires_at": datetime_from_epoch(payload["exp"]),
        },
    )
    BlacklistedToken.objects.get_or_create(token=outstanding)
    _end_access_tokens(locked, user=user)


@transaction.atomic
def tokens_blacklist_for_user(*, user: User, except_jti: str | None = None) -> int:
    """Blacklist every live refresh token of the user (but `except_jti`); returns how many."""
    live = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    if except_jti:
        live = live.exclude(jti=except_jti)
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in live.only("id")], ignore_conflicts=True
    )
    return len(created)


@transaction.atomic
def tokens_flush_expired() -> int:
    """Delete expired refresh tokens (their blacklist rows go with them); returns how many."""
    _, deleted = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted.get(OutstandingToken._meta.label, 0)


# --- passwords -------------------------------------------------------------------------------


@transaction.atomic
def user_change_password(
    *, user: User, old_password: str, new_password: str, current_refresh_jti: str | None = None
) -> None:
    """Change the password; every other session of the user ends at once.

    Other sessions: their refresh tokens are blacklisted, and every access token ends with the
    session generation. The caller's own session (the refresh token `current_refresh_jti`) is
    kept: its current access token ends too, and refreshing gives a pair of the new generation.
    """
    locked = _lock(user)
    if not locked.check_password(old_password):
        raise WrongPassword(items=[ErrorItem(WrongPassword.message, "old_password")])
    _password_validate(new_password, user=locked, attr="new_password")
    locked.set_password(new_password)
    locked.bump_session_generation()
    locked.save(update_fields=["password", "session_generation"])
    tokens_blacklist_for_user(user=locked, except_jti=current_refresh_jti)
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
    _schedule_password_reset_email(email)
    security.security_event(
        security.PASSWORD_RESET_REQUESTED, email_hash=security.email_hash(email)
    )


@transaction.atomic
def user_reset_password(*, uid: str, token: str, new_password: str) -> User:
    """Set a new password from a reset link; every session of the user ends.

    The link works once (its token hashes the current password) and for PASSWORD_RESET_TIMEOUT.
    Following it proves the address, so an unverified address becomes verified.
    """
    invalid = InvalidResetToken(items=[ErrorItem(InvalidResetToken.message, "token")])
    user_id = uid_decode(uid)
    user = (
        User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if user_id is not None
        else None
    )
    if user is None or not password_reset_tokens.check_token(user, token):
        raise invalid
    _password_validate(new_password, user=user, attr="new_password")
    user.set_password(new_password)
    user.bump_session_generation()
    fields = ["password", "session_generation"]
    if user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        fields.append("email_verified_at")
    user.save(update_fields=fields)
    tokens_blacklist_for_user(user=user)
    security.security_event(security.PASSWORD_RESET_COMPLETED, user=user, on_commit=True)
    return user


# --- profile and administration --------------------------------------------------------------


@transaction.atomic
def user_update_profile(
    *, user: User, first_name: str | None = None, last_name: str | None = None
) -> User:
    """What a user may change about themselves: their name. Nothing else."""
    fields = []
    if first_name is not None:
        user.first_name = first_name
        fields.append("first_name")
    if last_name is not None:
        user.last_name = last_name
        fields.append("last_name")
    if fields:
        user.save(update_fields=fields)
    return user


@transaction.atomic
def user_set_role(*, actor: User, user: User, role: str) -> User:
    """Only an admin sets roles, never their own. Group membership follows the role."""
    _require_admin(actor)
    if role not in User.Role.values:
        raise NotAllowed(f"Unknown role {role!r}.")
    if user.role == role:
        return user
    if actor.pk == user.pk:
        raise OwnAccountChange(items=[ErrorItem(OwnAccountChange.message, "role")])
    locked = _lock(user)
    previous = locked.role
    locked.role = role
    locked.save(update_fields=["role"])
    sync_role_groups(locked)
    user.role = role
    security.security_event(
        security.ROLE_CHANGED,
        user=locked,
        actor_id=actor.pk,
        old_role=previous,
        new_role=role,
        on_commit=True,
    )
    return user


@transaction.atomic
def user_suspend(*, actor: User, user: User) -> User:
    """Suspend at once: access tokens fail on the next request, refresh tokens are blacklisted."""
    _require_admin(actor)
    if actor.pk == user.pk:
        raise OwnAccountChange(items=[ErrorItem(OwnAccountChange.message, "is_active")])
    locked = _lock(user)
    was_active = locked.is_active
    locked.is_active = False
    locked.bump_session_generation()
    locked.save(update_fields=["is_active", "session_generation"])
    tokens_blacklist_for_user(user=locked)
    user.is_active = False
    user.session_generation = locked.session_generation
    if was_active:
        security.security_event(
            security.ACCOUNT_SUSPENDED, user=locked, actor_id=actor.pk, on_commit=True
        )
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User) -> User:
    """Lift a suspension. The user signs in again (old sessions stay ended)."""
    _require_admin(actor)
    locked = _lock(user)
    if not locked.is_active:
        locked.is_active = True
        locked.save(update_fields=["is_active"])
        security.security_event(
            security.ACCOUNT_REACTIVATED, user=locked, actor_id=actor.pk, on_commit=True
        )
    user.is_active = True
    return user


@transaction.atomic
def user_update_by_admin(
    *,
    actor: User,
    user: User,
    role: str | None = None,
    is_active: bool | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """An admin's edit of another user (role, suspension, name), all or nothing."""
    _require_admin(actor)
    if role is not None:
        user_set_role(actor=actor, user=user, role=role)
    if is_active is False:
        user_suspend(actor=actor, user=user)
    elif is_active is True:
        user_reactivate(actor=actor, user=user)
    return user_update_profile(user=user, first_name=first_name, last_name=last_name)


@transaction.atomic
def user_create_by_admin(
    *, actor: User, email: str, first_name: str = "", last_name: str = "", role: str = "customer"
) -> User:
    """An account made in the console from an email alone; its owner sets a password by email."""
    _require_admin(actor)
    user = user_create(
        email=email, password=None, first_name=first_name, last_name=last_name, role=role
    )
    _schedule_password_reset_email(user.email)
    return user
