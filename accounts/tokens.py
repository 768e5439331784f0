"""Tokens: the JWT pair with our claims, signed email-verification tokens, password-reset tokens.

- Access tokens carry `role` and `email_verified` (for clients; permissions still read the
  database user, except that catalog GETs take a `customer` role at its word:
  inventory/api/authentication.py) and `refresh_jti`, the id of the refresh token minted with
  them, so that a password change can keep the caller's own session and end every other one.
- Both tokens of a pair carry the user's `session_generation` (accounts/sessions.py): bumping it
  ends every access token made before at once.
- A refresh token made by rotating another carries `rotated_from`, the jti of that one, so that a
  rotated token presented again (a replay) can be told from one merely logged out.
- An email-verification token is a signed, timestamped `[user id, email digest]`: it expires
  after `EMAIL_VERIFICATION_MAX_AGE` and stops working if the address changes. It does not show
  the address in clear (links end up in logs).
- Password-reset tokens are Django's: single use (they hash the password) and expiring after
  `PASSWORD_RESET_TIMEOUT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, BlacklistMixin, RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from .models import User
from .sessions import SESSION_GENERATION_CLAIM

REFRESH_JTI_CLAIM = "refresh_jti"
ROTATED_FROM_CLAIM = "rotated_from"


class ShopRefreshToken(RefreshToken):
    """A refresh token whose access tokens carry the user's role, verification state and
    session generation."""

    @classmethod
    def for_user(cls, user: Any, *, rotated_from: str | None = None) -> ShopRefreshToken:
        """simplejwt's token for the user with our claims, recorded as outstanding with all of
        them (simplejwt's own `for_user` records it before the claims are added)."""
        token = super(BlacklistMixin, cls).for_user(user)
        token["role"] = user.role
        token["email_verified"] = user.email_verified
        token[SESSION_GENERATION_CLAIM] = user.session_generation
        if rotated_from:
            token[ROTATED_FROM_CLAIM] = rotated_from
        OutstandingToken.objects.create(
            user=user,
            jti=token[api_settings.JTI_CLAIM],
            token=str(token),
            created_at=token.current_time,
            expires_at=datetime_from_epoch(token["exp"]),
        )
        return token

    @property
    def access_token(self) -> AccessToken:
        access = super().access_token
        access.payload.pop(ROTATED_FROM_CLAIM, None)  # the refresh token's lineage only
        access[REFRESH_JTI_CLAIM] = self[api_settings.JTI_CLAIM]
        return access


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def token_pair_for(user: User, *, rotated_from: str | None = None) -> TokenPair:
    """A new pair for `user` as the row is now (role, verification, session generation);
    `rotated_from` is the jti of the refresh token this pair replaces."""
    refresh = ShopRefreshToken.for_user(user, rotated_from=rotated_from)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


# --- email verification ---------------------------------------------------------------------

EMAIL_VERIFICATION_SALT = "accounts.email-verification"


def _email_digest(email: str) -> str:
    return salted_hmac(EMAIL_VERIFICATION_SALT, email.lower()).hexdigest()[:20]


def email_verification_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=EMAIL_VERIFICATION_SALT)


def email_verification_token_make(
    user: User, *, signer: signing.TimestampSigner | None = None
) -> str:
    signer = signer or email_verification_signer()
    return signer.sign_object([user.pk, _email_digest(user.email)], compress=False)


def email_verification_token_read(token: str) -> tuple[int, str] | None:
    """The (user id, email digest) of a valid, unexpired token; None otherwise."""
    try:
        user_id, digest = email_verification_signer().unsign_object(
            token, max_age=settings.EMAIL_VERIFICATION_MAX_AGE
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or not isinstance(digest, str):
        return None
    return user_id, digest


def email_verification_matches(user: User, digest: str) -> bool:
    return constant_time_compare(_email_digest(user.email), digest)


# --- password reset --------------------------------------------------------------------------

password_reset_tokens: PasswordResetTokenGenerator = default_token_generator


def uid_encode(user: User) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def uid_decode(uid: str) -> int | None:
    try:
        return int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, OverflowError):
        return None
