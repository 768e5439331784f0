"""JWT sessions: sign in, refresh (rotation, replay detection), logout, and ending them all.

A session is a refresh token and the access tokens made from it. Two levers end sessions: the
blacklist (a refresh token) and the user's session generation (every access token made before it
moved on, accounts/sessions.py). Both are moved on the user's row locked (`user_lock`), so a
refresh racing a logout, a password change or a suspension either finishes first or sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from .. import security
from ..exceptions import InvalidCredentials, InvalidRefreshToken, LogoutTokenRejected
from ..models import User
from ..tokens import ROTATED_FROM_CLAIM, ShopRefreshToken, TokenPair, token_pair_for


def user_lock(user: User) -> User:
    """The user's row, locked until the transaction ends (serialises session changes)."""
    return User.objects.select_for_update().get(pk=user.pk)


def _end_access_tokens(locked: User, *, changed: Sequence[str] = ()) -> None:
    """Move the session generation of a locked row on (and save the `changed` fields with it):
    every access token made before is refused on its next request."""
    locked.bump_session_generation()
    locked.save(update_fields=[*changed, "session_generation"])


def sessions_end(locked: User, *, changed: Sequence[str] = (), keep_jti: str | None = None) -> None:
    """End every session of a locked user at once, but the one of the refresh token `keep_jti`:
    every live refresh token blacklisted, every access token ended. `changed`: the fields of the
    row that changed with it (a password, `is_active`), saved in the same write."""
    _end_access_tokens(locked, changed=changed)
    tokens_blacklist_for_user(user=locked, except_jti=keep_jti)


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
    sessions_end(user)
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
    try:
        payload = token_backend.decode(refresh, verify=True)  # type: ignore[arg-type]
    except TokenBackendError:
        raise LogoutTokenRejected from None
    if (
        payload.get(api_settings.TOKEN_TYPE_CLAIM) != "refresh"
        or str(payload.get(api_settings.USER_ID_CLAIM)) != str(user.pk)
        or api_settings.JTI_CLAIM not in payload
    ):
        raise LogoutTokenRejected
    locked = user_lock(user)
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=payload[api_settings.JTI_CLAIM],
        defaults={
            "user": locked,
            "token": refresh,
            "expires_at": datetime_from_epoch(payload["exp"]),
        },
    )
    BlacklistedToken.objects.get_or_create(token=outstanding)
    _end_access_tokens(locked)
    user.session_generation = locked.session_generation


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
