from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self) -> None:
        from accounts.roles import declare_staff_permissions

        # Staff run the catalog and the stock: categories and products in full, the ledger
        # read-only (stock changes go through the product page's adjust form and the services).
        declare_staff_permissions(
            "inventory",
            [
                *(
                    f"{verb}_{model}"
                    for verb in ("view", "add", "change", "delete")
                    for model in ("category", "product")
                ),
                "view_stocklevel",
                "view_stockmovement",
            ],
        )
