"""The card number and CVC never reach the database, a log line, a Celery message or a response.

Known numbers go through every path (saved, declined, charged, invalid, duplicate, tokenized);
then every row of every table, every SQL statement sent, every log record and every task's
arguments are searched for them."""

import logging
import re
import uuid
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments import services
from payments.gateways.base import GatewayError
from payments.gateways.test import TestGateway
from payments.models import PaymentMethod
from payments.tasks import reconcile_pending_payments

from .conftest import AMEX, DECLINED, INSUFFICIENT_FUNDS, MASTERCARD, SUCCESS, card_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/payment-methods/"
CVC = "7319"  # an Amex CVC, four digits
SECRETS = (SUCCESS, DECLINED, INSUFFICIENT_FUNDS, MASTERCARD, AMEX, "4242424242424241")


def every_row_as_text() -> str:
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT t::text FROM {quoted} AS t")  # noqa: S608 - our table names
            rows.extend(row[0] for row in cursor.fetchall())
    return "\n".join(rows)


def gateway_down(self, card, *, customer):
    raise GatewayError("connection reset by peer")


def test_card_numbers_are_nowhere(customer, customer_client, caplog, monkeypatch, settings):
    caplog.set_level(logging.DEBUG)
    # Eleven saves in a row: more than the card-testing limit allows (test_card_testing.py).
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "payment_method": "100/hour"},
    }
    task_arguments: list[str] = []

    def record_task(sender=None, args=None, kwargs=None, **extra):
        task_arguments.append(repr((args, kwargs)))

    task_prerun.connect(record_task)
    responses = []
    try:
        with CaptureQueriesContext(connection) as queries:
            post = lambda body: customer_client.post(URL, body, format="json")  # noqa: E731
            billing = {"name": "Card Holder", "address": {"city": "Oslo", "country": "NO"}}
            responses.append(post({**card_body(SUCCESS), "billing_details": billing}))
            responses.append(post(card_body(DECLINED)))
            responses.append(post(card_body(INSUFFICIENT_FUNDS)))
            responses.append(post(card_body(AMEX, cvc=CVC)))
            responses.append(post(card_body(SUCCESS)))  # duplicate
            responses.append(post(card_body("4242 4242 4242 4242")))  # duplicate, spaced
            responses.append(post(card_body("4242424242424241")))  # bad Luhn
            responses.append(post(card_body(MASTERCARD, cvc="12")))  # bad CVC
            responses.append(post(card_body(MASTERCARD, exp_year=2001)))  # expired
            responses.append(post(card_body(AMEX, cvc="123")))  # Amex needs 4 digits

            # The gateway is down: a 502, reported like a crash (with its traceback).
            with monkeypatch.context() as patch:
                patch.setattr(TestGateway, "tokenize", gateway_down)
                customer_client.raise_request_exception = False
                responses.append(post(card_body(MASTERCARD)))

            statuses = [response.status_code for response in responses]
            assert statuses == [201, 201, 201, 201, 409, 409, 400, 400, 400, 400, 502]

            # Charges: one declined, one succeeded, one left pending and reconciled by a task.
            for number in (DECLINED, SUCCESS, INSUFFICIENT_FUNDS):
                method = PaymentMethod.objects.get(last4=number[-4:])
                payment = services.payment_charge_begin(
                    user=customer,
                    payment_method_id=method.pk,
                    order_id=uuid.uuid4(),
                    amount_cents=1_000,
                    currency="USD",
                )
                if number != INSUFFICIENT_FUNDS:
                    result = services.payment_charge_execute(payment_id=payment.pk)
                    services.payment_settle(payment_id=payment.pk, result=result)
            services.payment_reconcile_pending(older_than=timedelta(0))
            reconcile_pending_payments.delay()
    finally:
        task_prerun.disconnect(record_task)

    assert task_arguments, "the task ran"
    assert "connection reset by peer" in caplog.text, "the 502's traceback was logged and searched"
    haystacks = {
        "database": every_row_as_text(),
        "sql": "\n".join(query["sql"] for query in queries.captured_queries),
        "logs": caplog.text + "\n".join(repr(vars(record)) for record in caplog.records),
        "celery": "\n".join(task_arguments),
        "responses": "\n".join(response.content.decode() for response in responses),
    }
    assert "Card Holder" not in haystacks["database"]  # billing details are encrypted too
    assert "4242" in haystacks["database"]  # last4 is kept: the search does see the rows
    for where, text in haystacks.items():
        for number in SECRETS:
            assert number not in text, f"a card number in the {where}"
            assert number[:12] not in text, f"most of a card number in the {where}"
        # Four digits turn up by chance in ids and ciphertext: look for the CVC as a value.
        assert not re.search(rf"""['"=:]\s*{CVC}\b""", text), f"the CVC in the {where}"
        if where != "responses":  # error responses name the field `card.cvc`
            assert not re.search(r"""['"]cvc['"]""", text), f"a CVC field in the {where}"


def test_validation_errors_never_echo_the_number(customer_client):
    for card in (
        {"number": "4242424242424241"},
        {"number": "9999999999999995"},
        {"number": "42424242424242424242424242424"},
        {"number": ["4242424242424242"]},
        {"number": {"x": "4242424242424242"}},
        {"cvc": "4242424242424242"},
        {"exp_month": "4242424242424242"},
    ):
        response = customer_client.post(URL, card_body(**card), format="json")
        assert response.status_code == 400
        assert "424242424242" not in response.content.decode()


def test_card_details_hide_number_and_cvc_in_repr():
    from payments.gateways.base import CardDetails

    card = CardDetails(number=SUCCESS, exp_month=1, exp_year=2040, cvc=CVC)
    assert SUCCESS not in repr(card)
    assert CVC not in repr(card)
