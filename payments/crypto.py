"""Keyed card fingerprints and Fernet encryption at rest, keys from settings.

`FIELD_ENCRYPTION_KEYS` is a list, newest first: the first key encrypts, every key decrypts, so
a key can be rotated by putting a new one in front (and `manage.py rotate_payment_keys` re-encrypts
stored values with it before the old one is dropped).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def card_fingerprint(number: str) -> str:
    """HMAC-SHA256 of the card number with a server secret: equal cards, equal fingerprints,
    and no way back to the number without the key."""
    return _keyed_hash(f"pan:{number}")


def token_fingerprint(gateway: str, gateway_fingerprint: str) -> str:
    """The fingerprint of a card we only know through the gateway's own fingerprint."""
    return _keyed_hash(f"gateway:{gateway}:{gateway_fingerprint}")


def _keyed_hash(message: str) -> str:
    key = settings.PAYMENT_FINGERPRINT_KEY.encode()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ValueError("FIELD_ENCRYPTION_KEYS is empty: at least one key is needed.")
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: bytes) -> str:
    return fernet().encrypt(plaintext).decode()


def decrypt(token: str) -> bytes:
    return fernet().decrypt(token.encode())


def reencrypt(token: str) -> str:
    """The same plaintext under the newest key."""
    return fernet().rotate(token.encode()).decode()
