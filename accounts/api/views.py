"""Accounts endpoints: thin views (validate → one service or selector call → serialize)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, cast

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from common.openapi import domain_error_responses
from common.text import prose

from .. import security, selectors, services
from ..exceptions import (
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
from ..models import User
from ..permissions import IsAdmin
from ..throttles import (
    LoginFailureLimit,
    PasswordResetEmailThrottle,
    PasswordResetIPThrottle,
    RegisterEmailThrottle,
    RegisterIPThrottle,
    VerifyResendEmailThrottle,
    VerifyResendIPThrottle,
)
from ..tokens import REFRESH_JTI_CLAIM
from .filters import UserFilter
from .serializers import (
    DetailOutputSerializer,
    LogoutInputSerializer,
    PasswordChangeInputSerializer,
    PasswordResetConfirmInputSerializer,
    PasswordResetInputSerializer,
    ProfileUpdateInputSerializer,
    RegisterInputSerializer,
    RegistrationAcceptedOutputSerializer,
    TokenObtainInputSerializer,
    TokenPairOutputSerializer,
    TokenRefreshInputSerializer,
    UserAdminOutputSerializer,
    UserAdminUpdateInputSerializer,
    UserProfileOutputSerializer,
    VerifyEmailInputSerializer,
)

ACCEPTED = "Accepted: queued."
REGISTRATION_ACCEPTED = "Check your inbox: we sent a message to this address to continue."


def _valid(serializer_class: type[BaseSerializer[Any]], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return cast(dict[str, Any], serializer.validated_data)


class _ClientContextMixin:
    # Security events logged by the services during the request carry the client's address
    # (accounts/security.py). A comment, not a docstring: drf-spectacular would publish a
    # docstring as the description of every operation without its own.

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with security.client_context(request):
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


# drf-spectacular describes an operation that has no description of its own with the nearest
# class docstring: one here would change the schema.
class _AccountsView(_ClientContextMixin, APIView):
    permission_classes: Sequence[type[BasePermission]] = (IsAuthenticated,)  # `_PublicView`: anyone


class _PublicView(_AccountsView):
    # Anyone may call it; a stale `Authorization` header is ignored rather than refused.
    # (A comment: drf-spectacular would publish a docstring as the operations' description.)

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            # A 401 names the scheme to use (RFC 9110), also for bad credentials or tokens.
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


class RegisterView(_PublicView):
    throttle_classes = (RegisterIPThrottle, RegisterEmailThrottle)

    @extend_schema(
        summary="Create a customer account",
        description=prose("""
            202 `{email, detail}` for a new address and for one that already has an account alike
            (same status, body and timing: the answer does not tell whether an account exists). A
            new address gets a verification email; the owner of an existing one is told that someone
            tried to sign up with it, with a sign-in and a reset link. A weak password or a
            malformed email is a 400. Throttled by IP and by email.
        """),
        request=RegisterInputSerializer,
        responses={
            202: RegistrationAcceptedOutputSerializer,
            **domain_error_responses(InvalidPassword),
        },
    )
    def post(self, request: Request) -> Response:
        email = services.user_register(**_valid(RegisterInputSerializer, request))
        body = {"email": email, "detail": REGISTRATION_ACCEPTED}
        return Response(
            RegistrationAcceptedOutputSerializer(body).data, status=status.HTTP_202_ACCEPTED
        )


class VerifyEmailView(_PublicView):
    @extend_schema(
        summary="Confirm an email address with the token from the link",
        request=VerifyEmailInputSerializer,
        responses={
            200: UserProfileOutputSerializer,
            **domain_error_responses(InvalidVerificationToken),
        },
    )
    def post(self, request: Request) -> Response:
        user = services.user_verify_email(**_valid(VerifyEmailInputSerializer, request))
        return Response(UserProfileOutputSerializer(user).data)


class VerifyEmailResendView(_AccountsView):
    throttle_classes = (VerifyResendIPThrottle, VerifyResendEmailThrottle)

    @extend_schema(
        summary="Send a new verification link to the signed-in user",
        description="Nothing is sent when the address is already verified. Throttled.",
        request=None,
        responses={202: DetailOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        services.user_resend_verification(user=cast(User, request.user))
        return Response({"detail": ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class TokenObtainView(_PublicView):
    @extend_schema(
        summary="Sign in: an access and a refresh token",
        description=prose("""
            Wrong email, wrong password and suspended account all answer the same 401. Failed
            sign-ins are limited per client address (`THROTTLE_LOGIN`) and per (address, email):
            over either limit, 429 with `Retry-After`. Failures for an email from other addresses
            never block a right password from an address that has not been failing.
        """),
        request=TokenObtainInputSerializer,
        responses={200: TokenPairOutputSerializer, **domain_error_responses(InvalidCredentials)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(TokenObtainInputSerializer, request)
        email_hash = security.email_hash(data["email"])
        address = security.client_ip(request) or ""
        try:
            attempt = LoginFailureLimit().begin(address=address, email=data["email"])
        except Throttled:
            security.security_event(
                security.LOGIN_THROTTLED, request=request, email_hash=email_hash
            )
            raise
        try:
            pair = services.tokens_obtain(**data)
        except InvalidCredentials:
            attempt.failed()
            security.security_event(security.LOGIN_FAILED, request=request, email_hash=email_hash)
            raise
        attempt.succeeded()
        return Response(TokenPairOutputSerializer(asdict(pair)).data)


class TokenRefreshView(_PublicView):
    @extend_schema(
        summary="Rotate a refresh token: a new pair; the old refresh stops working",
        description=prose("""
            A refresh token that was already rotated, presented again (a replay: someone else holds
            a copy), is a 401 and ends every session of the user: all their refresh tokens are
            blacklisted and their access tokens end. The owner signs in again.
        """),
        request=TokenRefreshInputSerializer,
        responses={200: TokenPairOutputSerializer, **domain_error_responses(InvalidRefreshToken)},
    )
    def post(self, request: Request) -> Response:
        pair = services.tokens_refresh(**_valid(TokenRefreshInputSerializer, request))
        return Response(TokenPairOutputSerializer(asdict(pair)).data)


class LogoutView(_AccountsView):
    @extend_schema(
        summary="Sign out: the given refresh token and the access tokens stop working",
        description=prose("""
            That refresh token is blacklisted and the user's session generation moves on: every
            access token of the user answers 401 on its next request. The user's other sessions keep
            their refresh tokens and go on after one refresh.
        """),
        request=LogoutInputSerializer,
        responses={204: None, **domain_error_responses(LogoutTokenRejected)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(LogoutInputSerializer, request)
        services.tokens_logout(user=cast(User, request.user), **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(_AccountsView):
    @extend_schema(
        summary="Change the password; every other session of the user ends",
        description=prose("""
            Every other session's refresh and access tokens answer 401 at once. This session keeps
            its refresh token; its access token ends too: refresh to go on.
        """),
        request=PasswordChangeInputSerializer,
        responses={204: None, **domain_error_responses(WrongPassword, InvalidPassword)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(PasswordChangeInputSerializer, request)
        token = request.auth
        current = token.get(REFRESH_JTI_CLAIM) if token is not None else None  # type: ignore[union-attr]
        services.user_change_password(
            user=cast(User, request.user), current_refresh_jti=current, **data
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetView(_PublicView):
    throttle_classes = (PasswordResetIPThrottle, PasswordResetEmailThrottle)

    @extend_schema(
        summary="Email a password reset link",
        description="Answers 202 whether or not an account has this address. Throttled.",
        request=PasswordResetInputSerializer,
        responses={202: DetailOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        services.user_request_password_reset(**_valid(PasswordResetInputSerializer, request))
        return Response({"detail": ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(_PublicView):
    @extend_schema(
        summary="Set a new password from a reset link; every session of the user ends",
        request=PasswordResetConfirmInputSerializer,
        responses={204: None, **domain_error_responses(InvalidResetToken, InvalidPassword)},
    )
    def post(self, request: Request) -> Response:
        services.user_reset_password(**_valid(PasswordResetConfirmInputSerializer, request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(_AccountsView):
    @extend_schema(summary="Your profile", responses=UserProfileOutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserProfileOutputSerializer(cast(User, request.user)).data)

    @extend_schema(
        summary="Change your name",
        description="Only `first_name` and `last_name`; any other field is a 400.",
        request=ProfileUpdateInputSerializer,
        responses=UserProfileOutputSerializer,
    )
    def patch(self, request: Request) -> Response:
        data = _valid(ProfileUpdateInputSerializer, request)
        user = services.user_update_profile(user=cast(User, request.user), **data)
        return Response(UserProfileOutputSerializer(user).data)


@extend_schema_view(
    list=extend_schema(summary="Users (admin)", description="Filter and search; oldest first."),
    retrieve=extend_schema(summary="A user (admin)"),
    partial_update=extend_schema(
        summary="Change a user's role, suspension or name (admin)",
        description=prose("""
            `is_active: false` suspends: the user's access tokens fail on their next request and
            their refresh tokens are blacklisted. Admins cannot change their own role or suspend
            themselves.
        """),
        request=UserAdminUpdateInputSerializer,
        responses={
            200: UserAdminOutputSerializer,
            **domain_error_responses(NotAllowed, OwnAccountChange),
        },
    ),
)
class UserViewSet(
    _ClientContextMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[User],
):
    permission_classes = (IsAdmin,)
    serializer_class = UserAdminOutputSerializer
    filterset_class = UserFilter
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self) -> Any:
        return selectors.user_list()

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(UserAdminUpdateInputSerializer, request)
        user = services.user_update_by_admin(
            actor=cast(User, request.user), user=self.get_object(), **data
        )
        return Response(UserAdminOutputSerializer(user).data)
