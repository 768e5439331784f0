"""Card testing: saving cards is limited per user and per address, paying by declines."""

import pytest
from rest_framework.test import APIClient

from conftest import client_for

from .conftest import AMEX, DECLINED, INSUFFICIENT_FUNDS, MASTERCARD, SUCCESS, card_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/payment-methods/"


def save(client: APIClient, number: str, address: str) -> int:
    body = card_body(number)
    response = client.post(URL, body, format="json", REMOTE_ADDR=address)
    if response.status_code == 429:
        assert int(response["Retry-After"]) > 0
        assert response.json()["errors"][0]["code"] == "throttled"
    return int(response.status_code)


def test_saving_cards_is_limited_per_user_and_per_address(make_user, throttle_rates):
    throttle_rates(payment_method="3/hour")
    mallory = client_for(make_user(email="mallory@example.com"))
    cards = (SUCCESS, MASTERCARD, DECLINED, INSUFFICIENT_FUNDS)
    answers = [save(mallory, number, "10.0.0.7") for number in cards]
    assert answers == [201, 201, 201, 429]
    # A second account from the same address is no way round it...
    accomplice = client_for(make_user(email="accomplice@example.com"))
    assert save(accomplice, SUCCESS, "10.0.0.7") == 429
    # ...nor is a second address for the same account.
    assert save(mallory, AMEX, "10.0.0.8") == 429
    # Everyone else saves cards as usual.
    honest = client_for(make_user(email="honest@example.com"))
    assert save(honest, SUCCESS, "10.0.0.9") == 201


def test_listing_and_deleting_cards_are_not_limited_by_it(customer, throttle_rates):
    throttle_rates(payment_method="1/hour")
    client = client_for(customer)
    assert save(client, SUCCESS, "10.0.0.7") == 201
    for _ in range(3):
        assert client.get(URL, REMOTE_ADDR="10.0.0.7").status_code == 200
