"""Reports read from the replica when `DATABASE_REPLICA_URL` is set; everything else, always the
primary. A stub until the reports app fills it in."""

from __future__ import annotations

from typing import Any


class ReportsRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return None
