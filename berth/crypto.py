"""Encryption of secrets the control plane must store and read back (registry passwords).

Fernet (AES-CBC with an HMAC-SHA256 tag) under a key derived from SECRET_KEY
with HKDF, so a database dump alone does not reveal them. Keys derived from
SECRET_KEY_FALLBACKS still decrypt, so SECRET_KEY can be rotated; a secret
written under a key that is gone cannot be read and must be entered again.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SALT = b"berth.crypto"
INFO = b"berth stored secrets v1"


class DecryptionError(ValueError):
    """The ciphertext was not written under SECRET_KEY (or a fallback), or is damaged."""


def _derive(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@lru_cache(maxsize=8)
def _fernet(secret: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(secret), *(_derive(old) for old in fallbacks)])


def _current() -> MultiFernet:
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ())
    return _fernet(settings.SECRET_KEY, fallbacks)


def encrypt_text(text: str) -> str:
    return _current().encrypt(text.encode()).decode("ascii")


def decrypt_text(token: str) -> str:
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError(
            "cannot decrypt: written under another SECRET_KEY or damaged"
        ) from exc
