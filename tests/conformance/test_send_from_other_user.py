"""Replay the Graph doc "Send Outlook messages from another user" (both examples, copied in
``data/send-mail-from-other-user.json``) against the real server: Adele, granted send on
behalf of Allan, sends `from` Allan through /me; from Patti, who granted nothing, she is
refused with ErrorSendAsDenied. The docs' contoso.com is the demo tenant's domain here."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer
from tests.mail_api import ADELE, MEGAN, assert_error

DATA = json.loads((Path(__file__).parent / "data" / "send-mail-from-other-user.json").read_text())
EXAMPLES = {e["name"]: e for e in DATA["examples"]}
DOMAIN = "contoso.onmicrosoft.com"


def localised(value: Any, subject_suffix: str) -> Any:
    """The example with the docs' domain made ours, and its subject made unique."""
    text = json.dumps(value).replace("@contoso.com", f"@{DOMAIN}")
    out = json.loads(text)
    out["message"]["subject"] += subject_suffix
    return out


def test_send_mail_from_another_user(server: RunningServer) -> None:
    server.cli("mailbox", "grant", f"AllanD@{DOMAIN}", ADELE, "--rights", "read",
               "--send-on-behalf")  # fmt: skip
    token = server.token(ADELE, "Mail.Read Mail.Send Mail.Send.Shared")
    suffix = f" {uuid.uuid4().hex[:8]}"
    ok = EXAMPLES["successful_send_through_me"]
    with server.client(token) as c:
        r = c.request(ok["method"], ok["path"], json=localised(ok["request"], suffix))
        assert r.status_code == ok["expected_status"], r.text
        refused = EXAMPLES["unsuccessful_send_without_permissions"]
        r = c.request(refused["method"], refused["path"],
                      json=localised(refused["request"], suffix))  # fmt: skip
        err = assert_error(r, refused["expected_status"], refused["expected_error"]["code"])
        assert err["message"] == refused["expected_error"]["message"]
    # Megan sees it from Allan, sent by Adele (Graph sets `sender` from the mailbox rights)
    subject = ok["request"]["message"]["subject"] + suffix
    deadline = time.monotonic() + 30
    while True:
        with server.client(server.token(MEGAN)) as c:
            r = c.get("/me/mailFolders/inbox/messages",
                      params={"$filter": f"subject eq '{subject}'"})  # fmt: skip
        found = r.json()["value"]
        if found:
            break
        assert time.monotonic() < deadline, "the message never reached Megan"
        time.sleep(0.2)
    assert found[0]["from"]["emailAddress"]["address"].lower() == f"alland@{DOMAIN}"
    assert found[0]["sender"]["emailAddress"]["address"].lower() == ADELE.lower()
