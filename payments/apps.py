from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from accounts.roles import declare_staff_permissions

        from . import checks  # noqa: F401  (registers the system checks)

        # The payments console is read-only (refunds go through the order page).
        declare_staff_permissions("payments", ["view_payment", "view_paymentmethod"])
