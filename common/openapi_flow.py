"""The API docs list each tag's operations in the order a client uses them, not alphabetically.

drf-spectacular writes the paths sorted by path (SORT_OPERATIONS), so the orders tag read
"cancel, deliver, pay, refund, ship". `order_operations_by_flow` (a POSTPROCESSING_HOOK,
config/settings.py) puts the paths, and the methods inside each path, in the order of
`OPERATION_FLOW`, which ReDoc and any reader of the schema follow. Swagger UI shows one path's
methods together, and the flow does not always keep them together (the cart's `DELETE` empties
it: last, after its items' operations; a card's setup intent comes before saving the card), so each
operation also carries its place, `x-flow-order`, which Swagger UI sorts by
(SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"]: `operationsSorter`).

An operation missing from the table comes after those in it, in drf-spectacular's order;
common/tests/test_openapi_examples.py holds every operation of the API to a place in it.
"""

from __future__ import annotations

from typing import Any

FLOW_ORDER_KEY = "x-flow-order"

# operationIds, tag by tag in SPECTACULAR_SETTINGS["TAGS"]'s order, each tag in its flow.
OPERATION_FLOW = (
    "api_root",  # GET /api/v1/: the map of the rest (untagged: Swagger UI's "default")
    # auth: sign up, sign in, keep and change the password, sign out
    "auth_register_create",
    "auth_verify_email_create",
    "auth_verify_email_resend_create",
    "auth_token_create",
    "auth_token_refresh_create",
    "auth_password_change_create",
    "auth_password_reset_create",
    "auth_password_reset_confirm_create",
    "auth_logout_create",
    # users: your profile, then staff's list
    "users_me_retrieve",
    "users_me_partial_update",
    "users_list",
    "users_retrieve",
    "users_partial_update",
    # categories: read, then staff's edits
    "categories_list",
    "categories_tree_list",
    "categories_create",
    "categories_retrieve",
    "categories_partial_update",
    "categories_destroy",
    # products: read and create, stock, images, and last the end of a product
    "products_list",
    "products_create",
    "products_retrieve",
    "products_update",
    "products_partial_update",
    "products_stock_retrieve",
    "products_stock_adjust_create",
    "products_images_create",
    "products_images_partial_update",
    "products_images_destroy",
    "products_destroy",
    "inventory_low_stock_list",
    "stock_movements_list",
    # cart: look, add, change, remove, empty
    "cart_retrieve",
    "cart_items_create",
    "cart_items_partial_update",
    "cart_items_destroy",
    "cart_clear",
    # orders: check out, pay or cancel; staff ship, deliver, refund
    "orders_list",
    "orders_create",
    "orders_retrieve",
    "orders_pay_create",
    "orders_cancel_create",
    "orders_ship_create",
    "orders_deliver_create",
    "orders_refund_create",
    # payment-methods: the gateway's setup intent, then the card saved with it
    "payment_methods_list",
    "payment_methods_setup_intent_create",
    "payment_methods_create",
    "payment_methods_set_default_create",
    "payment_methods_destroy",
    "payments_list",
    "payments_retrieve",
    "payments_webhooks_create",
    "reports_sales",
    "reports_top_products",
    "reports_inventory",
)


def order_operations_by_flow(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular's postprocessing hook: paths, methods and `x-flow-order` in flow order."""
    place = {operation_id: index for index, operation_id in enumerate(OPERATION_FLOW)}
    operations = [
        (path, method, operation)
        for path, item in result["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    # Stable: operations outside the table keep drf-spectacular's order, after the rest.
    operations.sort(key=lambda entry: place.get(entry[2]["operationId"], len(place)))
    first_of_path: dict[str, int] = {}
    for order, (path, _method, operation) in enumerate(operations):
        operation[FLOW_ORDER_KEY] = order
        first_of_path.setdefault(path, order)

    def item_in_order(item: dict[str, Any]) -> dict[str, Any]:
        # Methods by their place; anything else of the path item (`parameters`) first, as it was.
        def key(entry: tuple[str, Any]) -> int:
            value = entry[1]
            return value.get(FLOW_ORDER_KEY, -1) if isinstance(value, dict) else -1

        return dict(sorted(item.items(), key=key))

    paths = result["paths"]
    result["paths"] = {
        path: item_in_order(paths[path])
        for path in sorted(paths, key=lambda path: first_of_path.get(path, len(operations)))
    }
    return result
