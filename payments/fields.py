"""A JSON model field stored as a Fernet token (text), so the raw column holds no plaintext."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression

from .crypto import decrypt, encrypt


class EncryptedJSONField(models.TextField):  # type: ignore[type-arg]
    """A JSON value encrypted at rest. Not searchable or indexable, on purpose."""

    description = "JSON encrypted with Fernet"

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())

    def from_db_value(
        self, value: str | None, expression: Expression, connection: BaseDatabaseWrapper
    ) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))
