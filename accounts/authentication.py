"""JWT authentication that honours suspension at once and fails in the one error shape."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.tokens import Token


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's authentication, refusing a suspended user's still-unexpired access tokens.

    The check reads the user row simplejwt already loads for every request, so it adds no query
    (the catalog benchmark holds JWT reads to within 10% of anonymous ones). It does not depend
    on the `CHECK_USER_IS_ACTIVE` setting: suspension must work whatever that says.

    simplejwt's own errors carry a dict (`detail`, `code`, `messages`) that would render as
    several error entries; they are re-raised as one `{"code", "detail"}`, e.g.
    `token_not_valid` or `user_inactive`.
    """

    def authenticate(self, request: Request) -> Any:
        try:
            return super().authenticate(request)
        except (InvalidToken, AuthenticationFailed) as error:
            detail: Any = error.detail
            message = (
                detail.get("detail", error.default_detail) if isinstance(detail, dict) else detail
            )
            code = detail.get("code", error.default_code) if isinstance(detail, dict) else None
            raise exceptions.AuthenticationFailed(
                str(message), code=str(code or "token_not_valid")
            ) from None

    def get_user(self, validated_token: Token) -> Any:
        user = super().get_user(validated_token)
        if not user.is_active:
            raise AuthenticationFailed("User is inactive.", code="user_inactive")
        return user
