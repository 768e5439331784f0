"""DomainError, and the one exception handler that renders every error in the same shape.

Services raise `DomainError` subclasses (each with a stable `code` and an HTTP status); they know
nothing of HTTP beyond that number. The handler below turns them, and everything DRF and Django
raise, into `{"type", "errors": [{"code", "detail", "attr"}]}` via drf-standardized-errors.

What API.md says is never a 500 is mapped here too, wherever it surfaces (a DRF view, a plain
Django view, a middleware): a database outage → 503 `service_unavailable` with `Retry-After`; a
body over DATA_UPLOAD_MAX_MEMORY_SIZE → 413 `request_too_large`; a value the database refuses
(out of range, a NUL character) → 400.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from drf_standardized_errors.formatter import ExceptionFormatter as BaseExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler as BaseExceptionHandler
from drf_standardized_errors.types import Error
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response

logger = logging.getLogger("shop.database")

# Long enough for a database restart or a failover to finish, short enough to feel like a blip.
DATABASE_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ErrorItem:
    """One entry of a domain error: what went wrong and, where it applies, on which field."""

    detail: str
    attr: str | None = None


class DomainError(Exception):
    """A business rule refused the operation.

    Subclasses declare `code` and `message`, and `status_code` unless it is 400 (or derive from
    one of the status bases below); `attr`, the input field the error is about by default. One
    error item is sent: the detail (`message`, unless another is given) on `attr` (unless another
    is given); `items` replaces it with several.
    """

    code: ClassVar[str] = "domain_error"
    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST
    message: ClassVar[str] = "The request could not be completed."
    attr: ClassVar[str | None] = None

    def __init__(
        self, detail: str | None = None, *, attr: str | None = None, items: Sequence[ErrorItem] = ()
    ) -> None:
        self.detail = detail or self.message
        self.items: tuple[ErrorItem, ...] = tuple(items) or (
            ErrorItem(self.detail, attr or self.attr),
        )
        super().__init__(self.detail)


# The status bases: a subclass names only its code and message.
class UnauthorizedError(DomainError):
    status_code = status.HTTP_401_UNAUTHORIZED


class ForbiddenError(DomainError):
    status_code = status.HTTP_403_FORBIDDEN


class NotFoundError(DomainError):
    status_code = status.HTTP_404_NOT_FOUND


class ConflictError(DomainError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT
    message = "The request conflicts with the current state."


class BadGatewayError(DomainError):
    """A service we rely on (the payment gateway) failed or refused: not the client's input."""

    status_code = status.HTTP_502_BAD_GATEWAY


class ProtectedError(ConflictError):
    code = "protected"
    message = "This object is still referenced and cannot be deleted."


class _DomainAPIException(exceptions.APIException):
    def __init__(self, error: DomainError) -> None:
        self.status_code = error.status_code
        super().__init__(detail=error.detail, code=error.code)


class ServiceUnavailable(exceptions.APIException):
    """The database is unreachable or dropped the connection: worth retrying shortly."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is briefly unavailable; retry in a few seconds."
    wait = DATABASE_RETRY_AFTER_SECONDS  # drf-standardized-errors sends it as Retry-After


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


def request_too_large_detail() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than the limit of {limit} bytes."


# The largest values PostgreSQL's `integer` and `bigint` columns hold (a 64-bit total too).
# Serializers bound their integer fields by them, so a value out of range is a 400 naming the
# field rather than the database's DataError.
INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

# Bad input that the database itself refused (SQLSTATE class 22, "data exception": a number out
# of its column's range, a NUL character, a malformed value). Fields check their ranges; this is
# the net for what slips through, such as a sum that outgrows its column.
DATA_ERROR_DETAIL = "A value is out of range or cannot be stored."


def is_database_outage(exc: BaseException) -> bool:
    """An error that says the database is unreachable or the connection died, not that the
    query was wrong (psycopg's OperationalError also covers timeouts and deadlocks, which a retry
    resolves too)."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_outage_seen(exc: BaseException) -> None:
    """Log the outage (one line, no traceback: it is not a bug) and drop every connection it left
    broken, so the next query connects afresh; recovering needs no restart.

    Django runs the same check when each request finishes (and CONN_HEALTH_CHECKS before the
    first query of the next); doing it here also covers callers that send no request signals.
    A connection inside a transaction (a test, ATOMIC_REQUESTS) is left to whoever opened it.
    """
    logger.warning(
        "database unavailable; answered 503",
        extra={"error": f"{type(exc).__name__}: {exc}".strip()},
    )
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class ExceptionHandler(BaseExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DomainError):
            return _DomainAPIException(exc)
        if is_database_outage(exc):
            return ServiceUnavailable()
        if isinstance(exc, RequestDataTooBig):
            return RequestTooLarge(request_too_large_detail())
        if isinstance(exc, SuspiciousOperation):  # too many fields, a bad host: Django's 400
            return exceptions.ParseError("Bad request.", code="bad_request")
        if isinstance(exc, DataError):
            return exceptions.ValidationError(DATA_ERROR_DETAIL, code="invalid")
        if isinstance(exc, DjangoValidationError):  # a model field refused a value (a lookup)
            return exceptions.ValidationError(get_error_detail(exc))
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc: exceptions.APIException, response: Response) -> None:
        if is_database_outage(self.exc):
            database_outage_seen(self.exc)  # not a bug: no traceback, no error report
            return
        if isinstance(self.exc, DataError):  # a field that should check its range, most likely
            logger.warning("database refused a value; answered 400", extra={"error": str(self.exc)})
        super().report_exception(exc, response)


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


def database_unavailable_response(exc: BaseException) -> JsonResponse:
    """The 503 of a plain Django view, in the same shape and with the same header as DRF's."""
    database_outage_seen(exc)
    response = JsonResponse(
        error_body(
            ServiceUnavailable.default_code,
            str(ServiceUnavailable.default_detail),
            error_type="server_error",
        ),
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """A database outage in a plain Django view (not DRF: its handler above answers for its own
    views) → 503 with `Retry-After`, instead of a 500 with a traceback in the log."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_outage(exception):
            return database_unavailable_response(exception)
        return None


# Django-level handlers, for requests that never reach a DRF view (unknown URL, crash in a plain
# view or in a middleware): the same shape as everything else.
def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def handler500(request: HttpRequest) -> JsonResponse:
    # Django calls this while handling the exception, so it is still the current one: a
    # database outage raised by a middleware (a session saved at the end) is a 503 here too.
    current = sys.exc_info()[1]
    if current is not None and is_database_outage(current):
        return database_unavailable_response(current)
    return JsonResponse(
        error_body("error", "Server Error (500)", error_type="server_error"), status=500
    )


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        error_body("permission_denied", "You do not have permission to perform this action."),
        status=403,
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    # Django answers every SuspiciousOperation with this handler; a body over the limit is 413.
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            error_body(RequestTooLarge.default_code, request_too_large_detail()),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)
