"""The payments configuration is checked: no test gateway or derived keys pass a deploy check."""

from payments import checks


def ids(messages):
    return [message.id for message in messages]


def test_the_test_gateway_and_derived_keys_are_flagged_for_production(settings):
    settings.PAYMENT_GATEWAY = "test"
    settings.DEBUG = False
    # The test settings leave both keys at their defaults, derived from SECRET_KEY.
    assert ids(checks.check_production_payments()) == [
        "payments.W001",
        "payments.E003",
        "payments.E003",
    ]
    assert checks.check_gateway() == []


def test_a_configured_stripe_gateway_passes(settings):
    from cryptography.fernet import Fernet

    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    settings.PAYMENT_FINGERPRINT_KEY = "k"
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert checks.check_gateway() == []
    assert checks.check_production_payments() == []


def test_stripe_without_its_key_and_unknown_gateways_are_errors(settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = ""
    assert ids(checks.check_gateway()) == ["payments.E002"]
    settings.PAYMENT_GATEWAY = "paypal"
    assert ids(checks.check_gateway()) == ["payments.E001"]
