"""The project package: every process of the shop imports it first (manage.py, gunicorn's
workers through config.wsgi, Celery through `-A config`, the tests through the settings).

An empty `PROMETHEUS_MULTIPROC_DIR` counts as unset, as every variable does (config/env.py); but
prometheus_client asks only whether it is present, and with "" it would write each process's
metric files (`counter_<pid>.db`, …) into the working directory. So an empty one is dropped here,
before anything imports prometheus_client (gunicorn's master makes its own directory for it:
config/gunicorn.conf.py).
"""

import os

for _name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):  # the old spelling too
    if os.environ.get(_name) == "":
        del os.environ[_name]

from .celery import app as celery_app  # noqa: E402  (after the cleanup above)

__all__ = ("celery_app",)
