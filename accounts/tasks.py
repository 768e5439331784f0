"""Account emails and token housekeeping.

Each email task loads the user and makes the link's token itself, so tokens never travel
through the broker or sit in the outbox; the outbox retries an SMTP failure with backoff.

No account email shows anything a stranger typed. Anyone can register with someone else's
address and a name such as "Click http://evil", or ask for a reset of any address: these emails
go to the owner of the address, so they greet nobody by the account's name and carry only our
own links.
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
    context = {"link": link, "hours": hours}
    render_email(template="verify_email", to=[user.email], context=context).send()


@shared_task
def send_password_reset_email(*, email: str) -> None:
    """Send a reset link if an active account has this address; otherwise nothing at all."""
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    if user is None:
        return
    context = {
        "link": _reset_link(user),
        "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        "new_account": not user.has_usable_password(),
    }
    render_email(template="password_reset", to=[user.email], context=context).send()


@shared_task
def send_account_exists_email(*, user_id: int) -> None:
    """Someone tried to register with the address of an existing (active) account: tell its
    owner, with a sign-in link and a reset link, instead of telling the one who tried."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    context = {
        "sign_in_link": f"{settings.FRONTEND_URL}/",
        "link": _reset_link(user),
        "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
    }
    render_email(template="account_exists", to=[user.email], context=context).send()


def _reset_link(user: User) -> str:
    token = password_reset_tokens.make_token(user)
    return _link("reset-password", uid=uid_encode(user), token=token)


@shared_task
def flush_expired_tokens() -> int:
    """Daily (beat): forget refresh tokens past their expiry, blacklisted or not."""
    from .services import tokens_flush_expired  # services import this module

    return tokens_flush_expired()
