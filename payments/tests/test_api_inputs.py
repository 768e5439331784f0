"""Payment inputs and their documentation, as the schema fuzzing (tests/test_schema_fuzz.py)
found them wanting: `is_default: "true"` was taken as true, and the webhook's 400 was documented
without a body (it is `invalid_signature` in the one error shape)."""

from __future__ import annotations

import pytest

from payments.models import PaymentMethod

from .conftest import card_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["true", 1])
def test_is_default_must_be_a_boolean(customer_client, value):
    response = customer_client.post(
        "/api/v1/payment-methods/", {**card_body(), "is_default": value}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "is_default"
    assert not PaymentMethod.objects.exists()


def test_card_expiry_must_be_a_number(customer_client):
    response = customer_client.post(
        "/api/v1/payment-methods/", card_body(exp_month="12"), format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "card.exp_month"


def test_webhook_documents_its_400_and_signature_headers(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/payments/webhooks/{gateway}/"]["post"]
    assert "`invalid_signature`" in operation["responses"]["400"]["description"]
    assert "content" in operation["responses"]["400"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"X-Signature", "Stripe-Signature"}
