"""Celery's task log lines carry neither a whole argument list nor a whole result
(config/celery.py): an import's 8 KB email context once went into a success line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from config.celery import TASK_LOG_REPR_MAX, app

BIG = "x" * 8_000


@app.task(name="tests.test_task_logging.echo")
def echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


@app.task(name="tests.test_task_logging.fail")
def fail(**kwargs: Any) -> None:
    raise ValueError("boom")


def json_line(record: logging.LogRecord) -> str:
    """The record as the project's JSON formatter writes it (extras such as `data` included)."""
    logging_config: dict[str, Any] = settings.LOGGING
    options = dict(logging_config["formatters"]["json"])
    formatter = import_string(options.pop("()"))(**options)
    return str(formatter.format(record))


def trace_records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "celery.app.trace" and text in record.getMessage()
    ]


def test_a_success_line_holds_neither_a_large_argument_nor_a_large_result(caplog):
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    result = echo.apply(kwargs={"context": {"body": BIG}})
    returned = result.result
    assert isinstance(returned, dict)
    assert returned["context"]["body"] == BIG  # the task itself is untouched
    (record,) = trace_records(caplog, "succeeded in")
    message = record.getMessage()
    assert message.startswith("Task tests.test_task_logging.echo[")
    assert "x" * (TASK_LOG_REPR_MAX + 1) not in message
    assert "characters)" in message  # says it was cut, and how long it was
    line = json_line(record)
    assert "x" * (TASK_LOG_REPR_MAX + 1) not in line
    assert len(line) < 2_000


def test_a_failure_line_holds_no_large_argument(caplog):
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    fail.apply(kwargs={"context": {"body": BIG}}, throw=False)
    (record,) = trace_records(caplog, "raised unexpected")
    line = json_line(record)
    assert "ValueError" in line
    assert "x" * (TASK_LOG_REPR_MAX + 1) not in line


def test_small_values_are_logged_as_they_are(caplog):
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    echo.apply(kwargs={"n": 1})
    (record,) = trace_records(caplog, "succeeded in")
    assert record.getMessage().endswith(": {'n': 1}")
    assert record.data["kwargs"] == "{'n': 1}"  # type: ignore[attr-defined]
