"""User passwords: argon2id hashes (argon2-cffi), and client secrets: SHA-256 digests.

Hashing and checking a password cost tens of milliseconds of CPU: callers run them off the
event loop (``asyncio.to_thread``)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile
MAX_PASSWORD_CHARS = 256


@functools.cache
def _dummy() -> str:
    """Checked against when the user has no password, so that a missing user costs as much
    time as a wrong password (no timing oracle for which accounts exist)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _HASHER.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    """A client secret (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    """SHA-256 (hex) of a secret, code or token: what is stored instead of it."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(stored: str | None, presented: str) -> bool:
    if stored is None:
        return False
    return hmac.compare_digest(stored, digest(presented))
