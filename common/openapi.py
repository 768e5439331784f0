"""OpenAPI: every operation documents the errors it really answers, in the one error shape.

`AutoSchema` is the schema class of every view (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]). It is
drf-standardized-errors' class, which adds the standard error responses to each operation, made
to say exactly what the exception handler (common/exceptions.py) renders; tests/test_schema_fuzz.py
holds every operation to it with Schemathesis:

- 400 is `validation_error` or `client_error` (a `oneOf` on `type`). A validation error lists,
  per field, the codes that field can raise: body fields, query parameters declared with a
  serializer (`extend_schema(parameters=[QuerySerializer])`), filters, the paginator's
  `page_size`; a nested object missing or null is an error on the object (`card`), the rest
  inside it (`card.non_field_errors`). An item with `attr: null` is a value the database refused
  (`invalid`, e.g. an id past its column). An input serializer that refuses unknown fields
  (`reject_unknown_fields = True`) documents `additionalProperties: false` and the `not_allowed`
  item naming such a field. List items are named `field.0`, `field.1`… (documented as a
  pattern). A client error is a `parse_error` (the body is not acceptable JSON), a `bad_request`
  (Django refused the request: too many fields) or one of the endpoint's domain codes.
- 401 lists every code the JWT authentication answers with (an expired or forged token, a
  malformed header, a suspended user…), not only DRF's two: `ErrorCode401Enum`.
- Domain errors (`domain_error_responses`): each status lists its codes
  (`<Operation><status>DomainErrorResponse`), merged with the codes the framework answers with at
  that status (403 `permission_denied`, 404 `not_found`…); a 5xx domain error (502
  `gateway_error`) is a `server_error`.
- Requests: a string DRF trims must hold a character that is not whitespace (`pattern`), and an
  optional query parameter may be empty (`allowEmptyValue`: `?status=` is no `status`). A field
  that takes less than its type says (a single currency, an integer other than 0, digits within
  a column's range) says so itself (`AmendedSchemaField`; `digits_at_most` writes such a range
  as a pattern).
- Security: an operation anyone may call (the catalog's reads: their permission lets an anonymous
  request through) documents the bearer token as optional.

Why it is over 500 lines: it is one schema class and the pieces it builds the error bodies from;
split, each half would need the other to be read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from django.contrib.auth.models import AnonymousUser
from django.core.validators import RegexValidator
from django.http import HttpRequest
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from drf_standardized_errors.handler import exception_handler as standardized_errors_handler
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from drf_standardized_errors.openapi_serializers import (
    ClientErrorEnum,
    ServerErrorEnum,
    ValidationErrorEnum,
)
from drf_standardized_errors.openapi_utils import (
    InputDataField,
    get_django_filter_backends,
    get_filter_forms,
    get_flat_serializer_fields,
    get_form_fields_with_error_codes,
    get_serializer_fields_with_error_codes,
)
from drf_standardized_errors.settings import package_settings
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings

from .exceptions import DomainError

# What the framework itself answers at each client-error status, whatever the endpoint.
AUTHENTICATION_ERROR_CODES = (
    "not_authenticated",  # no credentials (DRF)
    "authentication_failed",  # DRF's generic refusal
    # The JWT authentication (accounts/authentication.py, simplejwt underneath):
    "bad_authorization_header",  # `Authorization` not `Bearer <token>`
    "token_not_valid",  # expired, forged, of the wrong type, or of an ended session
    "user_not_found",
    "user_inactive",  # suspended
    "password_changed",
)
FRAMEWORK_ERROR_CODES: dict[int, tuple[str, ...]] = {
    # A body that is not acceptable JSON; a request Django refused (too many fields).
    400: ("parse_error", "bad_request"),
    401: AUTHENTICATION_ERROR_CODES,
    403: ("permission_denied",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    406: ("not_acceptable",),
    413: ("request_too_large",),
    415: ("unsupported_media_type",),
    429: ("throttled",),
}
# What a string must contain to survive DRF's trimming: one character that Python's `str.strip`
# keeps (its whitespace, listed here, is wider than a JSON Schema pattern's `\s`).
NOT_ONLY_WHITESPACE = (
    r"[^\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f"
    r"\u205f\u3000]"
)
# Values the database refused (common.exceptions: DataError, a model field's own validation).
UNATTRIBUTED_VALIDATION_CODES = ("invalid",)


class DomainErrorItemSerializer(serializers.Serializer[dict[str, Any]]):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class DomainErrorResponseSerializer(serializers.Serializer[dict[str, Any]]):
    """Any domain error: what a schema class other than `AutoSchema` shows."""

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = DomainErrorItemSerializer(many=True)  # type: ignore[assignment]


class DomainErrorsResponse(OpenApiResponse):
    """A response of `domain_error_responses`: the status's domain codes, which `AutoSchema`
    turns into that status's documented body."""

    def __init__(self, codes: Sequence[str]) -> None:
        self.codes = tuple(codes)
        super().__init__(
            response=DomainErrorResponseSerializer,
            description="Error codes: " + ", ".join(f"`{code}`" for code in self.codes),
        )


def domain_error_responses(*errors: type[DomainError]) -> dict[int, OpenApiResponse]:
    """`responses=` entries for `extend_schema`: one per status, listing the possible codes."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for error in errors:
        if error.code not in by_status[error.status_code]:
            by_status[error.status_code].append(error.code)
    return {status: DomainErrorsResponse(codes) for status, codes in sorted(by_status.items())}


class RequestTooLargeResponseSerializer(serializers.Serializer[dict[str, Any]]):
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (code `request_too_large`)."""

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = DomainErrorItemSerializer(many=True)  # type: ignore[assignment]


class ServiceUnavailableResponseSerializer(serializers.Serializer[dict[str, Any]]):
    """503 with `Retry-After`: the database is briefly unreachable (code `service_unavailable`)."""

    type = serializers.ChoiceField(choices=ServerErrorEnum.choices)
    errors = DomainErrorItemSerializer(many=True)  # type: ignore[assignment]


class AmendedSchemaField:
    """A serializer field mixin: the field refuses what its generated schema allows (a currency
    other than the store's, a zero), and `amend_schema` adds that to the schema, when it is made
    (`AutoSchema` calls it with what drf-spectacular generated)."""

    def amend_schema(self, schema: dict[str, Any], direction: str) -> dict[str, Any]:
        return schema


def digits_at_most(limit: int) -> str:
    """A regex (unanchored) for the numbers from 0 to `limit` in ASCII digits, leading zeros
    allowed: the digit strings whose `int()` is within a column's range, as a `pattern` can
    say it. `digits_at_most(250)` is `0*(?:[0-9]{1,2}|[0-1][0-9]{2}|2[0-4][0-9]|250)`."""
    digits = str(limit)
    alternatives = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    # As long as `limit`: its first digits, then a smaller digit, then any digits.
    for i, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - i - 1
            smaller = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            any_digits = {0: "", 1: "[0-9]"}.get(rest, f"[0-9]{{{rest}}}")
            alternatives.append(digits[:i] + smaller + any_digits)
    alternatives.append(digits)
    return f"0*(?:{'|'.join(alternatives)})"


# --- building blocks of the documented error bodies ---------------------------------------------


class _SchemaField(serializers.Field[Any, Any, Any, Any]):
    """A field documented by the JSON schema it is given (for what DRF's fields cannot say)."""

    def __init__(self, schema: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._spectacular_annotation = {"field": schema}


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


_SERIALIZERS: dict[str, Any] = {}


def _serializer(name: str, fields: Mapping[str, serializers.Field[Any, Any, Any, Any]]) -> Any:
    """A serializer class documented as the component `name`: one class per name, since the
    schema generator takes two classes of one name for a conflict (the fields of a name are
    always the same: the name carries the operation and the status)."""
    if name not in _SERIALIZERS:
        meta = type("Meta", (), {"ref_name": name})
        _SERIALIZERS[name] = type(
            f"{name}Serializer", (serializers.Serializer,), {**fields, "Meta": meta}
        )
    return _SERIALIZERS[name]


def _codes_field(codes: Iterable[str]) -> serializers.ChoiceField:
    choices = sorted(set(codes))
    return serializers.ChoiceField(choices=[(code, code) for code in choices])


def _placeholder_pattern(name: str) -> str | None:
    """A regex for an error `attr` such as `attr.INDEX` (list items, named `attr.0`…) or
    `metadata.KEY`, or None when the name has no placeholder."""
    separator: str = package_settings.NESTED_FIELD_SEPARATOR
    parts = name.split(separator)
    placeholders: dict[str, str] = {
        package_settings.LIST_INDEX_IN_API_SCHEMA: r"[0-9]+",
        package_settings.DICT_KEY_IN_API_SCHEMA: r"[^.]+",
    }
    if not any(part in placeholders for part in parts):
        return None
    pattern = re.escape(separator).join(placeholders.get(part, re.escape(part)) for part in parts)
    return f"^{pattern}$"


def _nested_fields_named_as_rendered(fields: list[InputDataField]) -> list[InputDataField]:
    """drf-standardized-errors files every error of a nested serializer field (`card`) under
    `card.non_field_errors`; DRF raises a missing or null one on the field itself (`attr:
    "card"`), and only the others (not an object, a cross-field rule) inside it."""
    separator = package_settings.NESTED_FIELD_SEPARATOR
    suffix = separator + api_settings.NON_FIELD_ERRORS_KEY
    result: list[InputDataField] = []
    for field in fields:
        if field.name.endswith(suffix) and isinstance(field.field, serializers.BaseSerializer):
            own = field.error_codes & {"required", "null"}
            if own:
                result.append(InputDataField(field.name.removesuffix(suffix), field.field, own))
            field = InputDataField(field.name, field.field, field.error_codes - own)
        if field.error_codes:
            result.append(field)
    return result


class AutoSchema(StandardizedErrorsAutoSchema):
    """See the module's doc."""

    # --- security --------------------------------------------------------------------------

    def get_auth(self) -> list[dict[str, Any]]:
        auths: list[dict[str, Any]] = super().get_auth()
        if auths and {} not in auths and self._anonymous_may_call():
            auths.append({})  # the token is optional
        return auths

    def _anonymous_may_call(self) -> bool:
        """Do the view's permissions let an anonymous request with this method through?"""
        django_request = HttpRequest()
        django_request.method = self.method
        request = Request(django_request)
        request.user = AnonymousUser()
        try:
            return all(
                permission.has_permission(request, self.view)
                for permission in self.view.get_permissions()
            )
        except Exception:  # noqa: BLE001 (a permission that needs a real request: not anonymous)
            return False

    # --- parameters ---------------------------------------------------------------------------

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_parameters()
        for parameter in parameters:
            if (
                parameter["in"] == "query"
                and not parameter.get("required")
                and parameter.get("schema", {}).get("type") != "array"
            ):
                # `?status=` is the same as no `status` (an empty item of a repeatable parameter,
                # `?attr=`, is an item, and judged as one).
                parameter["allowEmptyValue"] = True
        return parameters

    # --- request bodies ----------------------------------------------------------------------

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(  # type: ignore[no-untyped-call]
            field, direction, bypass_extensions=bypass_extensions
        )
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and field.trim_whitespace
            and not field.allow_blank
            and schema.get("type") == "string"
            and "enum" not in schema
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            # The value is trimmed first: one that is only whitespace is blank. (A field with a
            # pattern of its own is documented by that pattern.)
            schema["pattern"] = NOT_ONLY_WHITESPACE
        if isinstance(field, AmendedSchemaField):
            schema = field.amend_schema(schema, direction)
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(  # type: ignore[no-untyped-call]
            serializer, direction
        )
        if direction == "request" and getattr(serializer, "reject_unknown_fields", False):
            schema["additionalProperties"] = False
        return schema

    # --- responses ---------------------------------------------------------------------------

    def _get_response_for_code(
        self,
        serializer: Any,
        status_code: str,
        media_types: Any = None,
        direction: Literal["request", "response"] = "response",
    ) -> dict[str, Any]:
        if isinstance(serializer, DomainErrorsResponse):
            status = int(status_code)
            body = (
                self._get_http400_serializer()
                if status == 400
                else self._client_error_serializer(status, serializer.codes)
            )
            serializer = OpenApiResponse(response=body, description=serializer.description)
        response: dict[str, Any] = super()._get_response_for_code(  # type: ignore[no-untyped-call]
            serializer, status_code, media_types=media_types, direction=direction
        )
        return response

    def _domain_codes(self) -> dict[int, tuple[str, ...]]:
        """The domain error codes `domain_error_responses` lists for this operation, by status."""
        declared: Any = self.get_response_serializers()
        if not isinstance(declared, dict):
            return {}
        return {
            int(status): response.codes
            for status, response in declared.items()
            if isinstance(response, DomainErrorsResponse)
        }

    def _should_add_error_response(self, responses: dict[str, Any], status_code: str) -> bool:
        if (
            status_code == "400"
            and self.view.get_exception_handler() is standardized_errors_handler
        ):
            # Any request can be refused before the view runs (`bad_request`: too many fields).
            return "400" not in responses
        return bool(super()._should_add_error_response(responses, status_code))

    def _get_error_response_serializer(self, status_code: str) -> Any:
        if status_code == "401":
            # One component for every operation, its codes the enum `ErrorCode401Enum`.
            enum = ResolvedComponent(  # type: ignore[no-untyped-call]
                name="ErrorCode401Enum",
                type=ResolvedComponent.SCHEMA,
                object="ErrorCode401Enum",
                schema={"enum": sorted(AUTHENTICATION_ERROR_CODES), "type": "string"},
            )
            self.registry.register_on_missing(enum)
            return self._error_serializer("ErrorResponse401", 401, _SchemaField(enum.ref))
        return super()._get_error_response_serializer(status_code)

    def _client_error_serializer(
        self, status: int, codes: Iterable[str], *, component: str | None = None
    ) -> Any:
        """`{"type": "client_error" (a 5xx: "server_error"), "errors": [{code, detail, attr}]}`
        with the given domain codes and those the framework answers with at `status`."""
        operation = _camel(self.get_operation_id())
        return self._error_serializer(
            component or f"{operation}{status}DomainErrorResponse",
            status,
            _codes_field([*codes, *FRAMEWORK_ERROR_CODES.get(status, ())]),
        )

    @staticmethod
    def _error_serializer(
        name: str, status: int, code: serializers.Field[Any, Any, Any, Any]
    ) -> Any:
        error_type = ClientErrorEnum if status < 500 else ServerErrorEnum
        item = _serializer(
            f"{name}Item{package_settings.ERROR_COMPONENT_NAME_SUFFIX}",
            {
                "code": code,
                "detail": serializers.CharField(),
                "attr": serializers.CharField(allow_null=True),
            },
        )
        return _serializer(
            name,
            {
                "type": serializers.ChoiceField(choices=error_type.choices),
                "errors": item(many=True),
            },
        )

    def _get_http400_serializer(self) -> Any:
        operation = _camel(self.get_operation_id())
        variants: dict[str, Any] = {}
        if self._should_add_validation_error_response():
            variants[ValidationErrorEnum.VALIDATION_ERROR.value] = self._validation_error()
        variants[ClientErrorEnum.CLIENT_ERROR.value] = self._client_error_serializer(
            400, self._domain_codes().get(400, ()), component=f"{operation}ClientError"
        )
        return PolymorphicProxySerializer(
            component_name=f"{operation}ErrorResponse400",
            serializers=variants,
            resource_type_field_name="type",
        )

    # --- validation errors -------------------------------------------------------------------

    def _query_serializers(self) -> list[Any]:
        """Serializers that document (and validate) query parameters:
        `extend_schema(parameters=[QuerySerializer])`, and the paginator's."""
        found = [
            parameter
            for parameter in self.get_override_parameters()
            if isinstance(parameter, serializers.BaseSerializer)
            or (isinstance(parameter, type) and issubclass(parameter, serializers.BaseSerializer))
        ]
        paginator = self._get_paginator()  # type: ignore[no-untyped-call]
        query_serializer = getattr(paginator, "query_serializer_class", None)
        if query_serializer is not None:
            found.append(query_serializer)
        return found

    def _request_serializers(self) -> list[Any]:
        """The serializers of the request body, whatever its media types."""
        if self.method not in ("PUT", "PATCH", "POST"):
            return []
        declared = self.get_request_serializer()
        candidates = list(declared.values()) if isinstance(declared, dict) else [declared]
        return [
            candidate
            for candidate in candidates
            if isinstance(candidate, serializers.Field)
            or (isinstance(candidate, type) and issubclass(candidate, serializers.Field))
        ]

    def _should_add_validation_error_response(self) -> bool:
        # A path or query parameter can carry a value the database refuses (`attr: null`).
        return (
            bool(super()._should_add_validation_error_response())
            or bool(self._request_serializers())
            or bool(self._get_parameters())
            or bool(self._query_serializers())
        )

    def _determine_fields_with_error_codes(self) -> list[InputDataField]:
        fields: list[InputDataField] = []
        for serializer in [*self._request_serializers(), *self._query_serializers()]:
            flat = get_serializer_fields_with_error_codes(get_flat_serializer_fields(serializer))
            fields += _nested_fields_named_as_rendered(flat)
        backends = get_django_filter_backends(self.get_filter_backends())
        for form in get_filter_forms(self.view, backends):
            fields += get_form_fields_with_error_codes(form)
        return fields

    def _strict_request_fields(self) -> list[str] | None:
        """The fields of a request serializer that refuses unknown ones, else None."""
        known: list[str] | None = None
        for serializer in self._request_serializers():
            if isinstance(serializer, type):
                serializer = serializer()
            if getattr(serializer, "reject_unknown_fields", False):
                known = [name for name, field in serializer.fields.items() if not field.read_only]
        return known

    def _validation_error(self) -> Any:
        operation = _camel(self.get_operation_id())
        suffix = package_settings.ERROR_COMPONENT_NAME_SUFFIX
        codes_by_field = self._get_validation_error_codes_by_field(
            self._determine_fields_with_error_codes()
        )
        components: list[Any] = []
        for name, codes in sorted(codes_by_field.items()):
            pattern = _placeholder_pattern(name)
            attr: serializers.Field[Any, Any, Any, Any] = (
                _SchemaField({"type": "string", "pattern": pattern})
                if pattern
                else serializers.ChoiceField(choices=[(name, name)])
            )
            components.append(
                _serializer(
                    f"{operation}{_camel(name)}{suffix}",
                    {"attr": attr, "code": _codes_field(codes), "detail": serializers.CharField()},
                )
            )
        components.append(
            _serializer(
                f"{operation}Unattributed{suffix}",
                {
                    "attr": _SchemaField({"type": "string", "nullable": True, "enum": [None]}),
                    "code": _codes_field(UNATTRIBUTED_VALIDATION_CODES),
                    "detail": serializers.CharField(),
                },
            )
        )
        known = self._strict_request_fields()
        if known is not None:
            components.append(
                _serializer(
                    f"{operation}UnknownField{suffix}",
                    {
                        "attr": _SchemaField({"type": "string", "not": {"enum": known}}),
                        "code": _codes_field(["not_allowed"]),
                        "detail": serializers.CharField(),
                    },
                )
            )
        return _serializer(
            f"{operation}ValidationError",
            {
                "type": serializers.ChoiceField(choices=ValidationErrorEnum.choices),
                # No discriminator: some `attr` values are patterns, one is null.
                "errors": PolymorphicProxySerializer(
                    component_name=f"{operation}Error",
                    serializers=components,
                    resource_type_field_name=None,
                    many=True,
                ),
            },
        )
