"""The Celery app. Broker on CELERY_BROKER_URL (default REDIS_URL); without it tasks run eagerly
in-process. Work queued after a commit goes through the outbox (common/outbox.py).

Task logs stay short: Celery's own lines ("Task … received", "Task … succeeded in …: <result>",
a failure's line) carry the task's arguments and result, both in the message and in the record's
`data` extra, which the JSON log formatter writes out whole. Celery has no setting for that
(`worker_task_log_format` only formats the lines that tasks log themselves; `resultrepr_maxsize`
still allows 1 KB of result and none of the arguments), so a filter on Celery's task loggers cuts
each argument list and result to `TASK_LOG_REPR_MAX` characters. The outbox already publishes
argument names only (`argsrepr`/`kwargsrepr`); this covers `.delay()`, beat and every result.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every task's base class ties a run to its outbox row, when it came through the outbox.
app = Celery("shop", task_cls="common.outbox:OutboxTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

TASK_LOG_REPR_MAX = 200
# The loggers of Celery's task lines (receipt; success, retry, failure; the worker's requests).
TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.worker.request")
_SHORTENED_KEYS = ("args", "kwargs", "return_value")


def _shorten(value: object) -> object:
    if isinstance(value, str) and len(value) > TASK_LOG_REPR_MAX:
        return f"{value[:TASK_LOG_REPR_MAX]}… ({len(value):,} characters)"
    return value


class ShortTaskLogFilter(logging.Filter):
    """Cuts the arguments and result in Celery's task log lines to `TASK_LOG_REPR_MAX`."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        context = data if isinstance(data, Mapping) else record.args
        if not isinstance(context, Mapping) or not any(key in context for key in _SHORTENED_KEYS):
            return True
        short: dict[str, Any] = {
            key: _shorten(value) if key in _SHORTENED_KEYS else value
            for key, value in context.items()
        }
        if isinstance(record.args, Mapping):
            record.args = short
        if isinstance(data, Mapping):
            record.data = short
        return True


_short_task_logs = ShortTaskLogFilter()
for _name in TASK_LOGGERS:
    _logger = logging.getLogger(_name)
    if not any(isinstance(existing, ShortTaskLogFilter) for existing in _logger.filters):
        _logger.addFilter(_short_task_logs)
