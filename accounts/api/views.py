"""Accounts endpoints: thin views (validate → one service or selector call → serialize)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from common.openapi import domain_error_responses

from .. import selectors, services
from ..exceptions import (
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
from ..models import User
from ..permissions import IsAdmin
from ..throttles import (
    LoginEmailThrottle,
    LoginIPThrottle,
    PasswordResetEmailThrottle,
    PasswordResetIPThrottle,
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
    TokenObtainInputSerializer,
    TokenPairOutputSerializer,
    TokenRefreshInputSerializer,
    UserAdminOutputSerializer,
    UserAdminUpdateInputSerializer,
    UserProfileOutputSerializer,
    VerifyEmailInputSerializer,
)

TAG = ["auth"]
ACCEPTED = "Accepted: queued."


def _valid(serializer_class: type[BaseSerializer[Any]], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return cast(dict[str, Any], serializer.validated_data)


class _PublicView(APIView):
    """Anyone may call it; a stale `Authorization` header is ignored rather than refused."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            # A 401 names the scheme to use (RFC 9110), also for bad credentials or tokens.
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


class RegisterView(_PublicView):
    throttle_classes = (RegisterIPThrottle,)

    @extend_schema(
        tags=TAG,
        summary="Create a customer account",
        description="Sends a verification email. Throttled by IP.",
        request=RegisterInputSerializer,
        responses={
            201: UserProfileOutputSerializer,
            **domain_error_responses(EmailAlreadyRegistered, InvalidPassword),
        },
    )
    def post(self, request: Request) -> Response:
        user = services.user_register(**_valid(RegisterInputSerializer, request))
        return Response(UserProfileOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class VerifyEmailView(_PublicView):
    @extend_schema(
        tags=TAG,
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


class VerifyEmailResendView(APIView):
    permission_classes = (IsAuthenticated,)
    throttle_classes = (VerifyResendIPThrottle, VerifyResendEmailThrottle)

    @extend_schema(
        tags=TAG,
        summary="Send a new verification link to the signed-in user",
        description="Nothing is sent when the address is already verified. Throttled.",
        request=None,
        responses={202: DetailOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        services.user_resend_verification(user=cast(User, request.user))
        return Response({"detail": ACCEPTED}, status=status.HTTP_202_ACCEPTED)


class TokenObtainView(_PublicView):
    throttle_classes = (LoginIPThrottle, LoginEmailThrottle)

    @extend_schema(
        tags=TAG,
        summary="Sign in: an access and a refresh token",
        description=(
            "Wrong email, wrong password and suspended account all answer the same 401. "
            "Throttled by IP and by email."
        ),
        request=TokenObtainInputSerializer,
        responses={200: TokenPairOutputSerializer, **domain_error_responses(InvalidCredentials)},
    )
    def post(self, request: Request) -> Response:
        pair = services.tokens_obtain(**_valid(TokenObtainInputSerializer, request))
        return Response(TokenPairOutputSerializer(asdict(pair)).data)


class TokenRefreshView(_PublicView):
    @extend_schema(
        tags=TAG,
        summary="Rotate a refresh token: a new pair; the old refresh stops working",
        request=TokenRefreshInputSerializer,
        responses={200: TokenPairOutputSerializer, **domain_error_responses(InvalidRefreshToken)},
    )
    def post(self, request: Request) -> Response:
        pair = services.tokens_refresh(**_valid(TokenRefreshInputSerializer, request))
        return Response(TokenPairOutputSerializer(asdict(pair)).data)


class LogoutView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=TAG,
        summary="Sign out: the given refresh token stops working",
        request=LogoutInputSerializer,
        responses={204: None, **domain_error_responses(LogoutTokenRejected)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(LogoutInputSerializer, request)
        services.tokens_logout(user=cast(User, request.user), **data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=TAG,
        summary="Change the password; every other session of the user ends",
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
        tags=TAG,
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
        tags=TAG,
        summary="Set a new password from a reset link; every session of the user ends",
        request=PasswordResetConfirmInputSerializer,
        responses={204: None, **domain_error_responses(InvalidResetToken, InvalidPassword)},
    )
    def post(self, request: Request) -> Response:
        services.user_reset_password(**_valid(PasswordResetConfirmInputSerializer, request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(tags=["users"], summary="Your profile", responses=UserProfileOutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserProfileOutputSerializer(cast(User, request.user)).data)

    @extend_schema(
        tags=["users"],
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
        description=(
            "`is_active: false` suspends: the user's access tokens fail on their next request "
            "and their refresh tokens are blacklisted. Admins cannot change their own role or "
            "suspend themselves."
        ),
        request=UserAdminUpdateInputSerializer,
        responses={
            200: UserAdminOutputSerializer,
            **domain_error_responses(NotAllowed, OwnAccountChange),
        },
    ),
)
class UserViewSet(
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
