"""One gateway customer per user; saving cards through a setup intent (the browser's POST and
the gateway's `setup.succeeded` webhook, in either order); declined cards; deleted cards are
detached at the gateway."""

import pytest

from conftest import client_for
from payments import services
from payments.exceptions import DuplicatePaymentMethod, PaymentDeclined, PaymentGatewayError
from payments.gateways.base import CardDetails, CardRefused, GatewayError
from payments.gateways.test import TestGateway
from payments.models import GatewayCustomer, PaymentMethod, WebhookEvent

from .conftest import EXP_YEAR, MASTERCARD, SUCCESS, card_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/payment-methods/"
SETUP_URL = "/api/v1/payment-methods/setup-intent/"


def confirmed_token(number=MASTERCARD):
    """A method as Stripe.js hands it over after `confirmSetup` (the test gateway's token)."""
    card = CardDetails(number=number, exp_month=3, exp_year=EXP_YEAR, cvc="321")
    return TestGateway(webhook_secret="client-side").tokenize(card).token


@pytest.fixture
def customers_made(gateway_calls):
    return gateway_calls("customer_create")


def test_one_gateway_customer_per_user_reused_for_every_card(
    customer, make_user, make_method, customers_made
):
    make_method(customer, SUCCESS)
    make_method(customer, MASTERCARD)
    services.payment_setup_intent_create(user=customer)
    other = make_user()
    make_method(other, SUCCESS)

    assert customers_made == [
        {"email": customer.email, "user_id": str(customer.pk)},
        {"email": other.email, "user_id": str(other.pk)},
    ]
    assert list(GatewayCustomer.objects.values_list("user", "gateway", "customer_id")) == [
        (customer.pk, "test", f"cus_test_{customer.pk}"),
        (other.pk, "test", f"cus_test_{other.pk}"),
    ]


def test_every_card_is_attached_to_the_users_customer(customer, make_method, gateway_calls):
    token = confirmed_token()
    tokenized, attached = gateway_calls("tokenize"), gateway_calls("attach")

    make_method(customer, SUCCESS)
    services.payment_method_create(user=customer, token=token)

    expected = f"cus_test_{customer.pk}"
    assert tokenized == [{"customer": expected}]
    assert attached == [{"token": token, "customer": expected}]


def test_setup_intent_api(customer, customer_client, api_client):
    response = customer_client.post(SETUP_URL)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"client_secret", "gateway"}
    assert body["gateway"] == "test"
    assert body["client_secret"].startswith("seti_test_")
    assert "_secret_" in body["client_secret"]
    assert GatewayCustomer.objects.get().user == customer
    assert api_client.post(SETUP_URL).status_code == 401


def test_setup_intent_is_throttled_like_saving_a_card(customer, throttle_rates):
    throttle_rates(payment_method="2/hour")
    client = client_for(customer)
    assert [client.post(SETUP_URL).status_code for _ in range(3)] == [201, 201, 429]


def test_setup_intent_with_the_gateway_down_is_502(customer, monkeypatch):
    def down(self, **kwargs):
        raise GatewayError("connection refused")

    monkeypatch.setattr(TestGateway, "setup_intent_create", down)
    client = client_for(customer)
    client.raise_request_exception = False
    response = client.post(SETUP_URL)
    assert (response.status_code, response.json()["errors"][0]["code"]) == (502, "gateway_error")


def test_a_customer_the_gateway_cannot_make_is_502_and_nothing_recorded(customer, monkeypatch):
    def down(self, **kwargs):
        raise GatewayError("connection refused")

    monkeypatch.setattr(TestGateway, "customer_create", down)
    with pytest.raises(PaymentGatewayError):
        services.payment_setup_intent_create(user=customer)
    assert GatewayCustomer.objects.count() == 0


@pytest.mark.parametrize("path", ["card", "token"])
def test_a_card_the_gateway_declines_is_402_with_its_code(customer, monkeypatch, path):
    def refuse(self, *args, **kwargs):
        raise CardRefused("incorrect_cvc")

    monkeypatch.setattr(TestGateway, "tokenize" if path == "card" else "attach", refuse)
    body = card_body() if path == "card" else {"token": confirmed_token()}

    response = client_for(customer).post(URL, body, format="json")

    assert response.status_code == 402
    assert response.json()["errors"][0]["code"] == "incorrect_cvc"
    assert PaymentMethod.objects.count() == 0
    card = CardDetails(number=SUCCESS, exp_month=1, exp_year=EXP_YEAR, cvc="123")
    source = {"card": card} if path == "card" else {"token": "tok_anything"}
    with pytest.raises(PaymentDeclined) as caught:
        services.payment_method_create(user=customer, **source)
    assert caught.value.code == "incorrect_cvc"


def test_setup_succeeded_webhook_saves_the_card_for_the_customers_user(
    customer, customer_client, webhook
):
    customer_client.post(SETUP_URL)  # makes the customer
    token = confirmed_token()

    response = webhook(
        "setup.succeeded",
        event_id="evt_setup",
        gateway_reference=token,
        customer=f"cus_test_{customer.pk}",
    )

    assert response.status_code == 200, response.content
    method = PaymentMethod.objects.get()
    assert (method.user, method.gateway_token, method.last4, method.is_default) == (
        customer,
        token,
        "4444",
        True,
    )
    # The browser posts the confirmed method afterwards: the saved one, no 409.
    posted = customer_client.post(URL, {"token": token}, format="json")
    assert (posted.status_code, posted.json()["id"]) == (201, str(method.pk))
    # A replay of the webhook does nothing.
    again = webhook(
        "setup.succeeded",
        event_id="evt_setup",
        gateway_reference=token,
        customer=f"cus_test_{customer.pk}",
    )
    assert again.json() == {"received": True, "duplicate": True}
    assert PaymentMethod.objects.count() == 1


def test_setup_succeeded_after_the_browser_saved_it_is_no_409(customer, customer_client, webhook):
    token = confirmed_token()
    saved = customer_client.post(URL, {"token": token}, format="json")
    assert saved.status_code == 201

    response = webhook(
        "setup.succeeded", gateway_reference=token, customer=f"cus_test_{customer.pk}"
    )

    assert response.json() == {"received": True, "duplicate": False}
    assert [str(pk) for pk in PaymentMethod.objects.values_list("pk", flat=True)] == [
        saved.json()["id"]
    ]


def test_setup_succeeded_for_a_customer_not_ours_is_logged_and_200(webhook, caplog):
    response = webhook(
        "setup.succeeded", gateway_reference=confirmed_token(), customer="cus_someone_else"
    )
    assert response.status_code == 200
    assert PaymentMethod.objects.count() == 0
    assert WebhookEvent.objects.count() == 1
    assert "not ours" in caplog.text


def test_setup_succeeded_with_the_gateway_down_is_not_recorded_and_sent_again(
    customer, customer_client, api_client, webhook, monkeypatch
):
    customer_client.post(SETUP_URL)
    api_client.raise_request_exception = False  # a 502 is reported like a crash
    original = TestGateway.attach

    def down(self, **kwargs):
        raise GatewayError("connection refused")

    monkeypatch.setattr(TestGateway, "attach", down)
    token = confirmed_token()
    customer_id = f"cus_test_{customer.pk}"
    response = webhook(
        "setup.succeeded", event_id="evt_1", gateway_reference=token, customer=customer_id
    )
    assert response.status_code == 502
    assert WebhookEvent.objects.count() == 0

    monkeypatch.setattr(TestGateway, "attach", original)
    response = webhook(
        "setup.succeeded", event_id="evt_1", gateway_reference=token, customer=customer_id
    )
    assert response.json() == {"received": True, "duplicate": False}
    assert PaymentMethod.objects.get().gateway_token == token


def test_a_deleted_card_is_detached_at_the_gateway_after_commit(
    customer, make_method, monkeypatch, django_capture_on_commit_callbacks
):
    method = make_method(customer)
    detached = []
    monkeypatch.setattr(TestGateway, "detach", lambda self, *, token: detached.append(token))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.payment_method_delete(user=customer, payment_method_id=method.pk)
    assert detached == []  # not before the deletion commits
    for callback in callbacks:
        callback()

    assert detached == [method.gateway_token]
    assert PaymentMethod.objects.count() == 0


def test_a_gateway_error_while_detaching_is_logged_and_the_card_still_deleted(
    customer, make_method, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    method = make_method(customer)

    def down(self, *, token):
        raise GatewayError("connection refused")

    monkeypatch.setattr(TestGateway, "detach", down)
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_method_delete(user=customer, payment_method_id=method.pk)

    assert PaymentMethod.objects.count() == 0
    assert "could not detach" in caplog.text


def test_a_refused_duplicate_from_a_token_is_detached_again(customer, monkeypatch):
    """Another gateway method for a card already saved: refused, and not left on the customer."""
    services.payment_method_create(user=customer, token=confirmed_token())
    detached = []
    monkeypatch.setattr(TestGateway, "detach", lambda self, *, token: detached.append(token))
    original = TestGateway.attach

    def attach_as_new_method(self, *, token, customer):
        card = original(self, token=token, customer=customer)
        return type(card)(**{**card.__dict__, "token": "pm_second_copy"})

    monkeypatch.setattr(TestGateway, "attach", attach_as_new_method)
    saved = PaymentMethod.objects.get()
    with pytest.raises(DuplicatePaymentMethod):
        services.payment_method_create(user=customer, token=saved.gateway_token)
    assert detached == ["pm_second_copy"]
    assert PaymentMethod.objects.count() == 1
