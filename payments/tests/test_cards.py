import datetime as dt

import pytest

from payments.cards import brand_from_number, cvc_length, is_expired, luhn_valid, normalize_number


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("4222222222222", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("36227206271667", "diners"),
        ("3056930009020004", "diners"),
        ("3566002020360505", "jcb"),
        ("6200000000000005", "unionpay"),
        ("9999999999999995", "unknown"),
        ("5055555555554444", "unknown"),
    ],
)
def test_brand_from_number(number, brand):
    assert brand_from_number(number) == brand


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4242424242424242", True),
        ("4242424242424241", False),
        ("378282246310005", True),
        ("378282246310006", False),
        ("4000000000000002", True),
    ],
)
def test_luhn(number, valid):
    assert luhn_valid(number) is valid


def test_normalize_drops_spaces_and_dashes():
    assert normalize_number("4242 4242-4242 4242") == "4242424242424242"


def test_cvc_length_is_four_for_amex_only():
    assert (cvc_length("amex"), cvc_length("visa"), cvc_length("mastercard")) == (4, 3, 3)


def test_card_is_good_through_its_expiry_month():
    today = dt.date(2026, 11, 23)
    assert is_expired(11, 2026, today=today) is False
    assert is_expired(10, 2026, today=today) is True
    assert is_expired(1, 2027, today=today) is False
    assert is_expired(12, 2025, today=today) is True
