"""``serve --tls``: HTTPS on the same port with a certificate made once in the data directory,
or the operator's own files."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import SRC, server_env, start_server
from tests.ports import free_port


def _names(cert: Path) -> set[str]:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def test_tls_serves_https_with_a_certificate_made_once(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", args=("--tls",))
    cert = tmp_path / "data" / "tls" / "cert.pem"
    key = tmp_path / "data" / "tls" / "key.pem"
    try:
        assert server.base.startswith("https://127.0.0.1:")
        assert {"localhost", "127.0.0.1", "::1"} <= _names(cert)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # the standard library's strict default context trusts it, by IP and by name
        context = ssl.create_default_context(cafile=str(cert))
        port = int(server.base.rsplit(":", 1)[1])
        for host in ("127.0.0.1", "localhost"):
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        with server.client() as client:
            assert client.get("/me/mailFolders/inbox").status_code == 200
        # without trusting it, a client refuses the server; plain http gets no Graph answer
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.base}/.well-known/jwks.json", timeout=5)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json", timeout=5)
        first = cert.read_bytes()
    finally:
        server.stop()
    again = start_server(tmp_path / "data", args=("--tls",))
    try:
        assert cert.read_bytes() == first  # made once, not at every start
    finally:
        again.stop()


def test_tls_with_the_operators_certificate(tmp_path: Path) -> None:
    made = start_server(tmp_path / "made", args=("--tls",))
    made.stop()
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(tmp_path / "made" / "tls" / "cert.pem", mine / "c.pem")
    shutil.copy(tmp_path / "made" / "tls" / "key.pem", mine / "k.pem")
    server = start_server(
        tmp_path / "data", GRAPHPOST_TLS_CERT=str(mine / "c.pem"),
        GRAPHPOST_TLS_KEY=str(mine / "k.pem"), GRAPHPOST_TLS="true",
    )  # fmt: skip
    try:
        response = httpx.get(
            f"{server.base}/.well-known/jwks.json",
            verify=ssl.create_default_context(cafile=str(mine / "c.pem")),
            timeout=5,
        )
        assert response.status_code == 200
        assert not (tmp_path / "data" / "tls").exists()  # nothing generated
    finally:
        server.stop()


def test_tls_settings_that_cannot_work_are_refused_clearly(tmp_path: Path) -> None:
    env = server_env(None, None)
    base = [sys.executable, "-m", "graphpost.cli.main", "serve", "--port", str(free_port())]
    data = ["--data-dir", str(tmp_path)]
    for extra, says in (
        (["--tls-cert", str(tmp_path / "c.pem")], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(tmp_path / "c"), "--tls-key", str(tmp_path / "k")], "does not exist"),
    ):
        done = subprocess.run(
            [*base, *data, *extra], capture_output=True, text=True, env=env, timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert says in done.stderr


def test_the_banner_says_what_to_trust_and_the_authority(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(None, None, PYTHONPATH=str(SRC))
    log = tmp_path / "out.txt"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "graphpost.cli.main", "serve", "--tls", "--no-smtp",
             "--port", str(port), "--data-dir", str(tmp_path / "data")],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "Create a draft" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(10)
    text = log.read_text()
    cert = tmp_path / "data" / "tls" / "cert.pem"
    assert f"trust {cert}" in text
    assert f"identity (authority): https://127.0.0.1:{port}" in text
    assert f"--cacert {cert}" in text
