import uuid
from datetime import timedelta

import pytest

from payments import services
from payments.exceptions import PaymentGatewayError, RefundExceedsCaptured
from payments.gateways.base import GatewayError
from payments.gateways.test import TestGateway
from payments.models import Payment

pytestmark = pytest.mark.django_db


def refund(order_id, amount_cents, user=None):
    payment = services.payment_refund_begin(order_id=order_id, amount_cents=amount_cents, user=user)
    result = services.payment_refund_execute(payment_id=payment.pk)
    return services.payment_settle(payment_id=payment.pk, result=result)


def test_partial_refunds_up_to_the_captured_total_and_not_past_it(paid_charge, staff):
    order_id = paid_charge.order_id

    first = refund(order_id, 3_000, staff)
    second = refund(order_id, 6_999, staff)
    assert services.payment_captured_cents(order_id=order_id) == 1

    with pytest.raises(RefundExceedsCaptured) as caught:
        services.payment_refund_begin(order_id=order_id, amount_cents=2, user=staff)
    assert caught.value.refundable_cents == 1
    assert caught.value.items[0].attr == "amount_cents"
    assert Payment.objects.filter(kind="refund").count() == 2

    last = refund(order_id, 1, staff)
    assert services.payment_captured_cents(order_id=order_id) == 0
    for payment in (first, second, last):
        assert (payment.kind, payment.status, payment.parent_id) == (
            "refund",
            "succeeded",
            paid_charge.pk,
        )
        assert payment.user == paid_charge.user
        assert payment.initiated_by == staff
        assert payment.gateway_reference == f"re_test_{payment.pk}"
    with pytest.raises(RefundExceedsCaptured):
        services.payment_refund_begin(order_id=order_id, amount_cents=1, user=staff)


def test_a_full_refund_at_once(paid_charge):
    payment = refund(paid_charge.order_id, 10_000)
    assert payment.status == "succeeded"
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 0


def test_more_than_captured_is_refused_and_nothing_written(paid_charge):
    with pytest.raises(RefundExceedsCaptured) as caught:
        services.payment_refund_begin(order_id=paid_charge.order_id, amount_cents=10_001, user=None)
    assert caught.value.refundable_cents == 10_000
    assert caught.value.code == "refund_exceeds_captured"
    assert caught.value.status_code == 400
    assert Payment.objects.filter(kind="refund").count() == 0


def test_nothing_captured_nothing_refunded(customer):
    with pytest.raises(RefundExceedsCaptured) as caught:
        services.payment_refund_begin(order_id=uuid.uuid4(), amount_cents=1, user=None)
    assert caught.value.refundable_cents == 0


def test_pending_refunds_count_against_what_is_left(paid_charge):
    services.payment_refund_begin(order_id=paid_charge.order_id, amount_cents=9_000, user=None)
    with pytest.raises(RefundExceedsCaptured):
        services.payment_refund_begin(order_id=paid_charge.order_id, amount_cents=1_001, user=None)
    # ...but captured money only drops when a refund succeeds.
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 10_000


def test_a_failed_refund_frees_its_amount_again(paid_charge, monkeypatch):
    from payments.gateways.base import GatewayResult

    monkeypatch.setattr(
        TestGateway,
        "refund",
        lambda self, **kw: GatewayResult(False, "re_x", "charge_disputed"),
    )
    failed = refund(paid_charge.order_id, 10_000)
    assert (failed.status, failed.failure_code) == ("failed", "charge_disputed")
    monkeypatch.undo()

    assert refund(paid_charge.order_id, 10_000).status == "succeeded"


def test_refund_timeout_stays_pending_until_reconcile(
    paid_charge, monkeypatch, published, django_capture_on_commit_callbacks
):
    pending = services.payment_refund_begin(
        order_id=paid_charge.order_id, amount_cents=4_000, user=None
    )

    def down(self, **kwargs):
        raise GatewayError("connection reset")

    monkeypatch.setattr(TestGateway, "refund", down)
    with pytest.raises(PaymentGatewayError):
        services.payment_refund_execute(payment_id=pending.pk)
    pending.refresh_from_db()
    assert pending.status == "pending"
    monkeypatch.undo()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_reconcile_pending(older_than=timedelta(0)) == 1

    pending.refresh_from_db()
    assert pending.status == "succeeded"
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 6_000
    assert published == [("payment.refunded", pending.pk, paid_charge.order_id)]


def test_refund_amount_must_be_positive(paid_charge):
    with pytest.raises(ValueError, match="positive"):
        services.payment_refund_begin(order_id=paid_charge.order_id, amount_cents=0, user=None)
