from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI auth extension)
        from .roles import declare_staff_permissions, grant_declared_staff_permissions

        # Staff may look users up in the console; changing them is for admins.
        declare_staff_permissions("accounts", ["view_user"])
        post_migrate.connect(
            grant_declared_staff_permissions, dispatch_uid="accounts.grant_staff_permissions"
        )
