"""DomainError, and the one exception handler that renders every error in the same shape.

Services raise `DomainError` subclasses (each with a stable `code` and an HTTP status); they know
nothing of HTTP beyond that number. The handler below turns them, and everything DRF and Django
raise, into `{"type", "errors": [{"code", "detail", "attr"}]}` via drf-standardized-errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.http import HttpRequest, JsonResponse
from drf_standardized_errors.formatter import ExceptionFormatter as BaseExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from drf_standardized_errors.types import Error
from rest_framework import exceptions, status


@dataclass(frozen=True)
class ErrorItem:
    """One entry of a domain error: what went wrong and, where it applies, on which field."""

    detail: str
    attr: str | None = None


class DomainError(Exception):
    """A business rule refused the operation. Subclasses set `code`, `status_code`, `message`."""

    code: ClassVar[str] = "domain_error"
    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST
    message: ClassVar[str] = "The request could not be completed."

    def __init__(self, detail: str | None = None, *, items: Sequence[ErrorItem] = ()) -> None:
        self.detail = detail or self.message
        self.items: tuple[ErrorItem, ...] = tuple(items) or (ErrorItem(self.detail),)
        super().__init__(self.detail)


class ConflictError(DomainError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT
    message = "The request conflicts with the current state."


class ProtectedError(ConflictError):
    code = "protected"
    message = "This object is still referenced and cannot be deleted."


class _DomainAPIException(exceptions.APIException):
    def __init__(self, error: DomainError) -> None:
        self.status_code = error.status_code
        super().__init__(detail=error.detail, code=error.code)


class ExceptionHandler(BaseExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DomainError):
            return _DomainAPIException(exc)
        return super().convert_known_exceptions(exc)


class ExceptionFormatter(BaseExceptionFormatter):
    def get_errors(self) -> list[Error]:
        if isinstance(self.original_exc, DomainError):
            error = self.original_exc
            return [
                Error(code=error.code, detail=item.detail, attr=item.attr) for item in error.items
            ]
        return super().get_errors()


def error_body(code: str, detail: str, error_type: str = "client_error") -> dict[str, Any]:
    return {"type": error_type, "errors": [{"code": code, "detail": detail, "attr": None}]}


# Django-level handlers, for requests that never reach a DRF view (unknown URL, crash in a plain
# view): the same shape as everything else.
def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def handler500(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        error_body("error", "Server Error (500)", error_type="server_error"), status=500
    )


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body("permission_denied", "You do not have permission to perform this action."),
        status=403,
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)
