"""graphpost's token signing keys: RSA 2048 PEM files in the data directory.

The current key is ``signing-key.pem``. ``graphpost keys rotate`` moves it to
``keys/<unix-ms>.pem`` (the moment it was retired) and writes a new current key. A retired key
stays published in the JWKS and accepted for verification until every token it can have signed
has expired: its retirement + the longest token lifetime + the verification leeway. A
``KeySet`` notices a rotation made by another process without a restart: it looks at the files
again (one ``stat`` each) at most once a second when it signs or publishes, and when a token
names a key id it does not know.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "signing-key.pem"
RETIRED_DIR = "keys"
LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf, and kept on a retired key's window
_RELOAD_EVERY = 1.0  # seconds between two looks at the key files


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
            "x5t": self.kid,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }


@dataclass(frozen=True)
class PublishedKey:
    """A key that verifies tokens: the current one (``retired_ms`` None) or a retired one,
    accepted until ``accepted_until_ms``."""

    key: SigningKey
    public: rsa.RSAPublicKey
    retired_ms: int | None
    accepted_until_ms: int | None


def _kid(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")


def _read(path: Path) -> SigningKey:
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return SigningKey(loaded, _kid(loaded))


def _new_pem() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key, pem


def _private_temp(path: Path, pem: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp


def load_or_create(data_dir: Path) -> SigningKey:
    """The current key in ``data_dir``; a new one (mode 0600) if there is none yet."""
    path = data_dir / KEY_FILE
    if path.exists():
        with contextlib.suppress(OSError):  # one written by an older version: make it private
            os.chmod(path, 0o600)
        return _read(path)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key, pem = _new_pem()
    tmp = _private_temp(path, pem)
    try:
        os.link(tmp, path)  # first writer wins when several processes start together
    except FileExistsError:
        tmp.unlink()
        return load_or_create(data_dir)
    tmp.unlink()
    return SigningKey(key, _kid(key))


def rotate(
    data_dir: Path, *, max_lifetime: int, clock: Callable[[], float] = time.time
) -> SigningKey:
    """Retire the current key (kept under ``keys/<unix-ms>.pem``), make a new current one, and
    delete retired keys whose window is over. Returns the new key."""
    load_or_create(data_dir)
    retired = data_dir / RETIRED_DIR
    retired.mkdir(mode=0o700, exist_ok=True)
    ms = int(clock() * 1000)
    while True:
        try:
            os.link(data_dir / KEY_FILE, retired / f"{ms}.pem")
            break
        except FileExistsError:
            ms += 1
    key, pem = _new_pem()
    os.replace(_private_temp(data_dir / KEY_FILE, pem), data_dir / KEY_FILE)
    now_ms = int(clock() * 1000)
    for path in retired.glob("*.pem"):
        with contextlib.suppress(ValueError, OSError):
            if int(path.stem) + window_ms(max_lifetime) <= now_ms:
                path.unlink()
    return SigningKey(key, _kid(key))


def window_ms(max_lifetime: int) -> int:
    """How long a retired key is kept: every token it signed has expired by then."""
    return (max_lifetime + LEEWAY_SECONDS) * 1000


class KeySet:
    """The current signing key and the retired keys still accepted, of one data directory
    (or one fixed key, for tests and tools: ``KeySet.of``)."""

    def __init__(
        self,
        data_dir: Path | None,
        *,
        max_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
        fixed: SigningKey | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.max_lifetime = max_lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._looked = 0.0  # monotonic time of the last look at the files
        self._stamp: tuple[int, ...] = ()
        self._keys: dict[str, PublishedKey] = {}
        if fixed is not None:
            self._current = fixed
            self._keys = {fixed.kid: PublishedKey(fixed, fixed.public, None, None)}
        else:
            assert data_dir is not None
            self._current = load_or_create(data_dir)
            self._load()

    @classmethod
    def of(cls, key: SigningKey, *, max_lifetime: int = 3600) -> KeySet:
        return cls(None, fixed=key, max_lifetime=max_lifetime)

    # --------------------------------------------------------------- reading the files

    def _files_stamp(self) -> tuple[int, ...]:
        assert self.data_dir is not None
        out: list[int] = []
        for path in (self.data_dir / KEY_FILE, self.data_dir / RETIRED_DIR):
            try:
                st = path.stat()
                out += [st.st_ino, st.st_mtime_ns, st.st_size]
            except OSError:
                out += [0, 0, 0]
        return tuple(out)

    def _load(self) -> None:
        assert self.data_dir is not None
        self._stamp = self._files_stamp()
        current = load_or_create(self.data_dir)
        keys = {current.kid: PublishedKey(current, current.public, None, None)}
        retired_dir = self.data_dir / RETIRED_DIR
        now_ms = int(self._clock() * 1000)
        if retired_dir.is_dir():
            for path in sorted(retired_dir.glob("*.pem"), reverse=True):
                try:
                    retired_ms = int(path.stem)
                    until = retired_ms + window_ms(self.max_lifetime)
                    if until <= now_ms:
                        continue
                    key = _read(path)
                except (ValueError, OSError):
                    continue  # a file being written, or not ours
                if key.kid not in keys:
                    keys[key.kid] = PublishedKey(key, key.public, retired_ms, until)
        self._current, self._keys = current, keys

    def refresh(self, *, force: bool = False) -> None:
        """Look at the key files again if a second has passed since the last look (``force``:
        also when nothing seems to have changed, still at most once a second)."""
        if self.data_dir is None:
            return
        now = time.monotonic()
        if now - self._looked < _RELOAD_EVERY:
            return
        with self._lock:
            if now - self._looked < _RELOAD_EVERY:
                return
            self._looked = now
            if force or self._files_stamp() != self._stamp:
                self._load()

    # --------------------------------------------------------------- using the keys

    @property
    def current(self) -> SigningKey:
        """The key new tokens are signed with."""
        self.refresh()
        return self._current

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The key that verifies tokens of ``kid``, while it is accepted; None otherwise."""
        found = self._keys.get(kid)
        if found is None:
            self.refresh(force=True)
            found = self._keys.get(kid)
            if found is None:
                return None
        if found.accepted_until_ms is not None and found.accepted_until_ms <= int(
            self._clock() * 1000
        ):
            return None
        return found.public

    def published(self) -> list[PublishedKey]:
        """The keys of the JWKS: the current one first, then the retired ones still accepted."""
        self.refresh()
        now_ms = int(self._clock() * 1000)
        return [
            k
            for k in self._keys.values()
            if k.accepted_until_ms is None or k.accepted_until_ms > now_ms
        ]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.key.jwk() for k in self.published()]}
