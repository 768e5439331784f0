"""Keyed card fingerprints and Fernet encryption at rest, keys from settings.

`FIELD_ENCRYPTION_KEYS` is a list, newest first: the first key encrypts, every key decrypts, so
a key can be rotated by putting a new one in front (and `manage.py rotate_payment_keys` re-encrypts
stored values with it before the old one is dropped).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# The salts of the keys that settings derive from SECRET_KEY when the variables are unset.
FINGERPRINT_KEY_SALT = "payments.card-fingerprint"
FIELD_ENCRYPTION_KEY_SALT = "payments.field-encryption"


def derive_key(salt: str, secret_key: str) -> str:
    """A key derived from SECRET_KEY for one use (its salt): the development default of the
    payment keys, which `check --deploy` refuses (payments/checks.py)."""
    digest = hashlib.sha256(f"{salt}:{secret_key}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def validate_payment_keys(fingerprint_key: str, encryption_keys: Sequence[str]) -> None:
    """Refuse, at start-up, payment keys that are set but hold nothing, or are no Fernet keys."""
    if not fingerprint_key.strip():
        raise ImproperlyConfigured(
            "PAYMENT_FINGERPRINT_KEY is set but empty: card fingerprints would be HMACs under an "
            "empty key. Set it to a long random string (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'), or leave it unset in development."
        )
    if not encryption_keys or any(not key.strip() for key in encryption_keys):
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is set but holds an empty key: billing details could not be "
            "encrypted. Set it to Fernet keys separated by commas, newest first (python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), or leave "
            "it unset in development."
        )
    for position, key in enumerate(encryption_keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} of {len(encryption_keys)} is not a Fernet "
                "key (32 url-safe base64-encoded bytes, as Fernet.generate_key() makes)."
            ) from None


def card_fingerprint(number: str) -> str:
    """HMAC-SHA256 of the card number with a server secret: equal cards, equal fingerprints,
    and no way back to the number without the key."""
    return _keyed_hash(f"pan:{number}")


def token_fingerprint(gateway: str, gateway_fingerprint: str) -> str:
    """The fingerprint of a card we only know through the gateway's own fingerprint."""
    return _keyed_hash(f"gateway:{gateway}:{gateway_fingerprint}")


def _keyed_hash(message: str) -> str:
    key = settings.PAYMENT_FINGERPRINT_KEY
    if not key:  # settings refuse one at start-up; an override must not slip through either
        raise ImproperlyConfigured("PAYMENT_FINGERPRINT_KEY is empty.")
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


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
