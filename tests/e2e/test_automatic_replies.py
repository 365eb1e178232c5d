"""Automatic replies through real delivery, on both engines: a server of its own per engine
(restarted in one test), the SMTP sink as the relay, local delivery of API sends and inbound
SMTP. Each reply reaches its sender once per period, across a burst and a restart; two
mailboxes answering each other do not loop; lists, automated mail and reports get none."""

from __future__ import annotations

import smtplib
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import RunningServer, drop_pg_database, make_pg_database, start_server
from tests.mail_api import ALEX, DEMO_TENANT
from tests.sink import Sink, wait_for

SETTINGS = "MailboxSettings.ReadWrite Mail.ReadWrite Mail.Send"
SETTLE = 1.5  # seconds to wait for what must not come, after a later reply that did


class Node:
    """A server that can be restarted on the same database."""

    def __init__(self, data_dir: Path, url: str | None, sink: Sink) -> None:
        self.data_dir, self.url, self.sink = data_dir, url, sink
        self.server = start_server(data_dir, url, relay=sink.url)

    def restart(self) -> None:
        self.server.stop()
        self.server = start_server(self.data_dir, self.url, relay=self.sink.url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sink: Sink
) -> Iterator[Node]:
    admin = name = url = None
    if request.param == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
    running = Node(tmp_path_factory.mktemp(f"autoreply-{request.param}"), url, sink)
    try:
        yield running
    finally:
        running.server.stop()
        if admin is not None and name is not None:
            drop_pg_database(admin, name)


def _user(alias: str) -> str:
    return f"{alias}@{DEMO_TENANT}"


def _replies(server: RunningServer, user: str, **settings: Any) -> None:
    with server.client(server.token(user, SETTINGS)) as c:
        r = c.patch("/me/mailboxSettings", json={"automaticRepliesSetting": settings})
        assert r.status_code == 200, r.text


def _send(server: RunningServer, sender: str, to: str, subject: str) -> None:
    with server.client(server.token(sender, SETTINGS)) as c:
        r = c.post("/me/sendMail", json={"message": {
            "subject": subject, "body": {"contentType": "text", "content": "hello"},
            "toRecipients": [{"emailAddress": {"address": to}}]}})  # fmt: skip
        assert r.status_code == 202, r.text


def _inbox(server: RunningServer, user: str, subject: str) -> list[dict[str, Any]]:
    with server.client(server.token(user, SETTINGS)) as c:
        select = "subject,from,body,internetMessageHeaders,inferenceClassification"
        r = c.get("/me/mailFolders/inbox/messages", params={
            "$filter": f"subject eq '{subject}'", "$top": "100", "$select": select})  # fmt: skip
        assert r.status_code == 200, r.text
        return list(r.json()["value"])


def _smtp(server: RunningServer, sender: str, to: str, subject: str, **headers: str) -> str:
    """A message into the server by inbound SMTP; its Message-ID."""
    message_id = f"<{uuid.uuid4().hex}@example.net>"
    extra = {k.replace("_", "-"): v for k, v in headers.items()}
    head = {"From": sender or "MAILER-DAEMON@example.net", "To": to, "Subject": subject,
            "Message-ID": message_id, **extra}  # fmt: skip
    raw = "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail(sender, [to], raw.encode())
    return message_id


def _external() -> str:
    return f"ext-{uuid.uuid4().hex[:10]}@example.net"


def test_one_reply_per_sender_across_a_burst_and_a_restart(node: Node) -> None:
    adele, alex = _user("AdeleV"), ALEX
    _replies(node.server, adele, status="alwaysEnabled",
             internalReplyMessage="<p>Away until Monday</p>", externalReplyMessage="")  # fmt: skip
    subject = f"burst {uuid.uuid4().hex[:8]}"
    threads = [
        threading.Thread(target=_send, args=(node.server, alex, adele, subject)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wanted = f"Automatic reply: {subject}"
    wait_for(lambda: len(_inbox(node.server, adele, subject)) == 8, what="the burst delivered")
    wait_for(lambda: _inbox(node.server, alex, wanted), what="the automatic reply")
    time.sleep(SETTLE)
    replies = _inbox(node.server, alex, wanted)
    assert len(replies) == 1, replies
    reply = replies[0]
    assert reply["from"]["emailAddress"]["address"].lower() == adele.lower()
    assert "Away until Monday" in reply["body"]["content"]
    headers = {h["name"].lower(): h["value"] for h in reply["internetMessageHeaders"]}
    assert headers["auto-submitted"] == "auto-replied"
    assert headers["x-auto-response-suppress"] == "All"
    assert "in-reply-to" in headers
    assert reply["inferenceClassification"] == "other"  # automated: not Focused
    # Adele keeps no copy of her automatic replies (Exchange keeps none in Sent Items)
    assert not _inbox(node.server, adele, wanted)

    node.restart()
    _send(node.server, alex, adele, subject)
    wait_for(lambda: len(_inbox(node.server, adele, subject)) == 9, what="after the restart")
    time.sleep(SETTLE)
    assert len(_inbox(node.server, alex, wanted)) == 1  # answered once already this period

    # a change of the automatic replies starts a new period: Alex is answered once more
    _replies(node.server, adele, internalReplyMessage="<p>Back on Tuesday</p>")
    _send(node.server, alex, adele, subject)
    wait_for(lambda: len(_inbox(node.server, alex, wanted)) == 2, what="the new period's reply")
    _replies(node.server, adele, status="disabled")


def test_two_mailboxes_answering_each_other_do_not_loop(node: Node) -> None:
    megan, joni = _user("MeganB"), _user("JoniS")
    for who in (megan, joni):
        _replies(node.server, who, status="alwaysEnabled",
                 internalReplyMessage=f"<p>{who} is away</p>")  # fmt: skip
    subject = f"ping {uuid.uuid4().hex[:8]}"
    _send(node.server, megan, joni, subject)
    wanted = f"Automatic reply: {subject}"
    wait_for(lambda: _inbox(node.server, megan, wanted), what="Joni's automatic reply")
    time.sleep(SETTLE)
    assert len(_inbox(node.server, megan, wanted)) == 1
    # Megan's mailbox received an automatic reply: it does not answer it
    assert not _inbox(node.server, joni, f"Automatic reply: {wanted}")
    assert len(_inbox(node.server, joni, subject)) == 1
    for who in (megan, joni):
        _replies(node.server, who, status="disabled")


def test_external_senders_lists_and_automated_mail(node: Node) -> None:
    grady = _user("GradyA")
    _replies(node.server, grady, status="alwaysEnabled", externalAudience="all",
             internalReplyMessage="<p>inside</p>",
             externalReplyMessage="<p>outside</p>")  # fmt: skip
    sink = node.sink
    # an outside sender gets the external reply, through the relay
    sender = _external()
    original = _smtp(node.server, sender, grady, "from outside")
    got = wait_for(lambda: sink.messages_for(sender), what="the external reply")
    msg = got[0].message
    assert msg["Subject"] == "Automatic reply: from outside"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["In-Reply-To"] == original
    assert "outside" in msg.get_body(("html", "plain")).get_content()

    # none of these is answered
    quiet = {
        "list": _external(), "bulk": _external(), "auto": _external(), "suppress": _external(),
        "unsubscribe": _external(), "spam": _external(), "forged": _external(),
    }  # fmt: skip
    _smtp(node.server, quiet["list"], grady, "a list", List_Id="<news.example.net>")
    _smtp(node.server, quiet["bulk"], grady, "bulk", Precedence="bulk")
    _smtp(node.server, quiet["auto"], grady, "robot", Auto_Submitted="auto-generated")
    _smtp(node.server, quiet["suppress"], grady, "quiet", X_Auto_Response_Suppress="OOF")
    _smtp(node.server, quiet["unsubscribe"], grady, "promo",
          List_Unsubscribe="<mailto:leave@example.net>")  # fmt: skip
    # a filter before us found it spam, or the sender forged (answering: backscatter)
    _smtp(node.server, quiet["spam"], grady, "spam", X_Spam_Flag="YES")
    _smtp(node.server, quiet["forged"], grady, "forged",
          Authentication_Results="mx.example.org; spf=fail smtp.mailfrom=example.net")  # fmt: skip
    _smtp(node.server, "", grady, "a report from the null sender")
    daemon = f"MAILER-DAEMON@{uuid.uuid4().hex[:6]}.example.net"
    _smtp(node.server, daemon, grady, "Undeliverable: something")
    # a later sender is answered: by then the ones above would have been too
    control = _external()
    _smtp(node.server, control, grady, "control")
    wait_for(lambda: sink.messages_for(control), what="the control's reply")
    time.sleep(SETTLE)
    for address in [*quiet.values(), daemon]:
        assert not sink.messages_for(address), address
    # the list's message is in Other, a person's in Focused
    assert _inbox(node.server, grady, "a list")[0]["inferenceClassification"] == "other"
    assert _inbox(node.server, grady, "control")[0]["inferenceClassification"] == "focused"

    # externalAudience none, and contactsOnly (graphpost keeps no contacts): no outside reply;
    # a sender of the organisation still gets the internal one
    for audience in ("none", "contactsOnly"):
        _replies(node.server, grady, externalAudience=audience)
        outsider = _external()
        _smtp(node.server, outsider, grady, f"outside with {audience}")
        subject = f"inside with {audience} {uuid.uuid4().hex[:6]}"
        _send(node.server, ALEX, grady, subject)
        wanted = f"Automatic reply: {subject}"
        replies = wait_for(partial(_inbox, node.server, ALEX, wanted), what="internal reply")
        assert "inside" in replies[0]["body"]["content"]
        time.sleep(SETTLE)
        assert not sink.messages_for(outsider)
    _replies(node.server, grady, status="disabled")


def _local(stamp: datetime, zone: str, iana: str) -> dict[str, str]:
    local = stamp.astimezone(ZoneInfo(iana))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


def test_scheduled_window(node: Node) -> None:
    pradeep = _user("PradeepG")
    now = datetime.now(UTC)
    # a window that ended an hour ago (in Pacific time): nobody is answered
    _replies(node.server, pradeep, status="scheduled", externalAudience="all",
             externalReplyMessage="<p>scheduled</p>",
             scheduledStartDateTime=_local(now - timedelta(days=1), "Pacific Standard Time",
                                           "America/Los_Angeles"),
             scheduledEndDateTime=_local(now - timedelta(hours=1), "Pacific Standard Time",
                                         "America/Los_Angeles"))  # fmt: skip
    before = _external()
    _smtp(node.server, before, pradeep, "after the window")
    # a window around now (in Berlin time, given by its IANA name): answered
    _replies(node.server, pradeep,
             scheduledStartDateTime=_local(now - timedelta(hours=1), "Europe/Berlin",
                                           "Europe/Berlin"),
             scheduledEndDateTime=_local(now + timedelta(hours=1), "Europe/Berlin",
                                         "Europe/Berlin"))  # fmt: skip
    inside = _external()
    _smtp(node.server, inside, pradeep, "inside the window")
    wait_for(lambda: node.sink.messages_for(inside), what="the scheduled reply")
    time.sleep(SETTLE)
    assert not node.sink.messages_for(before)
    _replies(node.server, pradeep, status="disabled")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_flood_of_senders_is_answered_at_a_capped_rate(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path, sink: Sink
) -> None:
    """Distinct senders (forged ones cost an attacker nothing) get at most the mailbox's
    replies per minute: the rest are not answered, so a flood is not multiplied into
    backscatter."""
    admin = name = url = None
    if engine == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
    server = start_server(tmp_path, url, relay=sink.url,
                          GRAPHPOST_AUTOMATIC_REPLIES_PER_MINUTE="3")  # fmt: skip
    try:
        lynne = _user("LynneR")
        _replies(server, lynne, status="alwaysEnabled", externalAudience="all",
                 externalReplyMessage="<p>away</p>")  # fmt: skip
        senders = [_external() for _ in range(7)]
        for sender in senders:
            _smtp(server, sender, lynne, "flood")
        wait_for(lambda: len(_inbox(server, lynne, "flood")) == 7, what="the flood delivered")

        def answered() -> list[str]:
            return [s for s in senders if sink.messages_for(s)]

        wait_for(lambda: len(answered()) >= 3, what="the first replies")
        time.sleep(SETTLE)
        assert answered() == senders[:3]
    finally:
        server.stop()
        if admin is not None and name is not None:
            drop_pg_database(admin, name)
