"""The permission model over real HTTP: delegated .Shared scopes with mailbox grants, sending
as and on behalf of another user, application access policies, and tokens without
permissions. Each refusal with its status and Graph code, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from graphpost.auth.keys import load_or_create
from tests.conftest import RunningServer
from tests.mail_api import assert_error, unique

DOMAIN = "contoso.onmicrosoft.com"
ADELE_UPN = f"AdeleV@{DOMAIN}"
DENIED = "Access is denied. Check credentials and try again."
ODATA = "Access to OData is disabled."


@dataclass
class People:
    """Users made for this module: an owner, and delegates with different grants."""

    owner: str  # the mailbox shared
    reader: str  # --rights read
    editor: str  # --rights readwrite --send-on-behalf
    sendas: str  # --rights readwrite --send-as
    nobody: str  # no grant
    recipient: str  # receives what is sent
    other: str  # a mailbox outside the app's policy
    foreign: str  # a user of another tenant
    app: str  # name of the restricted app


def add_user(server: RunningServer, alias: str, domain: str = DOMAIN) -> str:
    upn = f"{unique(alias)}@{domain}"
    server.cli("users", "add", "--name", alias.title(), "--mail", upn)
    return upn


@pytest.fixture(scope="module")
def people(server: RunningServer) -> People:
    p = People(
        owner=add_user(server, "owner"),
        reader=add_user(server, "reader"),
        editor=add_user(server, "editor"),
        sendas=add_user(server, "sendas"),
        nobody=add_user(server, "nobody"),
        recipient=add_user(server, "recipient"),
        other=add_user(server, "other"),
        foreign=add_user(server, "foreign", "fabrikam.example"),
        app=unique("restricted"),
    )
    server.cli("mailbox", "grant", p.owner, p.reader, "--rights", "read")
    server.cli("mailbox", "grant", p.owner, p.editor, "--rights", "readwrite", "--send-on-behalf")
    server.cli("mailbox", "grant", p.owner, p.sendas, "--rights", "readwrite", "--send-as")
    server.app_token(p.app, "Mail.Read Mail.Send")  # registers the app
    server.cli("mailbox", "restrict-app", p.app, p.owner, p.recipient)
    return p


def call(
    server: RunningServer, token: str, method: str, path: str, body: Any = None
) -> httpx.Response:
    with server.client(token) as c:
        return c.request(method, path, json=body)


def mail(subject: str, to: str, **extra: Any) -> dict[str, Any]:
    return {
        "message": {
            "subject": subject,
            "toRecipients": [{"emailAddress": {"address": to}}],
            **extra,
        }
    }


def raw_token(server: RunningServer, claims: dict[str, Any]) -> str:
    """A token signed by the server's own key, with the claims of one `graphpost token`
    except its scp and roles, which are ``claims``'s (as they are)."""
    key = load_or_create(server.data_dir)
    model = jwt.decode(server.token(), options={"verify_signature": False})
    model.pop("scp", None)
    model.update(claims)
    return jwt.encode(model, key.private, algorithm="RS256", headers={"kid": key.kid})


# (name, who, scopes or roles, method, path, body, status, code, message or None)
REFUSALS = [
    ("plain scope, another's mailbox", "reader", "Mail.Read", "GET", "/users/{owner}/messages",
     None, 403, "ErrorAccessDenied", DENIED),
    ("shared scope without a grant", "nobody", "Mail.Read.Shared", "GET",
     "/users/{owner}/messages", None, 403, "ErrorAccessDenied", DENIED),
    ("read grant, writing", "reader", "Mail.ReadWrite.Shared", "POST",
     "/users/{owner}/messages", {"subject": "x"}, 403, "ErrorAccessDenied", DENIED),
    ("readwrite grant, read-only scope, writing", "editor", "Mail.Read.Shared", "POST",
     "/users/{owner}/messages", {"subject": "x"}, 403, "ErrorAccessDenied", DENIED),
    ("readwrite grant, no send scope, sending", "editor", "Mail.ReadWrite.Shared", "POST",
     "/users/{owner}/sendMail", "mail", 403, "ErrorAccessDenied", DENIED),
    ("send scope, grant without send rights", "reader", "Mail.Read.Shared Mail.Send.Shared",
     "POST", "/users/{owner}/sendMail", "mail", 403, "ErrorSendAsDenied", None),
    ("from another user without a grant", "nobody", "Mail.Send Mail.Send.Shared", "POST",
     "/me/sendMail", "from-owner", 403, "ErrorSendAsDenied", None),
    ("from another user without Mail.Send.Shared", "editor", "Mail.Send", "POST",
     "/me/sendMail", "from-owner", 403, "ErrorSendAsDenied", None),
    ("from a third user through the shared mailbox", "sendas", "Mail.Send.Shared", "POST",
     "/users/{owner}/sendMail", "from-recipient", 403, "ErrorSendAsDenied", None),
    ("shared scope, another tenant's mailbox", "reader", "Mail.ReadWrite.Shared", "GET",
     "/users/{foreign}/messages", None, 404, "ErrorInvalidUser", None),
    ("plain scope, another tenant's mailbox", "reader", "Mail.Read", "GET",
     "/users/{foreign}/messages", None, 404, "ErrorInvalidUser", None),
    ("app, another tenant's mailbox", "app", "Mail.Read Mail.Send", "GET",
     "/users/{foreign}/messages", None, 404, "ErrorInvalidUser", None),
    ("a user who does not exist", "reader", "Mail.Read.Shared", "GET",
     "/users/nobody-here@contoso.onmicrosoft.com/messages", None, 404, "ErrorInvalidUser", None),
    ("app outside its access policy", "app", "Mail.Read Mail.Send", "GET",
     "/users/{other}/messages", None, 403, "ErrorAccessDenied", ODATA),
    ("app outside its access policy, sending", "app", "Mail.Read Mail.Send", "POST",
     "/users/{other}/sendMail", "mail", 403, "ErrorAccessDenied", ODATA),
]  # fmt: skip


def token_for(server: RunningServer, people: People, who: str, perms: str) -> str:
    if who == "app":
        return server.app_token(people.app, perms)
    return server.token(getattr(people, who), perms)


def body_for(kind: Any, people: People) -> Any:
    if kind == "mail":
        return mail(unique("refused"), people.recipient)
    if kind == "from-owner":
        return mail(unique("refused"), people.recipient,
                    **{"from": {"emailAddress": {"address": people.owner}}})  # fmt: skip
    if kind == "from-recipient":
        return mail(unique("refused"), people.recipient,
                    **{"from": {"emailAddress": {"address": people.recipient}}})  # fmt: skip
    return kind


@pytest.mark.parametrize(
    ("who", "perms", "method", "path", "body", "status", "code", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in REFUSALS],
)
def test_refusals(
    server: RunningServer,
    people: People,
    who: str,
    perms: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
    message: str | None,
) -> None:
    token = token_for(server, people, who, perms)
    url = path.format(owner=people.owner, other=people.other, foreign=people.foreign)
    r = call(server, token, method, url, body_for(body, people))
    err = assert_error(r, status, code)
    if message is not None:
        assert err["message"] == message


def answers(server: RunningServer, token: str, paths: list[str]) -> list[tuple[int, str, str]]:
    """Each path's status, code and message, asked directly and as members of one $batch."""
    out: list[tuple[int, str, str]] = []
    with server.client(token) as c:
        for path in paths:
            r = c.get(path)
            error = r.json().get("error", {})
            out.append((r.status_code, error.get("code", ""), error.get("message", "")))
        requests = [{"id": str(n), "method": "GET", "url": p} for n, p in enumerate(paths)]
        members = sorted(c.post("/$batch", json={"requests": requests}).json()["responses"],
                         key=lambda m: int(m["id"]))  # fmt: skip
    for m in members:
        error = m["body"]["error"]
        out.append((m["status"], error["code"], error["message"]))
    return out


@pytest.mark.parametrize(
    ("who", "perms"),
    [
        pytest.param("reader", "Mail.Read User.Read", id="delegated"),
        pytest.param("reader", "Mail.ReadWrite.Shared User.Read.All", id="delegated shared"),
        pytest.param("nobody", "User.ReadBasic.All", id="delegated basic profiles"),
        pytest.param("app", "Mail.Read Mail.Send", id="application"),
    ],
)
def test_another_tenants_user_is_answered_as_an_unknown_one(
    server: RunningServer, people: People, who: str, perms: str
) -> None:
    """A user of another tenant and a user who does not exist get the same answer (status,
    code, message with the key as given), directly and in $batch: no 403 that would tell a
    caller which addresses exist in other tenants."""
    token = token_for(server, people, who, perms)
    unknown = f"{unique('nobody')}@fabrikam.example"
    for template in ("/users/{}/messages", "/users/{}/mailFolders/inbox", "/users/{}"):
        if who == "app" and template == "/users/{}":
            continue  # the app has no User.* role: 403 for any user, known or not
        foreign = answers(server, token, [template.format(people.foreign)])
        missing = answers(server, token, [template.format(unknown)])
        assert [(s, c) for s, c, _ in foreign] == [(s, c) for s, c, _ in missing], template
        assert [m.replace(people.foreign, "KEY") for _, _, m in foreign] == [
            m.replace(unknown, "KEY") for _, _, m in missing
        ], template


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"scp": ""}, id="empty scp"),
        pytest.param({"scp": "   "}, id="blank scp"),
        pytest.param({"roles": []}, id="empty roles"),
        pytest.param({"scp": ["Mail.Read"]}, id="scp not a string"),
        pytest.param({}, id="neither scp nor roles"),
    ],
)
def test_tokens_without_permissions(server: RunningServer, claims: dict[str, Any]) -> None:
    token = raw_token(server, claims)
    r = call(server, token, "GET", "/me/messages")
    err = assert_error(r, 401, "NoPermissionsInAccessToken")
    assert err["message"] == (
        "The token contains no permissions, or permissions can not be understood."
    )
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_shared_scopes_open_the_shared_mailbox(server: RunningServer, people: People) -> None:
    subject = unique("shared-read")
    with server.client(server.token(people.owner)) as c:
        made = c.post("/me/messages", json={"subject": subject}).json()
    reader = server.token(people.reader, "Mail.Read.Shared")
    with server.client(reader) as c:
        got = c.get(f"/users/{people.owner}/messages/{made['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["subject"] == subject
        assert "body" in got.json()
        assert c.get(f"/users/{people.owner}/mailFolders/inbox").status_code == 200
        # the .Shared scope covers the user's own mailbox too
        assert c.get("/me/messages").status_code == 200
    editor = server.token(people.editor, "Mail.ReadWrite.Shared")
    with server.client(editor) as c:
        r = c.patch(f"/users/{people.owner}/messages/{made['id']}", json={"subject": subject + "!"})
        assert r.status_code == 200, r.text
        created = c.post(f"/users/{people.owner}/messages", json={"subject": subject})
        assert created.status_code == 201, created.text
        # the draft is the owner's: from the owner
        assert created.json()["from"]["emailAddress"]["address"] == people.owner


def wait_inbox(server: RunningServer, user: str, subject: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        with server.client(server.token(user)) as c:
            r = c.get("/me/mailFolders/inbox/messages",
                      params={"$filter": f"subject eq '{subject}'"})  # fmt: skip
        assert r.status_code == 200, r.text
        if r.json()["value"]:
            return dict(r.json()["value"][0])
        assert time.monotonic() < deadline, f"{subject} never reached {user}'s Inbox"
        time.sleep(0.2)


def sent_items(server: RunningServer, user: str, subject: str) -> list[dict[str, Any]]:
    with server.client(server.token(user)) as c:
        r = c.get("/me/mailFolders/sentitems/messages",
                  params={"$filter": f"subject eq '{subject}'"})  # fmt: skip
    assert r.status_code == 200, r.text
    return list(r.json()["value"])


def address(item: dict[str, Any], prop: str) -> str:
    return str(item[prop]["emailAddress"]["address"]).lower()


def test_send_on_behalf_through_the_shared_mailbox(server: RunningServer, people: People) -> None:
    subject = unique("on-behalf")
    token = server.token(people.editor, "Mail.Send.Shared")
    r = call(server, token, "POST", f"/users/{people.owner}/sendMail",
             mail(subject, people.recipient))  # fmt: skip
    assert r.status_code == 202, r.text
    got = wait_inbox(server, people.recipient, subject)
    assert address(got, "from") == people.owner.lower()
    assert address(got, "sender") == people.editor.lower()
    (saved,) = sent_items(server, people.owner, subject)  # the owner's Sent Items
    assert address(saved, "from") == people.owner.lower()
    assert address(saved, "sender") == people.editor.lower()
    assert sent_items(server, people.editor, subject) == []


def test_send_as_through_the_shared_mailbox(server: RunningServer, people: People) -> None:
    subject = unique("send-as")
    token = server.token(people.sendas, "Mail.Send.Shared")
    r = call(server, token, "POST", f"/users/{people.owner}/sendMail",
             mail(subject, people.recipient))  # fmt: skip
    assert r.status_code == 202, r.text
    got = wait_inbox(server, people.recipient, subject)
    assert address(got, "from") == people.owner.lower()
    assert address(got, "sender") == people.owner.lower()
    (saved,) = sent_items(server, people.owner, subject)
    assert address(saved, "sender") == people.owner.lower()


def test_delegate_sends_a_draft_of_the_shared_mailbox(
    server: RunningServer, people: People
) -> None:
    subject = unique("shared-draft")
    token = server.token(people.editor, "Mail.ReadWrite.Shared Mail.Send.Shared")
    with server.client(token) as c:
        to = [{"emailAddress": {"address": people.recipient}}]
        draft = c.post(f"/users/{people.owner}/messages",
                       json={"subject": subject, "toRecipients": to})  # fmt: skip
        assert draft.status_code == 201, draft.text
        r = c.post(f"/users/{people.owner}/messages/{draft.json()['id']}/send")
        assert r.status_code == 202, r.text
    got = wait_inbox(server, people.recipient, subject)
    assert address(got, "from") == people.owner.lower()
    assert address(got, "sender") == people.editor.lower()
    (saved,) = sent_items(server, people.owner, subject)
    assert saved["id"] == draft.json()["id"]


def test_send_from_another_user_through_me(server: RunningServer, people: People) -> None:
    """The Graph doc's example: the signed-in user sets `from` to a user who granted them
    send-on-behalf; the copy goes to the signed-in user's Sent Items (Exchange's default)."""
    subject = unique("from-other")
    token = server.token(people.editor, "Mail.Send Mail.Send.Shared")
    body = mail(subject, people.recipient, **{"from": {"emailAddress": {"address": people.owner}}})
    r = call(server, token, "POST", "/me/sendMail", body)
    assert r.status_code == 202, r.text
    got = wait_inbox(server, people.recipient, subject)
    assert address(got, "from") == people.owner.lower()
    assert address(got, "sender") == people.editor.lower()
    (saved,) = sent_items(server, people.editor, subject)
    assert address(saved, "from") == people.owner.lower()
    assert sent_items(server, people.owner, subject) == []


def test_own_draft_from_another_user(server: RunningServer, people: People) -> None:
    """A draft in the delegate's own mailbox, `from` the owner, then /send: send-as."""
    subject = unique("draft-from-other")
    token = server.token(people.sendas, "Mail.ReadWrite Mail.Send.Shared")
    with server.client(token) as c:
        draft = c.post("/me/messages", json={
            "subject": subject,
            "from": {"emailAddress": {"address": people.owner}},
            "toRecipients": [{"emailAddress": {"address": people.recipient}}],
        })  # fmt: skip
        assert draft.status_code == 201, draft.text
        assert c.post(f"/me/messages/{draft.json()['id']}/send").status_code == 202
    got = wait_inbox(server, people.recipient, subject)
    assert address(got, "from") == people.owner.lower()
    assert address(got, "sender") == people.owner.lower()
    (saved,) = sent_items(server, people.sendas, subject)
    assert address(saved, "sender") == people.owner.lower()


def test_app_policy_lets_the_listed_mailboxes_through(
    server: RunningServer, people: People
) -> None:
    token = server.app_token(people.app, "Mail.Read Mail.Send")
    assert call(server, token, "GET", f"/users/{people.owner}/messages").status_code == 200
    listed = server.cli("mailbox", "app-policies")
    assert people.owner in listed and people.recipient in listed
    assert people.other not in listed
    # another app of the tenant is not restricted by it
    free = server.app_token(unique("free"), "Mail.Read")
    assert call(server, free, "GET", f"/users/{people.other}/messages").status_code == 200


def eventually(check: Any, what: str) -> None:
    """Grants are cached for 5 s in the server: wait (at most 30 s) for a change to show."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def test_grant_revoke_and_list(server: RunningServer) -> None:
    owner, delegate = add_user(server, "gowner"), add_user(server, "gdelegate")
    server.cli("mailbox", "grant", owner, delegate, "--rights", "read", "--send-as")
    listed = server.cli("mailbox", "grants", owner)
    assert delegate in listed and "read" in listed and "send_as" in listed
    token = server.token(delegate, "Mail.Read.Shared")
    assert call(server, token, "GET", f"/users/{owner}/messages").status_code == 200
    server.cli("mailbox", "revoke", owner, delegate)
    assert delegate not in server.cli("mailbox", "grants", owner)
    eventually(lambda: call(server, token, "GET", f"/users/{owner}/messages").status_code == 403,
               "a revoked grant still opens the mailbox after 30 s")  # fmt: skip
    r = call(server, token, "GET", f"/users/{owner}/messages")
    assert_error(r, 403, "ErrorAccessDenied")


def test_unrestrict_app(server: RunningServer) -> None:
    user = add_user(server, "policy")
    app = unique("unrestricted")
    token = server.app_token(app, "Mail.Read")
    server.cli("mailbox", "restrict-app", app, user)
    r = call(server, token, "GET", f"/users/{add_user(server, 'outside')}/messages")
    assert_error(r, 403, "ErrorAccessDenied")
    server.cli("mailbox", "unrestrict-app", app)
    outside = add_user(server, "outside")
    eventually(lambda: call(server, token, "GET", f"/users/{outside}/messages").status_code == 200,
               "an unrestricted app is still refused after 30 s")  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("grant", "{a}", "{a}", "--rights", "read"), id="own mailbox"),
        pytest.param(
            ("grant", "{a}", "nobody@contoso.onmicrosoft.com", "--rights", "read"),
            id="unknown delegate",
        ),
        pytest.param(("grant", "{a}", "{b}", "--rights", "all"), id="unknown right"),
        pytest.param(("grant", "{a}", "{b}"), id="no rights"),
        pytest.param(("restrict-app", "no-such-app", "{a}"), id="unknown app"),
        pytest.param(("restrict-app", "{app}"), id="no mailboxes"),
        pytest.param(
            ("grant", "{a}", "x\r\ny@contoso.onmicrosoft.com", "--rights", "read"), id="CR LF"
        ),
    ],
)
def test_cli_refuses(server: RunningServer, args: tuple[str, ...]) -> None:
    a, b = add_user(server, "cli-a"), add_user(server, "cli-b")
    app = unique("cli-app")
    server.app_token(app, "Mail.Read")
    filled = [x.format(a=a, b=b, app=app) for x in args]
    with pytest.raises(AssertionError, match="failed"):
        server.cli("mailbox", *filled)


def test_shared_scopes_from_the_token_endpoint(server: RunningServer) -> None:
    """A token with the .Shared scopes from the identity platform (password grant, the demo
    client), not only from `graphpost token`: it opens the mailbox its user was granted."""
    owner, delegate = f"GradyA@{DOMAIN}", f"IrvinS@{DOMAIN}"
    server.cli("mailbox", "grant", owner, delegate, "--rights", "read")
    r = httpx.post(
        f"{server.base}/{DOMAIN}/oauth2/v2.0/token",
        data={
            "grant_type": "password",
            "client_id": "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",  # the demo public client
            "username": delegate,
            "password": "graphpost-demo",
            "scope": "https://graph.microsoft.com/Mail.Read.Shared",
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert "Mail.Read.Shared" in r.json()["scope"].split()
    assert (
        call(server, token, "GET", f"/users/{owner}/mailFolders/inbox/messages").status_code == 200
    )
    r = call(server, token, "GET", f"/users/{ADELE_UPN}/messages")
    assert_error(r, 403, "ErrorAccessDenied")
