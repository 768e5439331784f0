"""Account emails and token housekeeping.

Each email task loads the user and makes the link's token itself, so tokens never travel
through the broker or sit in the outbox; the outbox retries an SMTP failure with backoff.
"""

from __future__ import annotations

from urllib.parse import urlencode

from celery import shared_task
from django.conf import settings

from common.emails import render_email

from .models import User
from .tokens import email_verification_token_make, password_reset_tokens, uid_encode


def _link(path: str, **query: str) -> str:
    return f"{settings.FRONTEND_URL}/{path}?{urlencode(query)}"


@shared_task
def send_verification_email(*, user_id: int) -> None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or user.email_verified:
        return
    link = _link("verify-email", token=email_verification_token_make(user))
    hours = int(settings.EMAIL_VERIFICATION_MAX_AGE.total_seconds() // 3600)
    context = {"first_name": user.first_name, "link": link, "hours": hours}
    render_email(template="verify_email", to=[user.email], context=context).send()


@shared_task
def send_password_reset_email(*, email: str) -> None:
    """Send a reset link if an active account has this address; otherwise nothing at all."""
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        return
    token = password_reset_tokens.make_token(user)
    link = _link("reset-password", uid=uid_encode(user), token=token)
    context = {
        "first_name": user.first_name,
        "link": link,
        "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        "new_account": not user.has_usable_password(),
    }
    render_email(template="password_reset", to=[user.email], context=context).send()


@shared_task
def flush_expired_tokens() -> int:
    """Daily (beat): forget refresh tokens past their expiry, blacklisted or not."""
    from .services import tokens_flush_expired  # services import this module

    return tokens_flush_expired()
