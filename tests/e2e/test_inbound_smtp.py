"""Inbound SMTP with a real client (smtplib): local users' Inboxes, no open relay, limits."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage

import pytest

from tests.conftest import RunningServer, free_port
from tests.e2e.test_sending import ADELE, ALEX, inbox_items, unique
from tests.sink import wait_for


def test_mail_lands_in_the_inbox(server: RunningServer) -> None:
    subject = unique("inbound Ünïcode")
    msg = EmailMessage()
    msg["From"] = "Some One <someone@example.org>"
    msg["To"] = f"Adele <{ADELE}>"
    msg["Cc"] = ALEX
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{unique('mid')}@example.org>"
    msg["X-Origin"] = "outside"
    msg.set_content("plain version")
    msg.add_alternative("<p>html <b>version</b></p>", subtype="html")
    msg.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.ehlo("test.example.org")
        refused = client.send_message(msg, to_addrs=[ADELE, ALEX])
    assert refused == {}
    (got,) = wait_for(lambda: inbox_items(server, ADELE, subject))
    assert got["internetMessageId"] == msg["Message-ID"]
    assert got["from"]["emailAddress"] == {"name": "Some One", "address": "someone@example.org"}
    assert got["isRead"] is False and got["isDraft"] is False and got["hasAttachments"] is True
    assert got["body"]["contentType"] == "html" and "html <b>version</b>" in got["body"]["content"]
    assert got["bodyPreview"] == "html version"
    assert [r["emailAddress"]["address"] for r in got["ccRecipients"]] == [ALEX]
    with server.client() as c:
        headers = c.get(f"/me/messages/{got['id']}?$select=internetMessageHeaders").json()
        names = {h["name"] for h in headers["internetMessageHeaders"]}
        assert {"X-Origin", "Message-ID", "Subject"} <= names
        (att,) = c.get(f"/me/messages/{got['id']}/attachments").json()["value"]
        assert att["name"] == "data.csv" and att["contentType"] == "text/csv"
    assert len(inbox_items(server, ALEX, subject)) == 1


def test_not_an_open_relay(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.ehlo("x")
        client.mail("someone@example.org")
        code, text = client.rcpt("nobody@contoso.onmicrosoft.com")
        assert code == 550 and b"5.1.1" in text
        code, text = client.rcpt("victim@example.com")
        assert code == 550 and b"5.7.1" in text
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("someone@example.org", ["victim@example.com"], b"Subject: x\r\n\r\nx")


def test_smtp_command_alone(server: RunningServer) -> None:
    """`graphpost smtp` serves inbound SMTP on its own, into the same mailboxes."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "graphpost.cli.main", "smtp", "--smtp-port", str(port),
         "--data-dir", str(server.data_dir)],
        env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert f":{port}" in process.stdout.readline().decode()
        subject = unique("smtp alone")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("a@example.org", [ADELE], f"Subject: {subject}\r\n\r\nhi".encode())
        wait_for(lambda: inbox_items(server, ADELE, subject))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
