"""mailboxSettings, masterCategories and Focused Inbox overrides over real HTTP, on both
engines: permissions, hostile and wrong input, and the overrides applied on real delivery
(local and inbound SMTP), with ``$filter=inferenceClassification``."""

from __future__ import annotations

import smtplib
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import RunningServer
from tests.mail_api import assert_error
from tests.sink import wait_for

DOMAIN = "contoso.onmicrosoft.com"
OWNER = f"LeeG@{DOMAIN}"
OTHER = f"MiriamG@{DOMAIN}"
READ = "MailboxSettings.Read"
WRITE = "MailboxSettings.ReadWrite Mail.ReadWrite Mail.Send"


def test_permissions(server: RunningServer) -> None:
    with server.client(server.token(OWNER, "Mail.ReadWrite")) as c:
        assert_error(c.get("/me/mailboxSettings"), 403, "ErrorAccessDenied")
        assert_error(c.get("/me/outlook/masterCategories"), 403, "ErrorAccessDenied")
        # the overrides need Mail.Read / Mail.ReadWrite, not the settings scopes
        assert c.get("/me/inferenceClassification/overrides").status_code == 200
    with server.client(server.token(OWNER, READ)) as c:
        assert c.get("/me/mailboxSettings").status_code == 200
        assert c.get("/me/mailboxSettings/timeZone").json()["value"]
        assert_error(c.patch("/me/mailboxSettings", json={"timeZone": "UTC"}), 403,
                     "ErrorAccessDenied")  # fmt: skip
        assert_error(c.post("/me/outlook/masterCategories", json={"displayName": "x"}), 403,
                     "ErrorAccessDenied")  # fmt: skip
        assert_error(c.get("/me/inferenceClassification/overrides"), 403, "ErrorAccessDenied")
    # another user's settings: 403, even with a mailbox grant (Graph has no delegated access)
    server.cli("mailbox", "grant", OTHER, OWNER, "--rights", "readwrite")
    try:
        shared = server.token(OWNER, "MailboxSettings.ReadWrite Mail.ReadWrite.Shared")
        with server.client(shared) as c:
            assert_error(c.get(f"/users/{OTHER}/mailboxSettings"), 403, "ErrorAccessDenied")
            assert_error(c.get(f"/users/{OTHER}/outlook/masterCategories"), 403,
                         "ErrorAccessDenied")  # fmt: skip
        # nor the owner's Focused Inbox overrides, with the mail scopes a delegate has
        delegate = server.token(OWNER, "Mail.ReadWrite Mail.ReadWrite.Shared")
        overrides = f"/users/{OTHER}/inferenceClassification/overrides"
        body = {"classifyAs": "other", "senderEmailAddress": {"address": "boss@example.net"}}
        with server.client(delegate) as c:
            assert_error(c.get(overrides), 403, "ErrorAccessDenied")
            assert_error(c.post(overrides, json=body), 403, "ErrorAccessDenied")
            assert_error(c.get(f"{overrides}/any"), 403, "ErrorAccessDenied")
            assert_error(c.patch(f"{overrides}/any", json=body), 403, "ErrorAccessDenied")
            assert_error(c.delete(f"{overrides}/any"), 403, "ErrorAccessDenied")
        with server.client(server.token(OTHER, "Mail.ReadWrite")) as c:
            assert c.get("/me/inferenceClassification/overrides").json()["value"] == []
    finally:
        server.cli("mailbox", "revoke", OTHER, OWNER)
    # an application: the roles of the same names
    with server.client(server.app_token("settings-reader", "MailboxSettings.Read")) as c:
        r = c.get(f"/users/{OWNER}/mailboxSettings/automaticRepliesSetting")
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("disabled", "alwaysEnabled", "scheduled")
        assert_error(c.patch(f"/users/{OWNER}/mailboxSettings", json={"dateFormat": "d"}), 403,
                     "ErrorAccessDenied")  # fmt: skip
    with server.client(server.app_token("settings-writer", "MailboxSettings.ReadWrite")) as c:
        r = c.patch(f"/users/{OWNER}/mailboxSettings", json={"timeFormat": "HH:mm"})
        assert r.status_code == 200 and r.json()["timeFormat"] == "HH:mm", r.text


def test_bad_settings_are_refused_and_change_nothing(server: RunningServer) -> None:
    with server.client(server.token(OWNER, WRITE)) as c:
        before = c.get("/me/mailboxSettings").json()
        cases: list[tuple[Any, int, str]] = [
            ({"automaticRepliesSetting": {"status": "sometimes"}}, 400, "RequestBodyRead"),
            ({"automaticRepliesSetting": {"externalAudience": "friends"}}, 400,
             "RequestBodyRead"),
            ({"automaticRepliesSetting": {"status": "scheduled",
              "scheduledStartDateTime": {"dateTime": "2030-01-02T00:00:00", "timeZone": "UTC"},
              "scheduledEndDateTime": {"dateTime": "2030-01-01T00:00:00", "timeZone": "UTC"}}},
             400, "ErrorInvalidTimeSettings"),
            ({"automaticRepliesSetting": {"scheduledStartDateTime": {
                "dateTime": "yesterday", "timeZone": "UTC"}}}, 400, "RequestBodyRead"),
            ({"automaticRepliesSetting": {"scheduledStartDateTime": {
                "dateTime": "2030-01-01T00:00:00", "timeZone": "Mars/Olympus"}}},
             400, "InvalidTimeZone"),
            ({"timeZone": "../../etc/passwd"}, 400, "InvalidTimeZone"),
            ({"timeZone": "Pacific Standard Time\r\nX: y"}, 400, "InvalidTimeZone"),
            ({"workingHours": {"startTime": "08"}}, 400, "RequestBodyRead"),
            ({"workingHours": {"startTime": "18:00:00", "endTime": "09:00:00"}}, 400,
             "ErrorInvalidTimeSettings"),
            ({"workingHours": {"daysOfWeek": ["RandomDay"]}}, 400, "InvalidArguments"),
            ({"language": {"locale": "en US; DROP"}}, 400, "RequestBodyRead"),
            ({"dateFormat": "d\x07"}, 400, "RequestBodyRead"),
            ({"dateFormat": "d" * 10_000}, 400, "RequestBodyRead"),
            ({"userPurposeX": "user"}, 400, "RequestBodyRead"),
            ({"automaticRepliesSetting": {"internalReplyMessage": "x" * 200_000}}, 400,
             "RequestBodyRead"),
            ({"delegateMeetingMessageDeliveryOptions": "sendToNobody"}, 400, "RequestBodyRead"),
            ({"automaticRepliesSetting": "on"}, 400, "RequestBodyRead"),
        ]  # fmt: skip
        for body, status, code in cases:
            assert_error(c.patch("/me/mailboxSettings", json=body), status, code)
        r = c.patch("/me/mailboxSettings", content=b"\xff\xfe{", headers={
            "content-type": "application/json"})  # fmt: skip
        assert_error(r, 400, "UnableToDeserializePostBody")
        assert_error(c.get("/me/mailboxSettings/nothing"), 400, "BadRequest")
        after = c.get("/me/mailboxSettings").json()
        for key in ("automaticRepliesSetting", "timeZone", "workingHours", "language"):
            if key != "automaticRepliesSetting" or before[key]["status"] != "disabled":
                assert after[key] == before[key], key
        # what is kept: enumerations in Graph's casing, times normalised, a Windows zone
        r = c.patch("/me/mailboxSettings", json={
            "timeZone": "W. Europe Standard Time", "language": {"locale": "de-DE"},
            "workingHours": {"startTime": "07:30", "endTime": "16:00:00.5",
                             "daysOfWeek": ["MONDAY", "tuesday"],
                             "timeZone": {"name": "Europe/Berlin"}},
            "delegateMeetingMessageDeliveryOptions": "SENDTODELEGATEANDPRINCIPAL"})  # fmt: skip
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["language"] == {"locale": "de-DE", "displayName": "German (Germany)"}
        assert got["workingHours"]["startTime"] == "07:30:00.0000000"
        assert got["workingHours"]["endTime"] == "16:00:00.5000000"
        assert got["workingHours"]["daysOfWeek"] == ["monday", "tuesday"]
        assert got["delegateMeetingMessageDeliveryOptions"] == "sendToDelegateAndPrincipal"
        assert c.get("/me/mailboxSettings/timeZone").json()["value"] == "W. Europe Standard Time"


def test_concurrent_patches_keep_each_others_properties(server: RunningServer) -> None:
    with server.client(server.token(OTHER, WRITE)) as c:
        formats = [f"d{i}" for i in range(6)]

        def patch(i: int) -> int:
            body = {"dateFormat": formats[i]} if i % 2 else {"timeFormat": f"t{i}"}
            return int(c.patch("/me/mailboxSettings", json=body).status_code)

        with ThreadPoolExecutor(6) as pool:
            assert list(pool.map(patch, range(6))) == [200] * 6
        got = c.get("/me/mailboxSettings").json()
        assert got["dateFormat"] in formats and got["timeFormat"] in {"t0", "t2", "t4"}


def test_master_categories(server: RunningServer) -> None:
    with server.client(server.token(OWNER, WRITE)) as c:
        name = f"Budget {uuid.uuid4().hex[:6]}"
        r = c.post("/me/outlook/masterCategories", json={"displayName": name, "color": "Preset24"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made.pop("@odata.context").endswith("/outlook/masterCategories/$entity")
        assert made["color"] == "preset24" and made["displayName"] == name
        r = c.post("/me/outlook/masterCategories", json={"displayName": name.upper()})
        assert_error(r, 409, "ErrorDuplicateCategory")
        for body in ({"displayName": "x", "color": "preset25"}, {"displayName": "x", "color": 3},
                     {"color": "preset1"}, {"displayName": "  "}, {"displayName": "a,b"},
                     {"displayName": "x", "colour": "none"}):  # fmt: skip
            assert_error(c.post("/me/outlook/masterCategories", json=body), 400, "RequestBodyRead")
        listed = c.get("/me/outlook/masterCategories").json()["value"]
        assert [x for x in listed if x["id"] == made["id"]] == [made]
        path = f"/me/outlook/masterCategories/{made['id']}"
        r = c.patch(path, json={"color": "none"})
        assert r.status_code == 200 and r.json()["color"] == "none", r.text
        assert_error(c.patch(path, json={"displayName": "renamed"}), 400, "RequestBodyRead")
        assert c.get(path).json()["displayName"] == name
        # categories on messages keep working as before: any name, master list or not
        r = c.post("/me/messages", json={"subject": "tagged", "categories": [name, "free text"]})
        assert r.status_code == 201 and r.json()["categories"] == [name, "free text"]
        assert c.delete(path).status_code == 204
        assert_error(c.get(path), 404, "ErrorItemNotFound")
        assert_error(c.delete(path), 404, "ErrorItemNotFound")
        assert_error(c.patch(path, json={"color": "preset1"}), 404, "ErrorItemNotFound")


def test_overrides_crud(server: RunningServer) -> None:
    with server.client(server.token(OWNER, WRITE)) as c:
        address = f"Someone.{uuid.uuid4().hex[:6]}@Example.NET"
        body = {"classifyAs": "Other", "senderEmailAddress": {"name": "S", "address": address}}
        r = c.post("/me/inferenceClassification/overrides", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["classifyAs"] == "other"
        assert made["senderEmailAddress"]["address"] == address.lower()
        # the same sender again: the same override, with the new name and classification
        body = {"classifyAs": "focused", "senderEmailAddress": {"name": "T", "address": address}}
        again = c.post("/me/inferenceClassification/overrides", json=body).json()
        assert again["id"] == made["id"] and again["classifyAs"] == "focused"
        assert again["senderEmailAddress"]["name"] == "T"
        for bad in ({"classifyAs": "spam", "senderEmailAddress": {"address": "a@b.example"}},
                    {"classifyAs": "other", "senderEmailAddress": {"address": "not an address"}},
                    {"classifyAs": "other"}, {"senderEmailAddress": {"address": "a@b.example"}},
                    {"classifyAs": "other", "senderEmailAddress": {"address": "a@b.example",
                                                                   "extra": 1}}):  # fmt: skip
            r = c.post("/me/inferenceClassification/overrides", json=bad)
            assert_error(r, 400, "RequestBodyRead")
        path = f"/me/inferenceClassification/overrides/{made['id']}"
        r = c.patch(path, json={"senderEmailAddress": {"address": "other@example.net"}})
        assert_error(r, 400, "ErrorInvalidRequest")
        r = c.patch(path, json={"classifyAs": "other"})
        assert r.status_code == 200 and r.json()["classifyAs"] == "other"
        assert c.delete(path).status_code == 204
        assert_error(c.patch(path, json={"classifyAs": "other"}), 404, "ErrorItemNotFound")


def _inbox(
    server: RunningServer, token: str, subject: str, kind: str | None = None
) -> list[dict[str, Any]]:
    query = f"subject eq '{subject}'"
    if kind:
        query = f"inferenceClassification eq '{kind}' and {query}"
    with server.client(token) as c:
        r = c.get("/me/mailFolders/inbox/messages", params={"$filter": query})
        assert r.status_code == 200, r.text
        return list(r.json()["value"])


def test_focused_inbox_on_delivery(server: RunningServer) -> None:
    """An override classifies a sender's messages on every delivery path; without one a
    person's message is focused and a list's is other; the filter finds each kind."""
    token = server.token(OWNER, WRITE)
    sender = f"IsaiahL@{DOMAIN}"
    outsider = f"news-{uuid.uuid4().hex[:6]}@example.net"
    with server.client(token) as c:
        for address, kind in ((sender, "other"), (outsider, "focused")):
            r = c.post("/me/inferenceClassification/overrides", json={
                "classifyAs": kind, "senderEmailAddress": {"address": address}})  # fmt: skip
            assert r.status_code == 201, r.text
    subject = f"focus {uuid.uuid4().hex[:8]}"
    with server.client(server.token(sender, WRITE)) as c:
        to = [{"emailAddress": {"address": OWNER}}]
        r = c.post("/me/sendMail", json={"message": {"subject": subject, "toRecipients": to}})
        assert r.status_code == 202, r.text
    raw = (f"From: {outsider}\r\nTo: {OWNER}\r\nSubject: {subject}\r\nList-Id: <news>\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@example.net>\r\n\r\nnews\r\n")  # fmt: skip
    listed = f"list-{uuid.uuid4().hex[:6]}@example.net"
    plain = f"person-{uuid.uuid4().hex[:6]}@example.net"
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
        smtp.sendmail(outsider, [OWNER], raw.encode())
        smtp.sendmail(listed, [OWNER], raw.replace(outsider, listed).encode())
        smtp.sendmail(plain, [OWNER], raw.replace(outsider, plain)
                      .replace("List-Id: <news>\r\n", "").encode())  # fmt: skip
    wait_for(lambda: len(_inbox(server, token, subject)) == 4, what="four deliveries")
    by_sender = {
        m["from"]["emailAddress"]["address"].lower(): m["inferenceClassification"]
        for m in _inbox(server, token, subject)
    }
    assert by_sender == {
        sender.lower(): "other",  # the override (a local send)
        outsider: "focused",  # the override beats the list's default
        listed: "other",  # the default for a list
        plain: "focused",  # the default for a person
    }
    focused = {m["from"]["emailAddress"]["address"].lower()
               for m in _inbox(server, token, subject, "Focused")}  # fmt: skip
    assert focused == {outsider, plain}
    assert len(_inbox(server, token, subject, "other")) == 2
    with server.client(token) as c:
        # Prefer: outlook.timezone is for events: a message's times stay UTC, as in Graph
        r = c.get("/me/mailFolders/inbox/messages", params={"$top": "1"},
                  headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})  # fmt: skip
        assert r.json()["value"][0]["receivedDateTime"].endswith("Z")
        assert "outlook.timezone" not in r.headers.get("preference-applied", "")
        for o in c.get("/me/inferenceClassification/overrides").json()["value"]:
            c.delete(f"/me/inferenceClassification/overrides/{o['id']}")
