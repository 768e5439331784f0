"""The Celery app. Broker on CELERY_BROKER_URL (default REDIS_URL); without it tasks run eagerly
in-process. Work queued after a commit goes through the outbox (common/outbox.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Every task's base class ties a run to its outbox row, when it came through the outbox.
app = Celery("shop", task_cls="common.outbox:OutboxTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
