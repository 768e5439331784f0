"""Every state change of payments: saved methods, charges, refunds, webhooks, reconciliation.

Paying is three steps so that no transaction or row lock is held across a network call:
`payment_charge_begin` (in the caller's transaction, under the order's lock) records a pending
charge; `payment_charge_execute` (no transaction) asks the gateway, with the payment id as the
idempotency key; `payment_settle` (in the caller's next transaction) records the outcome, or
keeps the charge pending while the customer authenticates (3-D Secure). A crash between the
steps leaves the payment pending, and `payment_reconcile_pending` looks it up at the gateway
(never charging again). Refunds work the same way.

One module per concern, the public names all here: `methods` (gateway customers, saved cards),
`charges`, `refunds`, `settle` (outcomes, late ones included), `reconcile`, `webhooks`.
"""

from __future__ import annotations

from .charges import (
    payment_charge_begin,
    payment_charge_cancel,
    payment_charge_execute,
    payment_charge_lookup,
)
from .methods import (
    payment_method_create,
    payment_method_delete,
    payment_method_from_setup,
    payment_method_set_default,
    payment_setup_intent_create,
)
from .reconcile import payment_reconcile_pending
from .refunds import (
    payment_captured_cents,
    payment_refund_begin,
    payment_refund_execute,
    payment_refund_external_record,
    payment_refund_lookup,
)
from .settle import payment_settle
from .webhooks import webhook_event_handle

__all__ = [
    "payment_captured_cents",
    "payment_charge_begin",
    "payment_charge_cancel",
    "payment_charge_execute",
    "payment_charge_lookup",
    "payment_method_create",
    "payment_method_delete",
    "payment_method_from_setup",
    "payment_method_set_default",
    "payment_reconcile_pending",
    "payment_refund_begin",
    "payment_refund_execute",
    "payment_refund_external_record",
    "payment_refund_lookup",
    "payment_settle",
    "payment_setup_intent_create",
    "webhook_event_handle",
]
