"""Card testing at the till: pay attempts are limited by declines, per user and per address
(payments/throttles.py, `THROTTLE_PAYMENT_DECLINE`)."""

import pytest

from conftest import client_for

from .test_pay_and_refund import method_for

pytestmark = pytest.mark.django_db


# --- paying: declines are limited ---------------------------------------------------------------


@pytest.fixture
def pending_orders(place_order, make_product):
    def make(user, count):
        product = make_product(price_cents=1000, on_hand=50)
        return [place_order(user, [(product, 1)]) for _ in range(count)]

    return make


def pay(client, order, method, address):
    return client.post(
        f"/api/v1/orders/{order.pk}/pay/",
        {"payment_method": str(method.pk)},
        format="json",
        REMOTE_ADDR=address,
    )


def test_pay_declines_are_limited_per_user_and_per_address(
    make_user, throttle_rates, pending_orders
):
    throttle_rates(payment_decline="2/hour")
    mallory = make_user(email="mallory@example.com")
    client = client_for(mallory)
    declined = method_for(mallory, "4000000000000002")
    good = method_for(mallory)
    orders = pending_orders(mallory, 4)
    assert pay(client, orders[0], declined, "10.0.0.7").status_code == 402
    assert pay(client, orders[0], declined, "10.0.0.7").status_code == 402
    refused = pay(client, orders[0], good, "10.0.0.7")
    assert refused.status_code == 429  # before the gateway is asked: no payment row for it
    assert refused.json()["errors"][0]["code"] == "throttled"
    assert int(refused["Retry-After"]) > 0
    assert pay(client, orders[1], good, "10.0.0.99").status_code == 429  # same user elsewhere

    # Another customer from another address pays as usual, as often as they like.
    honest = make_user(email="honest@example.com")
    theirs = pending_orders(honest, 3)
    card = method_for(honest)
    for order in theirs:
        assert pay(client_for(honest), order, card, "10.0.0.9").status_code == 200


def test_successful_payments_never_count_against_a_customer(
    customer, throttle_rates, pending_orders
):
    throttle_rates(payment_decline="1/hour")
    card = method_for(customer)
    for order in pending_orders(customer, 3):
        assert pay(client_for(customer), order, card, "10.0.0.5").status_code == 200
