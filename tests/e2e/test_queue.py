"""The outbound queue: no relay (mail waits, visible), a relay that is down (deferred, then
delivered when it is back), and the size limits on both edges."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import ADELE, assert_error, send_mail, sent_id_of, status_of, unique
from tests.ports import free_port
from tests.sink import Sink, wait_for


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "srv", GRAPHPOST_MAX_MESSAGE_BYTES="20000")
    yield running
    running.stop()


def test_no_relay_keeps_mail_waiting_then_sends_it(tmp_path: Path) -> None:
    data = tmp_path / "srv"
    server = start_server(data)
    subject = unique("waits")
    try:
        r = send_mail(server, subject, "x@example.net")
        sent_id = sent_id_of(r)
        wait_for(lambda: status_of(server, sent_id)["recipients"][0]["response"])
        (rcpt,) = status_of(server, sent_id)["recipients"]
        assert rcpt["status"] == "queued" and "GRAPHPOST_SMTP_RELAY" in rcpt["response"]
    finally:
        server.stop()
    sink = Sink().start()
    try:
        server = start_server(data, relay=sink.url)
        try:
            wait_for(lambda: sink.with_subject(subject), what="the queued message")
            assert status_of(server, sent_id)["status"] == "delivered"
        finally:
            server.stop()
    finally:
        sink.stop()


def test_relay_down_then_back(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path / "srv", relay=f"smtp://127.0.0.1:{port}")
    subject = unique("down")
    try:
        sent_id = sent_id_of(send_mail(server, subject, "y@example.net"))
        wait_for(lambda: status_of(server, sent_id)["recipients"][0]["attemptCount"] >= 2)
        (rcpt,) = status_of(server, sent_id)["recipients"]
        assert rcpt["status"] == "deferred" and rcpt["statusCode"] is None
        assert "unreachable" in rcpt["response"]
        sink = Sink(port=port).start()
        try:
            wait_for(lambda: sink.with_subject(subject), what="delivery once the relay is back")
            wait_for(lambda: status_of(server, sent_id)["status"] == "delivered")
        finally:
            sink.stop()
    finally:
        server.stop()


def test_size_limits(small_server: RunningServer) -> None:
    big = base64.b64encode(b"x" * 30000).decode()
    with small_server.client() as c:
        assert_error(c.post("/me/sendMail", json={"message": {
            "toRecipients": [{"emailAddress": {"address": "x@example.net"}}],
            "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment",
                             "name": "big.bin", "contentBytes": big}]}}),
            400, "ErrorMessageSizeExceeded")  # fmt: skip
    with smtplib.SMTP("127.0.0.1", small_server.smtp_port, timeout=10) as client:
        client.ehlo("x")
        with pytest.raises(smtplib.SMTPResponseException) as caught:
            client.sendmail("a@example.org", [ADELE], b"Subject: big\r\n\r\n" + b"y" * 40000)
        assert caught.value.smtp_code == 552
