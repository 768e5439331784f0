"""Input and output serializers of the accounts API (module-level, unique names).

Input serializers are strict: a field they do not accept (`role`, `is_staff`, `email_verified`...)
is a 400 naming that field, not silently dropped, so an escalation attempt is visibly refused (the
schema says so: `additionalProperties: false`, common/openapi.py), and each value must have its
documented JSON type (common/parsers.py, `JSONInputSerializer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from common.parsers import JSONInputSerializer

from ..models import User


class StrictInputSerializer(JSONInputSerializer):
    reject_unknown_fields = True  # documented by common.openapi.AutoSchema

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            serializers.ErrorDetail(
                                "This field cannot be set here.", code="not_allowed"
                            )
                        ]
                        for name in unknown
                    }
                )
        result: dict[str, Any] = super().to_internal_value(data)
        return result


def _password_field() -> serializers.CharField:
    return serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=128, style={"input_type": "password"}
    )


# --- output ----------------------------------------------------------------------------------


class UserProfileOutputSerializer(serializers.ModelSerializer[User]):
    email_verified = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = ("id", "email", "first_name", "last_name", "role", "email_verified", "date_joined")
        read_only_fields = fields


class UserAdminOutputSerializer(serializers.ModelSerializer[User]):
    email_verified = serializers.BooleanField(read_only=True)

    class Meta:
        model = User
        fields = (
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "is_active",
            "email_verified",
            "email_verified_at",
            "date_joined",
            "last_login",
        )
        read_only_fields = fields


class TokenPairOutputSerializer(serializers.Serializer[dict[str, Any]]):
    access = serializers.CharField(help_text="Access JWT (15 minutes): `Authorization: Bearer …`.")
    refresh = serializers.CharField(help_text="Refresh JWT (7 days), single use: rotated.")


class DetailOutputSerializer(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField()


class RegistrationAcceptedOutputSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.EmailField(help_text="The address, as it will be stored.")
    detail = serializers.CharField()


# --- input -----------------------------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Register",
            value={
                "email": "ada@example.com",
                "password": "correct-horse-battery-staple",
                "first_name": "Ada",
                "last_name": "Lovelace",
            },
            request_only=True,
        )
    ]
)
class RegisterInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    password = _password_field()
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class VerifyEmailInputSerializer(StrictInputSerializer):
    token = serializers.CharField(max_length=512)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Sign in",
            value={"email": "ada@example.com", "password": "correct-horse-battery-staple"},
            request_only=True,
        )
    ]
)
class TokenObtainInputSerializer(StrictInputSerializer):
    # A CharField, not an EmailField: any wrong login gets the same 401, malformed or not.
    email = serializers.CharField(max_length=254)
    password = _password_field()


class TokenRefreshInputSerializer(StrictInputSerializer):
    refresh = serializers.CharField(max_length=4096)


class LogoutInputSerializer(StrictInputSerializer):
    refresh = serializers.CharField(max_length=4096)


class PasswordChangeInputSerializer(StrictInputSerializer):
    old_password = _password_field()
    new_password = _password_field()


class PasswordResetInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmInputSerializer(StrictInputSerializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = _password_field()


class ProfileUpdateInputSerializer(StrictInputSerializer):
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class UserAdminUpdateInputSerializer(StrictInputSerializer):
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)
    is_active = serializers.BooleanField(
        required=False, help_text="false suspends: the user's tokens stop working at once."
    )
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
