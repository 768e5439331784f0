"""Webhooks checked against the payment's money (amount, currency, PaymentIntent), payment ids
that are not ours, refunds made in the gateway's dashboard, and disputes."""

import uuid

import pytest
from django.db import IntegrityError, transaction

from payments import services
from payments.gateways.base import GatewayResult
from payments.models import Dispute, Payment, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "data",
    [
        {"amount_cents": 9_999},
        {"currency": "EUR"},
        {"payment_intent": "pi_someone_else"},
    ],
    ids=["amount", "currency", "payment-intent"],
)
def test_an_event_about_other_money_is_logged_and_ignored(
    paid_charge, webhook, published, caplog, data
):
    """A succeeded charge of 10 000 cents (`ch_test_<id>`): an event that contradicts it."""
    data = {"amount_cents": 10_000, "currency": "USD", **data}
    refund = services.payment_refund_begin(
        order_id=paid_charge.order_id, amount_cents=10_000, user=None
    )

    response = webhook("payment.refunded", payment_id=refund.pk, gateway_reference="re_1", **data)

    assert response.status_code == 200
    refund.refresh_from_db()
    assert refund.status == "pending"
    assert published == []
    assert "other money" in caplog.text


def test_an_event_with_the_same_money_settles(paid_charge, webhook, published):
    refund = services.payment_refund_begin(
        order_id=paid_charge.order_id, amount_cents=10_000, user=None
    )
    response = webhook(
        "payment.refunded",
        payment_id=refund.pk,
        gateway_reference="re_1",
        payment_intent=paid_charge.gateway_reference,
        amount_cents=10_000,
        currency="usd",
    )
    assert response.status_code == 200
    refund.refresh_from_db()
    assert (refund.status, refund.gateway_reference) == ("succeeded", "re_1")
    assert published == [("payment.refunded", refund.pk, paid_charge.order_id)]


def test_a_charge_event_naming_another_payment_intent_is_ignored(pending_charge, webhook, caplog):
    services.payment_settle(
        payment_id=pending_charge.pk,
        result=GatewayResult(
            succeeded=False,
            gateway_reference="pi_ours",
            requires_action=True,
            client_secret="pi_ours_secret",
        ),
    )
    response = webhook(
        "payment.succeeded",
        payment_id=pending_charge.pk,
        gateway_reference="pi_theirs",
        payment_intent="pi_theirs",
    )
    assert response.status_code == 200
    pending_charge.refresh_from_db()
    assert pending_charge.status == "pending"
    assert "other money" in caplog.text


@pytest.mark.parametrize("payment_id", ["not-a-uuid", "", str(uuid.uuid4())])
def test_unknown_or_malformed_payment_ids_are_logged_and_200(webhook, caplog, payment_id):
    response = webhook("payment.succeeded", payment_id=payment_id, gateway_reference="pi_1")

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    assert WebhookEvent.objects.count() == 1
    assert "payment id of ours" in caplog.text or "unknown payment" in caplog.text


# --- refunds made in the gateway's dashboard ------------------------------------------------


def dashboard_refund(webhook, charge, *, refund_id="re_dashboard", amount=4_000, **extra):
    return webhook(
        "refund.external",
        gateway_reference=refund_id,
        payment_intent=charge.gateway_reference,
        amount_cents=amount,
        currency="usd",
        **extra,
    )


def test_a_dashboard_refund_is_recorded_once_and_published(paid_charge, webhook, published):
    response = dashboard_refund(webhook, paid_charge)

    assert response.status_code == 200, response.content
    refund = Payment.objects.get(kind="refund")
    assert (
        refund.status,
        refund.amount_cents,
        refund.parent,
        refund.gateway_reference,
        refund.initiated_by,
        refund.description,
    ) == ("succeeded", 4_000, paid_charge, "re_dashboard", None, "refund made at the gateway")
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 6_000
    assert published == [("payment.refunded", refund.pk, paid_charge.order_id)]

    # Told again (charge.refunded after refund.created: another event id), nothing new.
    assert dashboard_refund(webhook, paid_charge).status_code == 200
    assert Payment.objects.filter(kind="refund").count() == 1
    assert len(published) == 1


def test_a_dashboard_refund_of_a_charge_not_ours_is_logged_and_200(webhook, caplog, paid_charge):
    response = webhook(
        "refund.external",
        gateway_reference="re_x",
        payment_intent="pi_not_ours",
        amount_cents=100,
        currency="USD",
    )
    assert response.status_code == 200
    assert Payment.objects.filter(kind="refund").count() == 0
    assert "not ours" in caplog.text


def test_a_dashboard_refund_in_another_currency_is_not_recorded(paid_charge, webhook, caplog):
    response = webhook(
        "refund.external",
        gateway_reference="re_x",
        payment_intent=paid_charge.gateway_reference,
        amount_cents=100,
        currency="EUR",
    )
    assert response.status_code == 200
    assert Payment.objects.filter(kind="refund").count() == 0
    assert "cannot be recorded" in caplog.text


def test_an_event_before_its_charges_success_is_refused_to_be_sent_again(pending_charge, webhook):
    Payment.objects.filter(pk=pending_charge.pk).update(gateway_reference="pi_processing")
    pending_charge.refresh_from_db()

    response = dashboard_refund(webhook, pending_charge, amount=100)

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "webhook_retry_later"
    assert WebhookEvent.objects.count() == 0  # not recorded: the gateway's retry is applied
    assert Payment.objects.filter(kind="refund").count() == 0


def test_refunds_made_at_the_gateway_are_unique_by_reference_in_the_database(paid_charge):
    fields = {
        "user": paid_charge.user,
        "order_id": paid_charge.order_id,
        "kind": "refund",
        "amount_cents": 1,
        "currency": "USD",
        "gateway": "test",
        "gateway_reference": "re_same",
        "parent": paid_charge,
    }
    Payment.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**fields)


# --- disputes ----------------------------------------------------------------------------------


def dispute_event(webhook, charge, event_type, **data):
    return webhook(
        event_type, gateway_reference="dp_1", payment_intent=charge.gateway_reference, **data
    )


def test_a_dispute_is_recorded_and_published_then_closed(paid_charge, webhook, published):
    response = dispute_event(
        webhook,
        paid_charge,
        "dispute.created",
        amount_cents=10_000,
        currency="USD",
        failure_code="fraudulent",
    )

    assert response.status_code == 200
    dispute = Dispute.objects.get()
    assert (dispute.payment, dispute.amount_cents, dispute.reason, dispute.status) == (
        paid_charge,
        10_000,
        "fraudulent",
        "open",
    )
    assert dispute.is_open
    assert published == [("payment.disputed", paid_charge.pk, paid_charge.order_id)]
    # Told twice: recorded once.
    dispute_event(webhook, paid_charge, "dispute.created", failure_code="fraudulent")
    assert Dispute.objects.count() == 1
    assert len(published) == 1

    dispute_event(webhook, paid_charge, "dispute.closed", failure_code="won")
    dispute.refresh_from_db()
    assert (dispute.status, dispute.is_open) == ("won", False)
    assert published[1:] == [("payment.dispute_closed", paid_charge.pk, paid_charge.order_id)]
    dispute_event(webhook, paid_charge, "dispute.closed", failure_code="won")
    assert len(published) == 2


def test_a_dispute_closed_whose_opening_was_missed_is_recorded_closed(
    paid_charge, webhook, published
):
    dispute_event(webhook, paid_charge, "dispute.closed", failure_code="lost")

    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.amount_cents, dispute.is_open) == ("lost", 10_000, False)
    assert published == [("payment.dispute_closed", paid_charge.pk, paid_charge.order_id)]


def test_a_dispute_of_more_than_the_charge_is_ignored(paid_charge, webhook, caplog, published):
    dispute_event(webhook, paid_charge, "dispute.created", amount_cents=10_001, currency="USD")
    assert Dispute.objects.count() == 0
    assert published == []
    assert "other money" in caplog.text


def test_disputes_in_the_admin_are_view_only_and_on_the_payment_page(
    paid_charge, webhook, admin_user, client
):
    dispute_event(webhook, paid_charge, "dispute.created", failure_code="fraudulent")
    dispute = Dispute.objects.get()
    client.force_login(admin_user)

    listing = client.get("/admin/payments/dispute/")
    page = client.get(f"/admin/payments/dispute/{dispute.pk}/change/")
    payment_page = client.get(f"/admin/payments/payment/{paid_charge.pk}/change/")

    assert listing.status_code == page.status_code == payment_page.status_code == 200
    assert "Dispute $100.00 (open)" in listing.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert f"/admin/payments/dispute/{dispute.pk}/change/" in payment_page.content.decode()
    assert client.get("/admin/payments/dispute/add/").status_code == 403
    assert client.post(f"/admin/payments/dispute/{dispute.pk}/delete/").status_code == 403
