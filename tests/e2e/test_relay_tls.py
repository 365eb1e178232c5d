"""The relay over TLS: STARTTLS with AUTH, and implicit TLS (smtps://), with real aiosmtpd."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import start_server
from tests.mail_api import send_mail, unique
from tests.ports import free_port
from tests.sink import SinkHandler, wait_for


def tls_context(tmp: Path) -> ssl.SSLContext:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


class Auth:
    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 data: Any) -> AuthResult:  # fmt: skip
        if (
            isinstance(data, LoginPassword)
            and data.login == b"relay"
            and data.password == b"s3cret"
        ):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture
def starttls_relay(tmp_path: Path) -> Iterator[tuple[Controller, SinkHandler, Auth]]:
    handler = SinkHandler()
    auth = Auth()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), tls_context=tls_context(tmp_path),
        require_starttls=True, authenticator=auth, auth_required=True,
    )  # fmt: skip
    controller.start()
    yield controller, handler, auth
    controller.stop()


def test_starttls_and_auth(tmp_path: Path, starttls_relay: Any) -> None:
    controller, handler, auth = starttls_relay
    relay = f"smtp://relay:s3cret@127.0.0.1:{controller.port}?starttls=require&verify=false"
    server = start_server(tmp_path / "srv", relay=relay)
    subject = unique("tls")
    try:
        send_mail(server, subject, "t@example.net")
        wait_for(lambda: [m for m in handler.received if m.message["subject"] == subject])
        assert auth.logins == ["relay"]
    finally:
        server.stop()


def test_implicit_tls(tmp_path: Path) -> None:
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            ssl_context=tls_context(tmp_path))  # fmt: skip
    controller.start()
    server = start_server(tmp_path / "srv",
                          relay=f"smtps://127.0.0.1:{controller.port}?verify=false")  # fmt: skip
    subject = unique("smtps")
    try:
        send_mail(server, subject, "s@example.net")
        wait_for(lambda: [m for m in handler.received if m.message["subject"] == subject])
    finally:
        server.stop()
        controller.stop()
