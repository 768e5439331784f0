"""Reconciliation through the real Stripe gateway, answered by recorded Stripe responses
(payments/tests/stripe_recorded.py): only "Stripe has no such PaymentIntent" fails a charge
`not_created`; an outage, a rate limit, a bad key or a `processing` intent keep it pending; a
refund Stripe answered `pending` is looked up by its id; a charge left waiting for the customer
is canceled at Stripe when abandoned."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from payments import services
from payments.gateways import stripe as stripe_gateway
from payments.gateways.stripe import StripeGateway
from payments.models import Payment

from . import stripe_recorded as rec

pytestmark = pytest.mark.django_db

SEARCH = "/v1/payment_intents/search"
INTENT = f"/v1/payment_intents/{rec.INTENT_ID}"
REFUND = f"/v1/refunds/{rec.REFUND_ID}"


@pytest.fixture
def stripe_answers(monkeypatch):
    """`http = stripe_answers({(method, path): answer})`: the services' Stripe gateway answers
    with those recorded responses; `http.requests` is what Stripe received."""

    def install(responses):
        http = rec.RecordedStripe(responses)
        gateway = StripeGateway(
            secret_key="sk_test_x", webhook_secret=rec.WEBHOOK_SECRET, http_client=http
        )
        monkeypatch.setattr(stripe_gateway, "from_settings", lambda: gateway)
        return http

    return install


@pytest.fixture
def stripe_charge(customer):
    """A pending Stripe charge of the recorded PaymentIntent's money (25.00 USD), whose create
    call never answered (no reference), begun two hours ago."""
    payment = charge_of(
        customer,
        pk=uuid.UUID(rec.PAYMENT_ID),
        method_token=f"{rec.CUSTOMER_ID}/{rec.METHOD_ID}",
        description="Order SO-00042",
        order_number="SO-00042",
    )
    age(payment, hours=2)
    return payment


def charge_of(user, **fields):
    """A Stripe charge of the recorded PaymentIntent's money."""
    return Payment.objects.create(
        user=user,
        order_id=uuid.uuid4(),
        kind=Payment.Kind.CHARGE,
        amount_cents=2500,
        currency="USD",
        gateway="stripe",
        **fields,
    )


def age(payment, **delta):
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(**delta))


def reconcile(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.payment_reconcile_pending(older_than=timedelta(0))


def searched(intents):
    return (200, rec.search_result(intents, SEARCH))


@pytest.mark.parametrize(
    "answer",
    [
        rec.API_ERROR,
        rec.RATE_LIMITED,
        rec.BAD_API_KEY,
        rec.PERMISSION_DENIED,
        searched([rec.payment_intent("processing")]),
    ],
    ids=["500", "429", "401", "403", "processing"],
)
def test_a_charge_stripe_cannot_tell_about_stays_pending(
    stripe_answers, stripe_charge, settings, published, django_capture_on_commit_callbacks, answer
):
    settings.PAYMENT_RECONCILE_NOT_FOUND_SECONDS = 600
    http = stripe_answers({("get", SEARCH): answer})

    assert reconcile(django_capture_on_commit_callbacks) == 0

    stripe_charge.refresh_from_db()
    assert (stripe_charge.status, stripe_charge.failure_code) == ("pending", "")
    assert published == []
    assert http.requests  # it was asked
    assert {request["method"] for request in http.requests} == {"get"}  # never created


def test_a_charge_stripe_has_no_record_of_fails_not_created_once_old_enough(
    stripe_answers, stripe_charge, settings, published, django_capture_on_commit_callbacks
):
    settings.PAYMENT_RECONCILE_NOT_FOUND_SECONDS = 600
    stripe_answers({("get", SEARCH): searched([])})
    age(stripe_charge, seconds=300)

    assert reconcile(django_capture_on_commit_callbacks) == 0  # maybe not searchable yet
    stripe_charge.refresh_from_db()
    assert stripe_charge.status == "pending"

    age(stripe_charge, seconds=601)
    assert reconcile(django_capture_on_commit_callbacks) == 1
    stripe_charge.refresh_from_db()
    assert (stripe_charge.status, stripe_charge.failure_code) == ("failed", "not_created")
    assert published == [("payment.failed", stripe_charge.pk, stripe_charge.order_id)]


def test_a_charge_stripe_answered_for_is_not_failed_when_its_intent_is_missing(
    stripe_answers, stripe_charge, django_capture_on_commit_callbacks
):
    """Only a charge whose create call never answered can be `not_created`."""
    Payment.objects.filter(pk=stripe_charge.pk).update(gateway_reference=rec.INTENT_ID)
    stripe_answers({("get", INTENT): rec.resource_missing("payment_intent", rec.INTENT_ID)})

    assert reconcile(django_capture_on_commit_callbacks) == 0
    stripe_charge.refresh_from_db()
    assert stripe_charge.status == "pending"


def test_a_charge_that_succeeded_at_stripe_is_settled_succeeded(
    stripe_answers, stripe_charge, published, django_capture_on_commit_callbacks
):
    http = stripe_answers({("get", SEARCH): searched([rec.payment_intent("succeeded")])})

    assert reconcile(django_capture_on_commit_callbacks) == 1

    stripe_charge.refresh_from_db()
    assert (stripe_charge.status, stripe_charge.gateway_reference) == ("succeeded", rec.INTENT_ID)
    assert published == [("payment.succeeded", stripe_charge.pk, stripe_charge.order_id)]
    (sent,) = http.requests
    assert sent["params"]["query"] == [f"metadata['payment_id']:'{rec.PAYMENT_ID}'"]


def test_a_charge_stating_other_money_at_stripe_stays_pending(
    stripe_answers, stripe_charge, django_capture_on_commit_callbacks
):
    other = rec.payment_intent("succeeded", amount=9900, amount_received=9900)
    stripe_answers({("get", SEARCH): searched([other])})

    assert reconcile(django_capture_on_commit_callbacks) == 0
    stripe_charge.refresh_from_db()
    assert stripe_charge.status == "pending"


def test_an_abandoned_authentication_is_canceled_at_stripe(
    stripe_answers, stripe_charge, settings, published, django_capture_on_commit_callbacks
):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30  # abandoned after an hour; it is two hours old
    http = stripe_answers(
        {
            ("get", SEARCH): searched([rec.requires_action()]),
            ("post", f"{INTENT}/cancel"): (200, rec.payment_intent("canceled")),
        }
    )

    assert reconcile(django_capture_on_commit_callbacks) == 1

    stripe_charge.refresh_from_db()
    assert (stripe_charge.status, stripe_charge.failure_code, stripe_charge.client_secret) == (
        "failed",
        "authentication_abandoned",
        "",
    )
    assert stripe_charge.gateway_reference == rec.INTENT_ID
    assert [request["path"] for request in http.requests] == [SEARCH, f"{INTENT}/cancel"]
    assert published == [("payment.failed", stripe_charge.pk, stripe_charge.order_id)]


def test_an_abandoned_authentication_completed_meanwhile_is_a_success(
    stripe_answers, stripe_charge, settings, published, django_capture_on_commit_callbacks
):
    """The customer authenticated between the lookup and the cancel: Stripe refuses to cancel
    and the intent's state (succeeded) is what is settled."""
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30
    stripe_answers(
        {
            ("get", SEARCH): searched([rec.requires_action()]),
            ("post", f"{INTENT}/cancel"): rec.cannot_cancel("succeeded"),
            ("get", INTENT): (200, rec.payment_intent("succeeded")),
        }
    )

    assert reconcile(django_capture_on_commit_callbacks) == 1

    stripe_charge.refresh_from_db()
    assert stripe_charge.status == "succeeded"
    assert published == [("payment.succeeded", stripe_charge.pk, stripe_charge.order_id)]


def test_a_refund_stripe_answered_pending_stays_pending_then_is_looked_up_by_id(
    customer, stripe_answers, published, django_capture_on_commit_callbacks
):
    charge = charge_of(
        customer,
        gateway_reference=rec.INTENT_ID,
        status=Payment.Status.SUCCEEDED,
        settled_at=timezone.now(),
    )
    refund = Payment.objects.create(
        pk=uuid.UUID(rec.REFUND_PAYMENT_ID),
        user=customer,
        order_id=charge.order_id,
        kind=Payment.Kind.REFUND,
        amount_cents=700,
        currency="USD",
        gateway="stripe",
        parent=charge,
    )
    http = stripe_answers(
        {
            ("post", "/v1/refunds"): (200, rec.refund("pending")),
            ("get", REFUND): [(200, rec.refund("pending")), (200, rec.refund("succeeded"))],
        }
    )

    result = services.payment_refund_execute(payment_id=refund.pk)
    assert result.pending
    refund = services.payment_settle(payment_id=refund.pk, result=result)
    assert (refund.status, refund.gateway_reference) == ("pending", rec.REFUND_ID)

    assert reconcile(django_capture_on_commit_callbacks) == 0  # still pending at Stripe
    assert reconcile(django_capture_on_commit_callbacks) == 1

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert published == [("payment.refunded", refund.pk, charge.order_id)]
    assert [(request["method"], request["path"]) for request in http.requests] == [
        ("post", "/v1/refunds"),
        ("get", REFUND),
        ("get", REFUND),
    ]
