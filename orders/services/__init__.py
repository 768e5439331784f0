"""Every state change of carts and orders, one module per concern:

- `cart`: the cart's lines (add, change, remove, empty).
- `checkout`: `order_place`, the cart becomes a pending order with its stock reserved.
- `state`: the state machine: the order's row lock, the one write path of `Order.status`, and
  the named moves (mark paid, ship, deliver, mark refunded).
- `payment`: pay and refund through the gateway, and the outcomes it reports later.
- `reconcile`: orders whose status and money disagree put right (what `audit_payments`
  reports).
- `outcomes`: what the gateway reports after the fact besides a charge or refund succeeding: a
  refund failing after it succeeded, disputes opened and closed.
- `cancel`: cancelling an order (stock released, or a paid order refunded) and expiring unpaid
  ones.
- `_shared`: the helpers they share (an order's stock lines, ledger reference, email context).

They import one another in one direction: `state` ← `payment` ← `cancel`, `state` ←
`outcomes`, and `payment`, `outcomes` ← `reconcile`. Import the services
from here (`from orders.services import order_pay`); the modules are the package's own layout.

Locks are always taken in the same order, so no two services can deadlock: the cart row (per
user), then the order row, then (last, inside `inventory.services`) the stock rows in product-id
order. The stock call comes **last** in each transaction: a stock row's lock is then held only
from that statement to the commit right after it, never across our own work. This is what lets
a hot product sell at nearly the rate of many cold ones (see bench/bench_checkout.py).
"""

from ._shared import EXPIRED_NOTE
from .cancel import order_cancel, order_cancel_attempt, order_expire_unpaid
from .cart import cart_clear, cart_item_add, cart_item_remove, cart_item_update
from .checkout import order_place
from .outcomes import (
    DISPUTE_CLOSED_NOTE,
    DISPUTE_LOST_NOTE,
    DISPUTED_NOTE,
    REFUND_FAILED_NOTE,
    order_on_dispute_closed,
    order_on_payment_disputed,
    order_on_refund_failed,
)
from .payment import (
    PayOutcome,
    RefundOutcome,
    order_on_payment_event,
    order_pay,
    order_pay_attempt,
    order_refund,
    order_refund_attempt,
)
from .reconcile import order_payments_reconcile
from .state import (
    order_deliver,
    order_mark_paid,
    order_mark_refunded,
    order_ship,
    order_transition,
)

__all__ = [
    "DISPUTED_NOTE",
    "DISPUTE_CLOSED_NOTE",
    "DISPUTE_LOST_NOTE",
    "EXPIRED_NOTE",
    "REFUND_FAILED_NOTE",
    "PayOutcome",
    "RefundOutcome",
    "cart_clear",
    "cart_item_add",
    "cart_item_remove",
    "cart_item_update",
    "order_cancel",
    "order_cancel_attempt",
    "order_deliver",
    "order_expire_unpaid",
    "order_mark_paid",
    "order_mark_refunded",
    "order_on_dispute_closed",
    "order_on_payment_disputed",
    "order_on_payment_event",
    "order_on_refund_failed",
    "order_pay",
    "order_pay_attempt",
    "order_payments_reconcile",
    "order_place",
    "order_refund",
    "order_refund_attempt",
    "order_ship",
    "order_transition",
]
