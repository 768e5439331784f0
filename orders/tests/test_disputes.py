"""A customer disputes a charge with their bank (a chargeback): the order is flagged and not
shipped until the dispute closes, staff are emailed, the admin shows it. Told as the gateway
tells it: signed test-gateway webhooks `dispute.created` / `dispute.closed` about the charge's
PaymentIntent, reaching orders through the outbox (`payment.disputed`, `payment.dispute_closed`).
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from orders.models import Order
from orders.services import DISPUTE_CLOSED_NOTE, DISPUTE_LOST_NOTE, DISPUTED_NOTE, order_ship
from orders.tests.helpers import card_for, send_webhook
from payments import events
from payments.models import Payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(customer, customer_client, place_order, make_product):
    order = place_order(customer, [(make_product(price_cents=1000, on_hand=10), 2)])
    method = card_for(customer)
    response = customer_client.post(
        f"/api/v1/orders/{order.pk}/pay/", {"payment_method": str(method.pk)}
    )
    assert response.json()["status"] == "paid"
    return Order.objects.get(pk=order.pk)


def dispute(
    api_client,
    settings,
    order,
    capture,
    event_type="dispute.created",
    code="fraudulent",
    reference="dp_test_1",
):
    charge = Payment.objects.get(order_id=order.pk, kind=Payment.Kind.CHARGE)
    with capture(execute=True):
        send_webhook(
            api_client,
            settings,
            event_type,
            gateway_reference=reference,
            payment_intent=charge.gateway_reference,
            amount_cents=charge.amount_cents,
            currency=charge.currency,
            failure_code=code,
        )


# `dispute()`'s event type and code for a dispute that closed.
CLOSED_WON = ("dispute.closed", "won")
CLOSED_LOST = ("dispute.closed", "lost")


def notes(order: Order) -> list[str]:
    return list(order.events.order_by("created_at", "id").values_list("note", flat=True))


def test_a_dispute_flags_the_order_and_emails_staff(
    api_client, settings, staff, paid_order, django_capture_on_commit_callbacks
):
    mail.outbox.clear()

    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks)

    order = Order.objects.get(pk=paid_order.pk)
    assert order.disputed_at is not None
    assert order.status == Order.Status.PAID  # the status stays; the flag says it
    assert notes(order)[-1] == f"{DISPUTED_NOTE} (fraudulent)"
    (email,) = [message for message in mail.outbox if "disputed" in message.subject]
    assert email.to == [staff.email]
    assert email.subject == f"Payment disputed: order {order.number}"
    assert "fraudulent" in email.body
    assert "20.00 USD of 20.00 USD" in email.body
    assert f"/admin/orders/order/{order.pk}/change/" in email.body
    html = email.alternatives[0][0]  # type: ignore[attr-defined]
    assert order.number in html


def test_a_disputed_order_is_not_shipped_until_the_dispute_closes(
    api_client, settings, staff_client, paid_order, django_capture_on_commit_callbacks
):
    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks)
    ship = f"/api/v1/orders/{paid_order.pk}/ship/"

    refused = staff_client.post(ship, {"carrier": "UPS"})

    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "order_disputed"
    order = Order.objects.get(pk=paid_order.pk)
    assert (order.status, order.carrier) == (Order.Status.PAID, "")

    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks, *CLOSED_WON)

    order = Order.objects.get(pk=paid_order.pk)
    assert order.disputed_at is None
    assert notes(order)[-2:] == [f"{DISPUTED_NOTE} (fraudulent)", f"{DISPUTE_CLOSED_NOTE} (won)"]
    shipped = staff_client.post(ship, {"carrier": "UPS"})
    assert shipped.status_code == 200
    assert shipped.json()["status"] == "shipped"


def test_a_dispute_told_twice_flags_and_emails_once(
    api_client, settings, staff, paid_order, django_capture_on_commit_callbacks
):
    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks)
    charge = Payment.objects.get(kind=Payment.Kind.CHARGE)
    mail.outbox.clear()
    count = len(notes(paid_order))

    with django_capture_on_commit_callbacks(execute=True):
        events.dispatch("payment.disputed", payment_id=charge.pk, order_id=paid_order.pk)

    assert len(notes(paid_order)) == count
    assert mail.outbox == []


def test_the_service_refuses_to_ship_a_disputed_order(
    api_client, settings, staff, paid_order, django_capture_on_commit_callbacks
):
    from orders.exceptions import OrderDisputed

    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks)

    with pytest.raises(OrderDisputed):
        order_ship(order_id=paid_order.pk, actor=staff, carrier="DHL")


def test_the_admin_shows_and_filters_disputed_orders_and_offers_no_ship_button(
    api_client,
    settings,
    staff,
    customer,
    paid_order,
    place_order,
    django_capture_on_commit_callbacks,
):
    other = place_order(customer)
    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks)
    web = Client()
    web.force_login(staff)

    disputed = web.get("/admin/orders/order/?disputed=yes").content.decode()
    not_disputed = web.get("/admin/orders/order/?disputed=no").content.decode()
    page = web.get(f"/admin/orders/order/{paid_order.pk}/change/").content.decode()
    move = web.get(f"/admin/orders/order/{paid_order.pk}/ship/", follow=True).content.decode()

    assert paid_order.number in disputed
    assert other.number not in disputed
    assert other.number in not_disputed
    assert paid_order.number not in not_disputed
    assert "payment disputed" in disputed  # the filter's title
    assert "field-disputed" in disputed  # the column
    assert f"/admin/orders/order/{paid_order.pk}/ship/" not in page
    assert f"/admin/orders/order/{paid_order.pk}/refund/" in page
    assert "is disputed" in move
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID


# --- how a dispute ends -------------------------------------------------------------------------


def test_a_lost_dispute_keeps_the_flag_writes_an_event_and_emails_staff_once(
    api_client, settings, staff, staff_client, paid_order, django_capture_on_commit_callbacks
):
    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks)
    mail.outbox.clear()

    dispute(api_client, settings, paid_order, django_capture_on_commit_callbacks, *CLOSED_LOST)

    order = Order.objects.get(pk=paid_order.pk)
    assert order.disputed_at is not None
    assert notes(order)[-1] == f"{DISPUTE_LOST_NOTE} (fraudulent)"
    (email,) = mail.outbox
    assert email.to == [staff.email]
    assert email.subject == f"Dispute lost: order {order.number}"
    assert "20.00 USD of 20.00 USD" in email.body
    assert order.number in email.alternatives[0][0]  # type: ignore[attr-defined]
    refused = staff_client.post(f"/api/v1/orders/{order.pk}/ship/", {"carrier": "UPS"})
    assert refused.json()["errors"][0]["code"] == "order_disputed"

    # Told again: nothing more.
    charge = Payment.objects.get(kind=Payment.Kind.CHARGE)
    with django_capture_on_commit_callbacks(execute=True):
        events.dispatch("payment.dispute_closed", payment_id=charge.pk, order_id=order.pk)
    assert len(mail.outbox) == 1
    assert notes(Order.objects.get(pk=order.pk)) == notes(order)


def test_a_won_dispute_does_not_clear_the_flag_another_open_or_lost_one_keeps(
    api_client, settings, paid_order, django_capture_on_commit_callbacks
):
    def tell(event_type, code, reference):
        dispute(
            api_client,
            settings,
            paid_order,
            django_capture_on_commit_callbacks,
            event_type=event_type,
            code=code,
            reference=reference,
        )

    def flagged() -> bool:
        return Order.objects.get(pk=paid_order.pk).disputed_at is not None

    tell("dispute.created", "fraudulent", "dp_first")
    tell("dispute.created", "product_not_received", "dp_second")
    tell("dispute.closed", "won", "dp_first")
    assert flagged()  # the second is still open

    tell("dispute.closed", "lost", "dp_second")
    assert flagged()
    assert notes(paid_order)[-1] == f"{DISPUTE_LOST_NOTE} (product_not_received)"

    charge = Payment.objects.get(kind=Payment.Kind.CHARGE)
    with django_capture_on_commit_callbacks(execute=True):  # the won one told again
        events.dispatch("payment.dispute_closed", payment_id=charge.pk, order_id=paid_order.pk)
    assert flagged()  # a lost dispute keeps it for good
