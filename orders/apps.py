from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from payments import events

        from .services import order_on_payment_event

        # Outcomes a gateway reports later (webhooks, reconciliation) move the order too.
        for event_name in events.EVENT_NAMES:
            events.subscribe(event_name, order_on_payment_event)
