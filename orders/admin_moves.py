"""The moves staff make from an order's page: ship, deliver, cancel, refund.

Each move is a small confirmation form whose `perform` calls the one service that owns the move
(`orders.services`); the admin only asks, confirms and reports. Which moves an order offers
comes from the state machine (`Order.can_transition_to`, i.e. `Order.TRANSITIONS`), so the
buttons can never offer a move the services would refuse for its status (nor shipping an order
whose payment is disputed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from accounts.models import User
from common.exceptions import DomainError
from common.money import MoneyField, store_money
from payments.exceptions import RefundExceedsCaptured
from payments.services import payment_captured_cents

from . import services
from .models import Order, OrderEvent

# What the event log says when staff leave the reason empty (the list actions use them too).
CANCEL_NOTE = "cancelled by staff"
REFUND_NOTE = "refunded by staff"
_NOTE_MAX = OrderEvent._meta.get_field("note").max_length


def error_text(error: DomainError) -> str:
    """A service's refusal as staff read it: amounts as money, not as the API's cents."""
    if isinstance(error, RefundExceedsCaptured):
        return f"At most {store_money(error.refundable_cents)} can still be refunded."
    return " ".join(dict.fromkeys(item.detail for item in error.items)) or error.detail


class MoveForm(forms.Form):
    """A move's confirmation: its fields, what it will do, and the service call that does it."""

    required_css_class = "required"  # the admin's bold label for a required field

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order

    def consequences(self) -> str:
        """One sentence under the title: what confirming changes besides the status."""
        return ""

    def perform(self, *, actor: User) -> Order:
        raise NotImplementedError

    def done_message(self, order: Order) -> str:
        """Starts with the order, never with a customer's email (the admin capitalises)."""
        return f"Order {order.number} is now {order.get_status_display().lower()}."


class ShipForm(MoveForm):
    carrier = forms.CharField(max_length=100, help_text="e.g. DHL, UPS, Royal Mail")
    tracking_number = forms.CharField(
        max_length=100, required=False, help_text="Shown to the customer in the shipped email."
    )

    def consequences(self) -> str:
        return "The customer gets the shipped email with the carrier and tracking number."

    def perform(self, *, actor: User) -> Order:
        return services.order_ship(
            order_id=self.order.pk,
            actor=actor,
            carrier=self.cleaned_data["carrier"].strip(),
            tracking_number=self.cleaned_data["tracking_number"].strip(),
        )

    def done_message(self, order: Order) -> str:
        tracking = f", tracking {order.tracking_number}" if order.tracking_number else ""
        return f"Order {order.number} shipped with {order.carrier}{tracking}."


class DeliverForm(MoveForm):
    def consequences(self) -> str:
        return "Records that the parcel arrived; a delivered order can still be refunded."

    def perform(self, *, actor: User) -> Order:
        return services.order_deliver(order_id=self.order.pk, actor=actor)


class CancelForm(MoveForm):
    outcome: services.RefundOutcome  # set by `perform`
    reason = forms.CharField(
        max_length=_NOTE_MAX, required=False, help_text="Kept in the order's history."
    )

    def consequences(self) -> str:
        if self.order.status == Order.Status.PAID:
            refundable = payment_captured_cents(order_id=self.order.pk)
            return (
                f"The order is paid: {store_money(refundable)} is refunded in full through the "
                "payment gateway and the units go back on hand. The customer is emailed."
            )
        return "The reserved units are released. The customer is emailed."

    def perform(self, *, actor: User) -> Order:
        self.outcome = services.order_cancel_attempt(
            order_id=self.order.pk, actor=actor, note=self.cleaned_data["reason"] or CANCEL_NOTE
        )
        return self.outcome.order

    def done_message(self, order: Order) -> str:
        if self.outcome.pending:
            return (
                f"Order {order.number}: the refund was sent and the payment provider has not "
                "decided it yet; the order stays paid until it does (then it is refunded and "
                "its units go back on hand)."
            )
        return super().done_message(order)


class RefundForm(MoveForm):
    outcome: services.RefundOutcome  # set by `perform`
    amount = MoneyField(min_cents=1, label="Amount")
    restock = forms.BooleanField(
        required=False,
        label="Put the units back on hand",
        help_text="Only with a full refund, when the goods came back (or never left).",
    )
    reason = forms.CharField(
        max_length=_NOTE_MAX, required=False, help_text="Kept in the order's history."
    )

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, order=order, **kwargs)
        self.refundable_cents = payment_captured_cents(order_id=order.pk)
        amount = self.fields["amount"]
        assert isinstance(amount, MoneyField)
        amount.max_cents = self.refundable_cents  # the service checks again, under the lock
        amount.initial = self.refundable_cents
        amount.help_text = f"At most {store_money(self.refundable_cents)} (the full refund)."

    def consequences(self) -> str:
        return (
            f"{store_money(self.refundable_cents)} was captured and not yet refunded. A full "
            "refund marks the order refunded and emails the customer; a partial one keeps its "
            "status."
        )

    def perform(self, *, actor: User) -> Order:
        self.outcome = services.order_refund_attempt(
            order_id=self.order.pk,
            actor=actor,
            amount_cents=self.cleaned_data["amount"],
            restock=self.cleaned_data["restock"],
            reason=self.cleaned_data["reason"] or REFUND_NOTE,
        )
        return self.outcome.order

    def done_message(self, order: Order) -> str:
        amount = store_money(self.cleaned_data["amount"])
        if self.outcome.pending:
            return (
                f"Order {order.number}: the refund of {amount} was sent and the payment "
                "provider has not decided it yet; the order keeps its status until it does."
            )
        if order.status == Order.Status.REFUNDED:
            restocked = "; its units are back on hand" if self.cleaned_data["restock"] else ""
            return f"Order {order.number} refunded in full ({amount}){restocked}."
        left = store_money(payment_captured_cents(order_id=order.pk))
        return (
            f"Order {order.number}: {amount} refunded; it stays "
            f"{order.get_status_display().lower()} with {left} left to refund."
        )


@dataclass(frozen=True)
class Move:
    """A button on the order page and its confirmation page (`/admin/orders/order/<id>/<name>/`)."""

    name: str
    label: str
    to_status: str
    form_class: type[MoveForm]
    # "danger" moves (money back, stock freed) are drawn in the admin's delete colour.
    danger: bool = False

    def legal_for(self, order: Order) -> bool:
        if self.to_status == Order.Status.SHIPPED and order.is_disputed:
            return False  # `order_ship` refuses it too (OrderDisputed)
        return order.can_transition_to(self.to_status)

    def refusal(self, order: Order) -> str:
        """Why the button is missing, for someone who reached the URL anyway."""
        if self.to_status == Order.Status.SHIPPED and order.is_disputed:
            return (
                f"The payment of order {order.number} is disputed; it cannot be shipped until "
                "the dispute closes."
            )
        return (
            f"Order {order.number} is {order.get_status_display().lower()}; "
            f"{self.label.lower()} is not possible from that status."
        )


MOVES: tuple[Move, ...] = (
    Move("ship", "Ship", Order.Status.SHIPPED, ShipForm),
    Move("deliver", "Mark delivered", Order.Status.DELIVERED, DeliverForm),
    Move("refund", "Refund", Order.Status.REFUNDED, RefundForm, danger=True),
    Move("cancel", "Cancel order", Order.Status.CANCELLED, CancelForm, danger=True),
)


def moves_for(order: Order) -> list[Move]:
    """The moves the state machine allows from the order's status, in button order."""
    return [move for move in MOVES if move.legal_for(order)]
