from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from accounts.roles import declare_staff_permissions
        from payments import events

        from . import services

        # Staff read orders and move them through the admin actions (status is never edited).
        declare_staff_permissions(
            "orders", ["view_order", "change_order", "view_orderitem", "view_orderevent"]
        )
        # Outcomes a gateway reports later (webhooks, reconciliation) move the order too.
        handlers: dict[events.EventName, events.Handler] = {
            "payment.succeeded": services.order_on_payment_event,
            "payment.failed": services.order_on_payment_event,
            "payment.refunded": services.order_on_payment_event,
            "payment.refund_failed": services.order_on_refund_failed,
            "payment.disputed": services.order_on_payment_disputed,
            "payment.dispute_closed": services.order_on_dispute_closed,
        }
        for event_name, handler in handlers.items():
            events.subscribe(event_name, handler)
