"""Tokens: the JWT pair with our claims, signed email-verification tokens, password-reset tokens.

- Access tokens carry `role` and `email_verified` (for clients; permissions still read the
  database user) and `refresh_jti`, the id of the refresh token minted with them, so that a
  password change can keep the caller's own session and end every other one.
- An email-verification token is a signed, timestamped `[user id, email digest]`: it expires
  after `EMAIL_VERIFICATION_MAX_AGE` and stops working if the address changes. It does not show
  the address in clear (links end up in logs).
- Password-reset tokens are Django's: single use (they hash the password) and expiring after
  `PASSWORD_RESET_TIMEOUT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from .models import User

REFRESH_JTI_CLAIM = "refresh_jti"


class ShopRefreshToken(RefreshToken):
    """A refresh token whose access tokens carry the user's role and verification state."""

    @classmethod
    def for_user(cls, user: Any) -> ShopRefreshToken:
        token = cast(ShopRefreshToken, super().for_user(user))
        token["role"] = user.role
        token["email_verified"] = user.email_verified
        return token

    @property
    def access_token(self) -> AccessToken:
        access = super().access_token
        access[REFRESH_JTI_CLAIM] = self[api_settings.JTI_CLAIM]
        return access


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def token_pair_for(user: User) -> TokenPair:
    refresh = ShopRefreshToken.for_user(user)
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
