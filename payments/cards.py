"""Card number rules: Luhn, brand from the number (IIN ranges), expiry, CVC length.

Pure functions, no I/O. Messages never contain the number.
"""

from __future__ import annotations

import datetime as dt
import re

BRAND_LABELS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
    "unknown": "Unknown",
}
BRANDS = tuple(BRAND_LABELS)

_SEPARATORS = re.compile(r"[ \-]")
_DIGITS = re.compile(r"^[0-9]{12,19}$")


def normalize_number(raw: str) -> str:
    """Drop the spaces and dashes people type between groups."""
    return _SEPARATORS.sub("", raw)


def is_well_formed(number: str) -> bool:
    return bool(_DIGITS.match(number))


def luhn_valid(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _prefix_in(number: str, length: int, low: int, high: int) -> bool:
    return low <= int(number[:length]) <= high


def brand_from_number(number: str) -> str:
    """The card brand from its issuer identification number, or "unknown"."""
    length = len(number)
    if number.startswith("4") and length in (13, 16, 19):
        return "visa"
    if length == 16 and (_prefix_in(number, 2, 51, 55) or _prefix_in(number, 4, 2221, 2720)):
        return "mastercard"
    if length == 15 and number[:2] in ("34", "37"):
        return "amex"
    if 16 <= length <= 19 and (
        number.startswith(("6011", "65")) or _prefix_in(number, 3, 644, 649)
    ):
        return "discover"
    if 14 <= length <= 19 and (
        number.startswith(("36", "38", "39")) or _prefix_in(number, 3, 300, 305)
    ):
        return "diners"
    if 16 <= length <= 19 and _prefix_in(number, 4, 3528, 3589):
        return "jcb"
    if 16 <= length <= 19 and number.startswith("62"):
        return "unionpay"
    return "unknown"


def cvc_length(brand: str) -> int:
    return 4 if brand == "amex" else 3


def is_expired(exp_month: int, exp_year: int, *, today: dt.date) -> bool:
    """A card is good through the last day of its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)
