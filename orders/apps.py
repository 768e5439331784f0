from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from accounts.roles import declare_staff_permissions
        from payments import events

        from .services import order_on_payment_event

        # Staff read orders and move them through the admin actions (status is never edited).
        declare_staff_permissions(
            "orders", ["view_order", "change_order", "view_orderitem", "view_orderevent"]
        )
        # Outcomes a gateway reports later (webhooks, reconciliation) move the order too.
        for event_name in events.EVENT_NAMES:
            events.subscribe(event_name, order_on_payment_event)
