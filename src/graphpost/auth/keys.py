"""graphpost's token signing key: RSA 2048, kept as a PEM file in the data directory."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "signing-key.pem"


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class SigningKey:
    private: rsa.RSAPrivateKey
    kid: str

    @property
    def public(self) -> rsa.RSAPublicKey:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        numbers = self.public.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }


def _kid(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")


def load_or_create(data_dir: Path) -> SigningKey:
    """The key in ``data_dir``; a new one (mode 0600) if there is none yet."""
    path = data_dir / KEY_FILE
    if path.exists():
        with contextlib.suppress(OSError):  # one written by an older version: make it private
            os.chmod(path, 0o600)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return SigningKey(loaded, _kid(loaded))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # first writer wins when several processes start together
    except FileExistsError:
        tmp.unlink()
        return load_or_create(data_dir)
    tmp.unlink()
    return SigningKey(key, _kid(key))
