from __future__ import annotations

from rest_framework import status

from common.exceptions import DomainError


class InvalidReportRange(DomainError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    """A report asked for dates in the wrong order, or for more than the reports allow. The API
    refuses the same input earlier, in its query serializer, naming the parameter; this guards
    the other callers (the staff dashboard, the shell)."""

    code = "invalid_report_range"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The report's date range is not valid."
