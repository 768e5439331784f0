"""The payments configuration is checked: no test gateway or derived keys pass a deploy check."""

from payments import checks


def ids(messages):
    return [message.id for message in messages]


def test_the_test_gateway_and_derived_keys_are_flagged_for_production(settings, monkeypatch):
    settings.PAYMENT_GATEWAY = "test"
    monkeypatch.delenv("PAYMENT_FINGERPRINT_KEY", raising=False)
    monkeypatch.delenv("FIELD_ENCRYPTION_KEYS", raising=False)
    assert ids(checks.check_production_payments()) == [
        "payments.W001",
        "payments.W002",
        "payments.W002",
    ]
    assert checks.check_gateway() == []


def test_a_configured_stripe_gateway_passes(settings, monkeypatch):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    monkeypatch.setenv("PAYMENT_FINGERPRINT_KEY", "k")
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", "k")
    assert checks.check_gateway() == []
    assert checks.check_production_payments() == []


def test_stripe_without_its_key_and_unknown_gateways_are_errors(settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = ""
    assert ids(checks.check_gateway()) == ["payments.E002"]
    settings.PAYMENT_GATEWAY = "paypal"
    assert ids(checks.check_gateway()) == ["payments.E001"]
