import json

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from payments.crypto import card_fingerprint, decrypt, encrypt
from payments.models import PaymentMethod

from .conftest import MASTERCARD, SUCCESS

pytestmark = pytest.mark.django_db
BILLING = {"name": "Grace Hopper", "address": {"line1": "1 Navy Yard", "city": "Arlington"}}


def raw_billing_details(method: PaymentMethod) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT billing_details FROM payments_paymentmethod WHERE id = %s", [method.pk]
        )
        return str(cursor.fetchone()[0])


def test_billing_details_are_encrypted_at_rest(customer, make_method):
    method = make_method(customer, billing_details=BILLING)

    raw = raw_billing_details(method)

    for plaintext in ("Grace", "Hopper", "Navy Yard", "Arlington", "name", "{"):
        assert plaintext not in raw
    assert json.loads(decrypt(raw)) == BILLING
    assert PaymentMethod.objects.get(pk=method.pk).billing_details == BILLING


def test_each_write_has_a_fresh_ciphertext(customer, make_method):
    first = make_method(customer, SUCCESS, billing_details=BILLING)
    second = make_method(customer, MASTERCARD, billing_details=BILLING)
    assert raw_billing_details(first) != raw_billing_details(second)


def test_an_old_key_still_decrypts_after_rotation_and_the_command_re_encrypts(
    customer, make_method, settings
):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    method = make_method(customer, billing_details=BILLING)
    written_with_old = raw_billing_details(method)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert PaymentMethod.objects.get(pk=method.pk).billing_details == BILLING
    assert encrypt(b"x") != written_with_old  # new values use the new key
    Fernet(new_key.encode()).decrypt(encrypt(b"x").encode())

    call_command("rotate_payment_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    rotated = raw_billing_details(method)
    assert json.loads(Fernet(new_key.encode()).decrypt(rotated.encode())) == BILLING
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can go now
    assert PaymentMethod.objects.get(pk=method.pk).billing_details == BILLING


def test_a_value_without_its_key_does_not_decrypt(customer, make_method, settings):
    method = make_method(customer, billing_details=BILLING)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(InvalidToken):
        PaymentMethod.objects.get(pk=method.pk)


def test_no_keys_is_a_clear_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ValueError, match="FIELD_ENCRYPTION_KEYS"):
        encrypt(b"x")


def test_fingerprint_is_keyed(settings):
    before = card_fingerprint(SUCCESS)
    assert before == card_fingerprint(SUCCESS)
    assert before != card_fingerprint(MASTERCARD)
    settings.PAYMENT_FINGERPRINT_KEY = "another-key"
    assert card_fingerprint(SUCCESS) != before


def test_empty_billing_details_round_trip(customer, make_method):
    method = make_method(customer)
    assert PaymentMethod.objects.get(pk=method.pk).billing_details == {}
