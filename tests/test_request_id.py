import logging
import re
from typing import Any

import pytest

pytestmark = [pytest.mark.urls("tests.urls"), pytest.mark.django_db]


def test_request_id_is_echoed(api_client):
    response = api_client.get("/healthz", HTTP_X_REQUEST_ID="abc-123.def")
    assert response["X-Request-ID"] == "abc-123.def"


def test_request_id_is_generated_when_absent(api_client):
    first = api_client.get("/healthz")["X-Request-ID"]
    second = api_client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_unsafe_request_id_is_replaced(api_client):
    response = api_client.get("/healthz", HTTP_X_REQUEST_ID="evil\nInjected: yes")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_error_responses_carry_the_request_id(api_client):
    response = api_client.get("/api/v1/nothing-here/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-404"


def test_one_access_line_per_request_with_request_id_and_user(staff_client, staff, caplog):
    caplog.set_level(logging.INFO, logger="shop.access")
    staff_client.get("/api/v1/_test/staff/", HTTP_X_REQUEST_ID="req-42")
    records = [r for r in caplog.records if r.name == "shop.access"]
    assert len(records) == 1
    record = records[0]
    assert record.method == "GET"
    assert record.path == "/api/v1/_test/staff/"
    assert record.status == 200
    assert record.user_id == staff.pk
    assert record.duration_ms >= 0
    assert record.request_id == "req-42"


def test_log_lines_inside_a_request_carry_its_id(caplog):
    """Any logger used while serving a request gets the id, e.g. the 500 error report."""
    from rest_framework.test import APIClient

    caplog.set_level(logging.INFO)
    client = APIClient(raise_request_exception=False)
    client.get("/api/v1/_test/crash/", HTTP_X_REQUEST_ID="req-crash")
    error_records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error_records
    assert all(r.request_id == "req-crash" for r in error_records)


def test_json_formatter_renders_one_json_object_per_line():
    import json

    from django.conf import settings
    from pythonjsonlogger.json import JsonFormatter

    from common.logging import request_id_var

    logging_settings: Any = settings.LOGGING
    config = logging_settings["formatters"]["json"]
    formatter = JsonFormatter(config["fmt"], rename_fields=config["rename_fields"])
    token = request_id_var.set("rid-1")
    try:
        record = logging.getLogRecordFactory()(
            "shop.access", logging.INFO, __file__, 1, "request", None, None
        )
    finally:
        request_id_var.reset(token)
    record.status = 201
    line = formatter.format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "request"
    assert parsed["request_id"] == "rid-1"
    assert parsed["status"] == 201
    assert parsed["level"] == "INFO"
