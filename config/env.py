"""The settings' environment reader: django-environ, where an empty variable means unset.

docker-compose passes `FOO: ${FOO:-}` as an empty string when `.env` does not set FOO; taking
that literally made `FIELD_ENCRYPTION_KEYS=""` an empty key list (every card save a 500) and
`PAYMENT_FINGERPRINT_KEY=""` an HMAC with an empty key. Here "" reads as absent, so the
default applies exactly as if the variable were not set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping

import environ


class _NonEmptyEnviron(MutableMapping[str, str]):
    """`os.environ` without its empty variables; writes go to `os.environ`."""

    def __getitem__(self, key: str) -> str:
        value = os.environ[key]
        if value == "":
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        if value == "":  # an empty line of .env (`PROMETHEUS_MULTIPROC_DIR=`) means unset too
            os.environ.pop(key, None)
            return
        os.environ[key] = value

    def __delitem__(self, key: str) -> None:
        del os.environ[key]

    def __iter__(self) -> Iterator[str]:
        return (key for key, value in os.environ.items() if value != "")

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Env(environ.Env):  # type: ignore[misc]
    ENVIRON = _NonEmptyEnviron()
