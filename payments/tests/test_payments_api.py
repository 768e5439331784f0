import uuid

import pytest

from conftest import client_for
from payments import services
from payments.exceptions import PaymentDeclined

from .conftest import DECLINED, SUCCESS

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments/"


@pytest.fixture
def history(customer, make_user, make_method):
    """For the customer: a failed and a succeeded charge and a refund; one charge of another."""
    declined, good = make_method(customer, DECLINED), make_method(customer, SUCCESS)
    order_id = uuid.uuid4()
    made = []
    for method in (declined, good):
        payment = services.payment_charge_begin(
            user=customer,
            payment_method_id=method.pk,
            order_id=order_id,
            amount_cents=4_200,
            currency="USD",
        )
        result = services.payment_charge_execute(payment_id=payment.pk)
        made.append(services.payment_settle(payment_id=payment.pk, result=result))
    refund = services.payment_refund_begin(order_id=order_id, amount_cents=200, user=None)
    made.append(refund)
    other = make_user()
    services.payment_charge_begin(
        user=other,
        payment_method_id=make_method(other).pk,
        order_id=uuid.uuid4(),
        amount_cents=100,
        currency="USD",
    )
    return made


def test_customer_sees_own_payments_newest_first(customer_client, history):
    response = customer_client.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    refund, succeeded, failed = body["results"]
    assert failed == {
        "id": str(history[0].pk),
        "order": str(history[0].order_id),
        "kind": "charge",
        "amount_cents": 4_200,
        "currency": "USD",
        "status": "failed",
        "failure_code": "card_declined",
        "created_at": failed["created_at"],
    }
    assert (succeeded["status"], refund["kind"], refund["status"]) == (
        "succeeded",
        "refund",
        "pending",
    )


def test_staff_see_all(staff_client, history):
    assert staff_client.get(URL).json()["count"] == 4


@pytest.mark.parametrize(
    ("query", "count"),
    [("status=failed", 1), ("status=pending", 1), ("kind=refund", 1), ("kind=charge", 2)],
)
def test_filters(customer_client, history, query, count):
    assert customer_client.get(f"{URL}?{query}").json()["count"] == count


def test_bad_filter_value_is_400(customer_client):
    response = customer_client.get(f"{URL}?status=lost")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "status"


@pytest.mark.parametrize("page_size", [1, 100])
def test_list_query_count_is_fixed(staff_client, history, django_assert_num_queries, page_size):
    with django_assert_num_queries(3):  # user, count, page
        response = staff_client.get(f"{URL}?page_size={page_size}")
    assert response.status_code == 200


def test_another_users_payment_is_404(history, make_user):
    stranger = client_for(make_user())
    assert stranger.get(f"{URL}{history[0].pk}/").status_code == 404


def test_owner_reads_one_payment(customer_client, history):
    response = customer_client.get(f"{URL}{history[1].pk}/")
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_payment_declined_renders_402_with_the_gateway_code():
    from drf_standardized_errors.handler import exception_handler as handler
    from rest_framework.views import APIView

    from common.exceptions import DomainError

    for code in ("card_declined", "insufficient_funds", "processing_error"):
        error = PaymentDeclined(code)
        assert isinstance(error, DomainError)
        response = handler(error, {"view": APIView(), "args": (), "kwargs": {}, "request": None})
        assert response is not None
        assert response.status_code == 402
        assert response.data["errors"][0]["code"] == code


def test_payments_of_several_orders_in_one_query(history, django_assert_num_queries):
    from payments.selectors import payment_list_for_orders

    order_id = history[0].order_id
    with django_assert_num_queries(1):
        found = payment_list_for_orders(order_ids=[order_id, uuid.uuid4()])
    assert list(found) == [order_id]
    assert [payment.pk for payment in found[order_id]] == [payment.pk for payment in history]
