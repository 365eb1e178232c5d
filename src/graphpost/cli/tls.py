"""``serve --tls``: the certificate HTTPS is served with.

Without ``--tls-cert``/``--tls-key``, a self-signed certificate is made once into
``$GRAPHPOST_DATA_DIR/tls/`` (``cert.pem``, ``key.pem``, the key readable by its owner only)
for ``localhost``, ``127.0.0.1``, ``::1`` and the configured host and public URL's host. It is
its own trust anchor: clients trust ``cert.pem`` (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``,
``NODE_EXTRA_CA_CERTS``). It is made again when it has less than 30 days left or when it does
not name a host it must.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from graphpost.errors import InvalidInputError
from graphpost.settings import Settings

VALID_DAYS = 825
RENEW_DAYS = 30
_Name = x509.DNSName | x509.IPAddress


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path
    generated: bool  # made by graphpost (the banner says to trust it)


def _names(settings: Settings) -> list[_Name]:
    hosts = ["localhost", "127.0.0.1", "::1", settings.host]
    if settings.public_url:
        hosts.append(urlsplit(settings.public_url).hostname or "")
    names: list[_Name] = []
    for host in hosts:
        if not host or host in ("0.0.0.0", "::"):  # noqa: S104 - a listen address, not a name
            continue
        try:
            name: _Name = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host.lower())
        if name not in names:
            names.append(name)
    return names


def _still_good(cert_path: Path, key_path: Path, names: list[_Name]) -> bool:
    """The pair on disk matches, names every host and has more than RENEW_DAYS left."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    if key.public_key() != cert.public_key():
        return False  # a crash between the two writes
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > dt.timedelta(days=RENEW_DAYS) and all(n in san for n in names)


def _make(names: list[_Name]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphpost (self-signed)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    """Written whole or not at all (a reader never sees half a file)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def tls_files(settings: Settings) -> TlsFiles:
    """The certificate and key to serve HTTPS with: the configured files, checked, or the
    generated pair (made or renewed here)."""
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise InvalidInputError("--tls-cert and --tls-key go together.")
        for what, path in (("certificate", settings.tls_cert), ("key", settings.tls_key)):
            if not path.is_file():
                raise InvalidInputError(f"The TLS {what} file {path} does not exist.")
        return TlsFiles(settings.tls_cert, settings.tls_key, generated=False)
    folder = settings.data_dir / "tls"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    names = _names(settings)
    if not _still_good(cert, key, names):
        cert_pem, key_pem = _make(names)
        _write(key, key_pem, 0o600)
        _write(cert, cert_pem, 0o644)
    return TlsFiles(cert, key, generated=True)
