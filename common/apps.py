from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        from django.conf import settings

        from .logging import install_record_factory, rate_limited_logger

        install_record_factory()
        # django-redis logs every cache error it ignores (Redis down: one per request); an
        # outage needs one line a minute, with the count of the ones held back.
        rate_limited_logger(getattr(settings, "DJANGO_REDIS_LOGGER", "django_redis"))
        _register_outbox_metrics()


def _register_outbox_metrics() -> None:
    from prometheus_client import REGISTRY

    from .outbox import OutboxCollector

    if not getattr(REGISTRY, "_shop_outbox_registered", False):  # ready() may run twice
        REGISTRY.register(OutboxCollector())
        REGISTRY._shop_outbox_registered = True  # type: ignore[attr-defined]
