"""Gateway events that name our payment another way than by its id: a refund failure of a
refund made in the dashboard (by the refund's id), a dashboard refund or dispute of a charge
whose create call never answered here (looked up at the gateway first). Also: a card saved twice
through setup intents, the disputes of an order, and what a customer reads for final errors."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from payments import selectors, services
from payments.exceptions import PaymentDeclined
from payments.gateways.base import CardDetails, GatewayError, GatewayNotFound
from payments.gateways.test import TestGateway
from payments.models import Dispute, Payment, PaymentMethod, WebhookEvent

from .conftest import EXP_YEAR, MASTERCARD

pytestmark = pytest.mark.django_db


# --- a refund made in the dashboard that fails later -----------------------------------------
def dashboard_refund(webhook, charge):
    """A refund of 4 000 cents made in the gateway's dashboard (`re_dash`), recorded here."""
    webhook(
        "refund.external",
        gateway_reference="re_dash",
        payment_intent=charge.gateway_reference,
        amount_cents=4_000,
        currency="usd",
    )
    return Payment.objects.get(kind="refund")


def test_a_dashboard_refund_that_fails_later_is_matched_by_its_id(
    paid_charge, webhook, published, staff
):
    refund = dashboard_refund(webhook, paid_charge)
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 6_000
    published.clear()
    mail.outbox.clear()

    response = webhook(  # no payment id: the dashboard's refund carries none of ours
        "refund.failed",
        gateway_reference="re_dash",
        payment_intent=paid_charge.gateway_reference,
        amount_cents=4_000,
        currency="usd",
        failure_code="expired_or_canceled_card",
    )

    assert response.status_code == 200
    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == ("failed", "expired_or_canceled_card")
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 10_000
    assert published == [("payment.refund_failed", refund.pk, paid_charge.order_id)]
    (email,) = mail.outbox
    assert email.to == ["staff@example.com"]


@pytest.mark.parametrize(
    "data",
    [
        {"gateway_reference": "re_unknown"},
        {"gateway_reference": "re_dash", "amount_cents": 3_999},
        {"gateway_reference": "re_dash", "payment_intent": "pi_someone_else"},
    ],
    ids=["unknown-refund", "other-amount", "other-intent"],
)
def test_a_refund_failure_without_our_id_that_matches_nothing_changes_nothing(
    paid_charge, webhook, published, data
):
    dashboard_refund(webhook, paid_charge)
    published.clear()

    response = webhook("refund.failed", failure_code="refund_failed", **data)

    assert response.status_code == 200
    assert Payment.objects.get(kind="refund").status == "succeeded"
    assert published == []


# --- dashboard refunds and disputes before their charge is settled here ----------------------
@pytest.fixture
def not_created_charge(customer, make_method, monkeypatch):
    """A charge whose create call never answered, failed `not_created` by reconciliation (the
    gateway's search did not find it then), that did succeed at the gateway (`ch_test_<id>`)."""
    payment = services.payment_charge_begin(
        user=customer,
        payment_method_id=make_method(customer).pk,
        order_id=uuid.uuid4(),
        amount_cents=10_000,
        currency="USD",
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with monkeypatch.context() as patch:
        patch.setattr(TestGateway, "lookup_charge", not_found)
        services.payment_reconcile_pending(older_than=timedelta(0))
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.gateway_reference) == (
        "failed",
        "not_created",
        "",
    )
    return payment


def not_found(self, **lookup):
    raise GatewayNotFound("no such charge")


def unknown(self, **lookup):
    raise GatewayError("unreachable")


def about(charge):
    return {"payment_intent": f"ch_test_{charge.pk}", "amount_cents": 10_000, "currency": "usd"}


@pytest.mark.parametrize("event_type", ["dispute.created", "refund.external"])
def test_an_event_about_a_charge_failed_not_created_settles_it_first(
    not_created_charge, webhook, published, event_type
):
    reference = "dp_early" if event_type == "dispute.created" else "re_early"

    response = webhook(event_type, gateway_reference=reference, **about(not_created_charge))

    assert response.status_code == 200, response.content
    not_created_charge.refresh_from_db()
    assert (not_created_charge.status, not_created_charge.gateway_reference) == (
        "succeeded",
        f"ch_test_{not_created_charge.pk}",
    )
    charge_event = ("payment.succeeded", not_created_charge.pk, not_created_charge.order_id)
    if event_type == "dispute.created":
        assert Dispute.objects.get().payment == not_created_charge
        assert published == [
            charge_event,
            ("payment.disputed", not_created_charge.pk, not_created_charge.order_id),
        ]
    else:
        refund = Payment.objects.get(kind="refund")
        assert (refund.parent, refund.amount_cents) == (not_created_charge, 10_000)
        assert published == [
            charge_event,
            ("payment.refunded", refund.pk, not_created_charge.order_id),
        ]


def test_an_event_whose_charge_lookup_is_unknown_is_sent_again_later(
    not_created_charge, webhook, monkeypatch, published
):
    monkeypatch.setattr(TestGateway, "lookup_charge", unknown)

    response = webhook(
        "dispute.created",
        event_id="evt_early",
        gateway_reference="dp_early",
        **about(not_created_charge),
    )

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "webhook_retry_later"
    assert not WebhookEvent.objects.filter(event_id="evt_early").exists()  # sent again later
    not_created_charge.refresh_from_db()
    assert not_created_charge.status == "failed"
    assert published == []


def test_an_event_about_a_charge_the_gateway_never_had_is_acknowledged(
    not_created_charge, webhook, monkeypatch, published, caplog
):
    monkeypatch.setattr(TestGateway, "lookup_charge", not_found)

    response = webhook("dispute.created", gateway_reference="dp_x", **about(not_created_charge))

    assert response.status_code == 200
    assert Dispute.objects.count() == 0
    assert published == []
    assert "not ours" in caplog.text


def test_an_event_about_another_intent_does_not_settle_our_unreferenced_charge(
    not_created_charge, webhook, published
):
    response = webhook(
        "dispute.created",
        gateway_reference="dp_x",
        payment_intent="ch_test_someone_else",
        amount_cents=10_000,
        currency="usd",
    )

    assert response.status_code == 200
    not_created_charge.refresh_from_db()
    assert not_created_charge.status == "failed"
    assert published == []


# --- a card saved twice through setup intents --------------------------------------------------
def confirmed_token(exp_month):
    card = CardDetails(number=MASTERCARD, exp_month=exp_month, exp_year=EXP_YEAR, cvc="321")
    return TestGateway(webhook_secret="client-side").tokenize(card).token


def test_a_second_method_for_a_saved_card_from_a_setup_intent_is_detached(
    customer, customer_client, webhook, monkeypatch
):
    customer_client.post("/api/v1/payment-methods/setup-intent/")  # makes the customer
    detached = []
    monkeypatch.setattr(TestGateway, "detach", lambda self, *, token: detached.append(token))
    first, second = confirmed_token(3), confirmed_token(4)  # the same card, two gateway methods
    customer_ref = f"cus_test_{customer.pk}"

    webhook("setup.succeeded", gateway_reference=first, customer=customer_ref)
    webhook("setup.succeeded", gateway_reference=first, customer=customer_ref)  # same method
    assert detached == []

    response = webhook("setup.succeeded", gateway_reference=second, customer=customer_ref)

    assert response.status_code == 200
    assert list(PaymentMethod.objects.values_list("gateway_token", flat=True)) == [first]
    assert detached == [second]


# --- disputes of an order ------------------------------------------------------------------------
def test_disputes_of_an_order_with_their_final_status(paid_charge, webhook, customer):
    other_order_charge = Payment.objects.create(
        user=customer,
        order_id=uuid.uuid4(),
        kind="charge",
        amount_cents=500,
        currency="USD",
        gateway="test",
        gateway_reference="ch_other",
        status="succeeded",
    )
    for reference, charge in (("dp_1", paid_charge), ("dp_2", paid_charge)):
        webhook(
            "dispute.created",
            gateway_reference=reference,
            payment_intent=charge.gateway_reference,
            failure_code="fraudulent",
        )
    webhook("dispute.created", gateway_reference="dp_3", payment_intent="ch_other")
    webhook(
        "dispute.closed",
        gateway_reference="dp_1",
        payment_intent=paid_charge.gateway_reference,
        failure_code="warning_closed",
    )

    disputes = selectors.disputes_of_order(paid_charge.order_id)

    assert [(d.gateway_reference, d.status, d.is_open) for d in disputes] == [
        ("dp_1", "warning_closed", False),
        ("dp_2", "open", True),
    ]
    assert [
        d.gateway_reference
        for d in selectors.disputes_of_order(order_id=other_order_charge.order_id)
    ] == ["dp_3"]


# --- what a customer reads -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("resource_missing", "Add the card again."),
        ("payment_method_unexpected_state", "Add the card again."),
        ("gateway_authentication_failed", "shop's payment setup failed, not your card"),
        ("gateway_permission_denied", "shop's payment setup failed, not your card"),
        ("gateway_anything_new", "shop's payment setup failed, not your card"),
        ("insufficient_funds", "insufficient funds"),
    ],
)
def test_final_errors_read_as_what_to_do(code, says):
    error = PaymentDeclined(code)
    assert error.code == code
    assert says in str(error.detail)
