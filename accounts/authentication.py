"""JWT authentication that honours suspension at once and fails in the one error shape."""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Field
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from .models import User
from .sessions import _check_session


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's authentication, refusing a suspended user's still-unexpired access tokens.

    The check reads the user row simplejwt already loads for every request, so it adds no query.
    It does not depend on the `CHECK_USER_IS_ACTIVE` setting: suspension must work whatever that
    says. (Catalog GETs with a customer's token skip the row altogether, and with it this check:
    inventory/api/authentication.py says why that is safe there and nowhere else.)

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
        """simplejwt's `get_user` (one query by the token's user id), with the statement built
        once per process rather than by the ORM on every request."""
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError:
            raise InvalidToken(_("Token contained no recognizable user identification")) from None
        user = _user_by_id(user_id)
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive.", code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                _("The user's password has been changed."), code="password_changed"
            )
        _check_session(user, validated_token)
        return user


def _user_id_field() -> Field[Any, Any]:
    field = User._meta.get_field(api_settings.USER_ID_FIELD)
    assert isinstance(field, Field)
    return field


@functools.cache
def _user_select() -> tuple[str, list[str]]:
    """`SELECT <every column> FROM accounts_user WHERE <USER_ID_FIELD> = %s`, as the ORM would."""
    meta = User._meta
    fields = meta.concrete_fields
    key = _user_id_field()
    table = meta.db_table
    columns = ", ".join(f'"{table}"."{field.column}"' for field in fields)
    sql = f'SELECT {columns} FROM "{table}" WHERE "{table}"."{key.column}" = %s'  # noqa: S608
    return sql, [field.attname for field in fields]


def _user_by_id(user_id: Any) -> User | None:
    try:
        value = _user_id_field().to_python(user_id)
    except ValidationError:
        return None
    sql, attnames = _user_select()
    alias = User.objects.db
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return None if row is None else User.from_db(alias, attnames, row)
