"""Request id propagation: a context variable set by the middleware and stamped on every log
record created while it is set (any logger, any handler)."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_base_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id_var.get()
    return record


def install_record_factory() -> None:
    if logging.getLogRecordFactory() is not _record_factory:
        logging.setLogRecordFactory(_record_factory)


class OncePerMinuteFilter(logging.Filter):
    """Let one record per (logger, message) through each minute; count the ones held back.

    For outages: with Redis down every request would log the same cache error. One line a
    minute says the same, and `suppressed` says how often it happened meanwhile."""

    interval_seconds = 60.0

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        import time

        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval_seconds:
            self._last[key] = (last, held + 1)
            return False
        self._last[key] = (now, 0)
        record.suppressed = held
        return True


def rate_limited_logger(name: str) -> logging.Logger:
    """A logger whose repeated messages appear at most once a minute (see the filter above)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, OncePerMinuteFilter) for f in logger.filters):
        logger.addFilter(OncePerMinuteFilter())
    return logger
