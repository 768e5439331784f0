import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from payments import services
from payments.exceptions import (
    PaymentDeclined,
    PaymentGatewayError,
    PaymentInProgress,
    PaymentMethodNotFound,
)
from payments.gateways.base import GatewayError, GatewayResult
from payments.gateways.test import TestGateway
from payments.models import Payment, PaymentMethod

from .conftest import DECLINED, INSUFFICIENT_FUNDS, MASTERCARD, PROCESSING_ERROR, SUCCESS

pytestmark = pytest.mark.django_db


def begin(user, method, order_id=None, amount_cents=2_500):
    return services.payment_charge_begin(
        user=user,
        payment_method_id=method.pk,
        order_id=order_id or uuid.uuid4(),
        amount_cents=amount_cents,
        currency="USD",
    )


def pay(user, method, order_id=None, amount_cents=2_500):
    payment = begin(user, method, order_id, amount_cents)
    result = services.payment_charge_execute(payment_id=payment.pk)
    return services.payment_settle(payment_id=payment.pk, result=result)


@pytest.mark.parametrize(
    ("number", "status", "failure_code"),
    [
        (SUCCESS, "succeeded", ""),
        (DECLINED, "failed", "card_declined"),
        (INSUFFICIENT_FUNDS, "failed", "insufficient_funds"),
        (PROCESSING_ERROR, "failed", "processing_error"),
    ],
)
def test_each_test_card_charges_as_api_md_says(customer, make_method, number, status, failure_code):
    method = make_method(customer, number)
    order_id = uuid.uuid4()

    payment = pay(customer, method, order_id)

    assert (payment.status, payment.failure_code) == (status, failure_code)
    assert payment.gateway_reference == f"ch_test_{payment.pk}"
    assert (payment.kind, payment.amount_cents, payment.currency) == ("charge", 2_500, "USD")
    assert payment.settled_at is not None
    assert services.payment_captured_cents(order_id=order_id) == (
        2_500 if status == "succeeded" else 0
    )


def test_begin_records_a_pending_charge(customer, make_method):
    method = make_method(customer)
    order_id = uuid.uuid4()

    payment = begin(customer, method, order_id, 1_999)

    payment.refresh_from_db()
    assert (payment.status, payment.order_id, payment.amount_cents) == ("pending", order_id, 1_999)
    assert (payment.user, payment.payment_method, payment.gateway) == (customer, method, "test")
    assert services.payment_captured_cents(order_id=order_id) == 0


def test_decline_then_success_with_another_card(customer, make_method):
    declined = make_method(customer, DECLINED)
    good = make_method(customer, MASTERCARD)
    order_id = uuid.uuid4()

    first = pay(customer, declined, order_id)
    second = pay(customer, good, order_id)

    assert (first.status, first.failure_code) == ("failed", "card_declined")
    assert second.status == "succeeded"
    assert services.payment_captured_cents(order_id=order_id) == 2_500
    assert Payment.objects.filter(order_id=order_id).count() == 2


def test_a_second_pending_charge_for_one_order_is_refused(customer, make_method):
    method = make_method(customer)
    order_id = uuid.uuid4()
    begin(customer, method, order_id)

    with pytest.raises(PaymentInProgress):
        begin(customer, method, order_id)

    assert Payment.objects.filter(order_id=order_id).count() == 1


def test_database_allows_one_pending_charge_per_order(customer, make_method):
    method = make_method(customer)
    first = begin(customer, method)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(
            user=customer,
            order_id=first.order_id,
            kind="charge",
            amount_cents=1,
            currency="USD",
            gateway="test",
        )


@pytest.mark.parametrize(
    "fields",
    [
        {"amount_cents": 0},
        {"status": "weird"},
        {"kind": "gift"},
        {"failure_code": "x"},
        {"currency": "usd"},
    ],
)
def test_database_check_constraints(customer, fields):
    values = {
        "user": customer,
        "order_id": uuid.uuid4(),
        "kind": "charge",
        "amount_cents": 100,
        "currency": "USD",
        "gateway": "test",
        **fields,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(**values)


def test_another_users_method_cannot_be_charged(customer, make_user, make_method):
    method = make_method(customer)
    with pytest.raises(PaymentMethodNotFound):
        begin(make_user(), method)
    assert Payment.objects.count() == 0


def test_an_expired_card_is_declined_before_the_gateway(customer, make_method):
    method = make_method(customer)
    PaymentMethod.objects.filter(pk=method.pk).update(exp_year=2001)

    with pytest.raises(PaymentDeclined) as caught:
        begin(customer, method)

    assert (caught.value.code, caught.value.status_code) == ("expired_card", 402)
    assert Payment.objects.count() == 0


def test_amount_must_be_positive(customer, make_method):
    with pytest.raises(ValueError, match="positive"):
        begin(customer, make_method(customer), amount_cents=0)


def test_settle_is_idempotent(customer, make_method):
    payment = pay(customer, make_method(customer))
    updated_at = payment.updated_at

    again = services.payment_settle(
        payment_id=payment.pk,
        result=GatewayResult(succeeded=False, gateway_reference="x", failure_code="card_declined"),
    )

    assert (again.status, again.gateway_reference, again.updated_at) == (
        "succeeded",
        f"ch_test_{payment.pk}",
        updated_at,
    )


def test_execute_of_a_settled_payment_returns_its_outcome_without_the_gateway(
    customer, make_method, monkeypatch
):
    payment = pay(customer, make_method(customer, DECLINED))

    def fail(*args, **kwargs):
        raise AssertionError("the gateway must not be asked again")

    monkeypatch.setattr(TestGateway, "charge", fail)
    assert services.payment_charge_execute(payment_id=payment.pk) == GatewayResult(
        succeeded=False, gateway_reference=f"ch_test_{payment.pk}", failure_code="card_declined"
    )


def test_a_removed_cards_pending_charge_is_looked_up_never_charged(
    customer, make_method, monkeypatch, gateway_calls, settings
):
    """The card is deleted (and detached) while its charge is pending: the charge may have
    reached the gateway, so its outcome is read there with the token it began with."""
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 4
    method = make_method(customer)
    payment = begin(customer, method)
    services.payment_method_delete(user=customer, payment_method_id=method.pk)

    def refuse(self, **kwargs):
        raise AssertionError("a deleted card must not be charged")

    monkeypatch.setattr(TestGateway, "charge", refuse)
    lookups = gateway_calls("lookup_charge")

    result = services.payment_charge_execute(payment_id=payment.pk)

    assert result.succeeded is True
    assert lookups == [
        {
            "idempotency_key": str(payment.pk),
            "gateway_reference": "",
            "token": method.gateway_token,
            "timeout": 4,
        }
    ]


def test_the_gateway_is_called_with_the_payment_id_as_idempotency_key(
    customer, make_method, gateway_calls, settings
):
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 7.5
    calls = gateway_calls("charge")
    method = make_method(customer)
    payment = begin(customer, method)

    services.payment_charge_execute(payment_id=payment.pk)

    assert calls == [
        {
            "token": method.gateway_token,
            "amount_cents": 2_500,
            "currency": "USD",
            "idempotency_key": str(payment.pk),
            "timeout": 7.5,
            "customer_present": True,
            "description": "",
            "metadata": {
                "payment_id": str(payment.pk),
                "order_id": str(payment.order_id),
                "order_number": "",
            },
            "receipt_email": "",
        }
    ]


@pytest.mark.django_db(transaction=True)
def test_execute_holds_no_transaction_during_the_gateway_call(customer, make_method, monkeypatch):
    payment = begin(customer, make_method(customer))
    in_transaction = []
    original = TestGateway.charge

    def spy(self, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return original(self, **kwargs)

    monkeypatch.setattr(TestGateway, "charge", spy)
    services.payment_charge_execute(payment_id=payment.pk)

    assert in_transaction == [False]


def test_crash_after_the_gateway_charged_is_settled_by_reconcile(
    customer, make_method, published, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    order_id = uuid.uuid4()
    payment = begin(customer, make_method(customer), order_id)
    services.payment_charge_execute(payment_id=payment.pk)  # the process dies before settling

    payment.refresh_from_db()
    assert payment.status == "pending"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_reconcile_pending(older_than=timedelta(0)) == 1

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert published == [("payment.succeeded", payment.pk, order_id)]


def test_gateway_timeout_leaves_the_payment_pending_and_reconcile_settles_it(
    customer, make_method, monkeypatch, published, django_capture_on_commit_callbacks
):
    method = make_method(customer)
    order_id = uuid.uuid4()
    payment = begin(customer, method, order_id)

    def timeout(self, **kwargs):
        raise GatewayError("read timeout")

    monkeypatch.setattr(TestGateway, "charge", timeout)
    monkeypatch.setattr(TestGateway, "lookup_charge", timeout)
    with pytest.raises(PaymentGatewayError) as caught:
        services.payment_charge_execute(payment_id=payment.pk)
    assert (caught.value.status_code, caught.value.code) == (502, "gateway_error")
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert services.payment_captured_cents(order_id=order_id) == 0

    # While the gateway is still down, reconcile leaves it pending.
    from datetime import timedelta

    assert services.payment_reconcile_pending(older_than=timedelta(0)) == 0
    payment.refresh_from_db()
    assert payment.status == "pending"

    # A payment younger than the reconcile delay is left to its own request.
    monkeypatch.undo()  # the gateway is back
    assert services.payment_reconcile_pending() == 0

    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_reconcile_pending(older_than=timedelta(0)) == 1

    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == ("succeeded", f"ch_test_{payment.pk}")
    assert services.payment_captured_cents(order_id=order_id) == 2_500
    assert published == [("payment.succeeded", payment.pk, order_id)]


def test_reconcile_task_runs_the_service(customer, make_method, settings):
    from payments.tasks import reconcile_pending_payments

    settings.PAYMENT_RECONCILE_AFTER_SECONDS = 0
    payment = begin(customer, make_method(customer, DECLINED))

    assert reconcile_pending_payments.delay().get() == 1

    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "card_declined")


def test_reconcile_logs_payments_unknown_for_too_long_for_a_person(
    customer, make_method, caplog, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    payment = begin(customer, make_method(customer))
    # The gateway answered once (a reference) and cannot tell the outcome since.
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - timedelta(days=2), gateway_reference="pi_processing"
    )

    def processing(self, **kwargs):
        raise GatewayError("still processing")

    monkeypatch.setattr(TestGateway, "lookup_charge", processing)
    assert services.payment_reconcile_pending() == 0

    payment.refresh_from_db()
    assert payment.status == "pending"
    assert "pending for too long" in caplog.text

    # Lookups never charge, so a day-old charge is still settled once the gateway knows.
    monkeypatch.undo()
    assert services.payment_reconcile_pending() == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_concurrent_begin_for_one_order_makes_one_pending_charge(customer, make_method):
    method = make_method(customer)
    order_id = uuid.uuid4()
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt():
        try:
            barrier.wait()
            begin(customer, method, order_id)
            outcome = "won"
        except PaymentInProgress:
            outcome = "in_progress"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["in_progress"] * (threads_count - 1) + ["won"]
    assert Payment.objects.filter(order_id=order_id, status="pending").count() == 1
