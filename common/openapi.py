"""OpenAPI helpers: document the domain errors an endpoint can answer, in the one error shape."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drf_spectacular.utils import OpenApiResponse
from drf_standardized_errors.openapi_serializers import ClientErrorEnum, ServerErrorEnum
from rest_framework import serializers

from .exceptions import DomainError


class DomainErrorItemSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class DomainErrorResponseSerializer(serializers.Serializer[dict[str, Any]]):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = DomainErrorItemSerializer(many=True)  # type: ignore[assignment]


def domain_error_responses(*errors: type[DomainError]) -> dict[int, OpenApiResponse]:
    """`responses=` entries for `extend_schema`: one per status, listing the possible codes."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for error in errors:
        by_status[error.status_code].append(error.code)
    return {
        status: OpenApiResponse(
            response=DomainErrorResponseSerializer,
            description="Error codes: " + ", ".join(f"`{code}`" for code in codes),
        )
        for status, codes in sorted(by_status.items())
    }


class RequestTooLargeResponseSerializer(serializers.Serializer[dict[str, Any]]):
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (code `request_too_large`)."""

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = DomainErrorItemSerializer(many=True)  # type: ignore[assignment]


class ServiceUnavailableResponseSerializer(serializers.Serializer[dict[str, Any]]):
    """503 with `Retry-After`: the database is briefly unreachable (code `service_unavailable`)."""

    type = serializers.ChoiceField(choices=ServerErrorEnum.choices)
    errors = DomainErrorItemSerializer(many=True)  # type: ignore[assignment]
