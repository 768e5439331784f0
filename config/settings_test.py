"""Test settings: the real settings with a fixed key, a fast hasher and eager Celery.

The suite never pools its connections, whatever the environment says: a pool is for gunicorn's
workers (the live stack's gunicorn, tests/conftest.py, pools as production does), and has tests
of its own (common/tests/test_postgresql_pool.py)."""

import copy
import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")

from .settings import *  # noqa: F403
from .settings import ALLOWED_HOSTS, DATABASES, PASSWORD_HASHERS, REST_FRAMEWORK, STORAGES

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
# Argon2 stays in the list so upgrade-on-login is testable; MD5 first keeps tests fast.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {**REST_FRAMEWORK}
LOGGING_CONFIG = None if os.environ.get("TEST_QUIET_LOGS") else "logging.config.dictConfig"
# No pool (the module docstring); CONN_MAX_AGE as the environment made it.
_DEFAULT = {
    **DATABASES["default"],
    "OPTIONS": {k: v for k, v in DATABASES["default"]["OPTIONS"].items() if k != "pool"},
}
# A second alias for the reports router's test (reports/tests/test_router.py points the reports
# at it): a test mirror of the primary, so it has no database of its own, and no other test
# touches it (a test may query an alias only when it lists it in `databases`). A real replica
# (DATABASE_REPLICA_URL) is left out: the suite never depends on the environment having one.
DATABASES = {
    "default": _DEFAULT,
    "test_replica": {**copy.deepcopy(_DEFAULT), "TEST": {"MIRROR": "default"}},
}
