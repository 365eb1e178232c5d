"""The README's "Use with the Graph SDKs" blocks, run as written against a real
`graphpost serve --tls`: each block's capitalised constants get this test's values, the rest
runs unchanged in its own process (Python, or Node for the JavaScript one).

An app registered with `graphpost apps add` gets its token from graphpost's token endpoint
through the SDK's own identity library, then creates a draft with an attachment, sends it,
reads it from the recipient's Inbox and sends a `$batch` of three requests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, RunningServer, start_server
from tests.identity_pages import DEMO_PASSWORD
from tests.mail_api import DEMO_TENANT, unique
from tests.node import node
from tests.sink import Sink

SENDER = "AdeleV@contoso.onmicrosoft.com"
RECIPIENT = "AlexW@contoso.onmicrosoft.com"


def readme_block(name: str) -> str:
    """The fenced block after `<!-- test: NAME -->` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- test: {re.escape(name)} -->\n```\w+\n(.*?)\n```", text, re.S)
    assert found, f"README.md has no block marked <!-- test: {name} -->"
    return found.group(1) + "\n"


def with_values(code: str, **values: str) -> str:
    """``code`` with each `NAME = …` (Python) or `const NAME = …;` (JS) line given a value."""
    for name, value in values.items():

        def assign(m: re.Match[str], name: str = name, value: str = value) -> str:
            return f"{m.group(1) or ''}{name} = {json.dumps(value)}{m.group(2)}"

        code, count = re.subn(
            rf"^(const )?{name} = .*?(;?)(  #.*)?$", assign, code, count=1, flags=re.M
        )
        assert count == 1, f"the README block sets no {name}"
    return code


def run(argv: list[str], script: str, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run ``script``; the JSON object it prints last."""
    done = subprocess.run(
        [*argv, script], capture_output=True, text=True, cwd=cwd, env=env, timeout=180,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result printed:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def client_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPHPOST_", "SSL_", "REQ", "CURL_CA"))
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


def register(server: RunningServer, name: str, roles: str) -> dict[str, str]:
    app: dict[str, str] = json.loads(
        server.cli("apps", "add", "--tenant", DEMO_TENANT, name, "--roles", roles, "--json")
    )
    assert set(app) >= {"client_id", "client_secret", "tenant_id"}
    return app


# ------------------------------------------------------------------- Python: msgraph-sdk

PYTHON_SCENARIO = """
import asyncio, base64, json
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem


async def scenario(client, sender, recipient, subject, me):
    mailbox = client.me if me else client.users.by_user_id(sender)
    draft = await mailbox.messages.post(Message(
        subject=subject,
        body=ItemBody(content="see the attachment"),
        to_recipients=[Recipient(email_address=EmailAddress(address=recipient))],
        attachments=[FileAttachment(
            odata_type="#microsoft.graph.fileAttachment", name="hello.txt",
            content_type="text/plain", content_bytes=b"hello from the README",
        )],
    ))
    await mailbox.messages.by_message_id(draft.id).send.post()
    inbox = client.users.by_user_id(recipient).mail_folders.by_mail_folder_id("inbox")
    got = None
    for _ in range(300):
        page = await inbox.messages.get()
        got = [m for m in page.value if m.subject == subject]
        if got:
            break
        await asyncio.sleep(0.1)
    received = got[0]
    attachments = await inbox.messages.by_message_id(received.id).attachments.get()
    profile = await (client.me.get() if me else client.users.by_user_id(sender).get())
    requests = [
        client.users.by_user_id(sender).to_get_request_information(),
        client.users.by_user_id(recipient).mail_folders.to_get_request_information(),
        inbox.messages.by_message_id(received.id).to_get_request_information(),
    ]
    items = [BatchRequestItem(r, id=str(i)) for i, r in enumerate(requests)]
    for item in items:  # the SDK's issue 1015: URLs of builders that have sent are absolute
        item.url = item.url.removeprefix(client.request_adapter.base_url)
    batch = BatchRequestContent({item.id: item for item in items})
    answer = await client.batch.post(batch)
    print(json.dumps({
        "from": received.from_.email_address.address,
        "attachments": [[a.name, base64.b64encode(a.content_bytes).decode()]
                        for a in attachments.value],
        "profile": profile.user_principal_name,
        "batch": answer.get_response_status_codes(),
    }))
"""


def python_result(server: RunningServer, script: str) -> dict[str, Any]:
    """Run in the server's data directory: python-o365 saves its token file in the
    working directory."""
    return run([sys.executable, "-c"], script, server.data_dir, client_env())


def expect_delivered(result: dict[str, Any], sender: str) -> None:
    assert result["from"].lower() == sender.lower()
    assert result["attachments"] == [["hello.txt", "aGVsbG8gZnJvbSB0aGUgUkVBRE1F"]]
    assert result["profile"].lower() == sender.lower()
    assert result["batch"] == {"0": 200, "1": 200, "2": 200}


def test_msgraph_sdk_with_azure_identity_client_credentials(tls: RunningServer) -> None:
    app = register(tls, unique("readme-python"), "Mail.ReadWrite Mail.Send User.Read.All")
    setup = with_values(
        readme_block("python-msgraph"),
        GRAPHPOST=tls.base,
        TENANT_ID=app["tenant_id"],
        CLIENT_ID=app["client_id"],
        CLIENT_SECRET=app["client_secret"],
        CA_FILE=str(tls.data_dir / "tls" / "cert.pem"),
    )
    subject = unique("README python")
    script = (
        setup
        + PYTHON_SCENARIO
        + (f"asyncio.run(scenario(client, {SENDER!r}, {RECIPIENT!r}, {subject!r}, me=False))\n")
    )
    expect_delivered(python_result(tls, script), SENDER)


def port_443_free() -> bool:
    if os.geteuid() != 0:
        return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 443))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def server_on_443(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[RunningServer]:
    """MSAL's password flow looks up the user realm on the authority's host without its port:
    the delegated flow runs against a server on 443."""
    if not port_443_free():
        message = "the password flow needs graphpost on 127.0.0.1:443 (root, port free)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    data_dir = tmp_path_factory.mktemp("sdk-readme-443")
    running = start_server(data_dir, relay=sink.url, args=("--tls",), port=443)
    yield running
    running.stop()


def test_msgraph_sdk_with_a_signed_in_user(server_on_443: RunningServer) -> None:
    server = server_on_443
    public: dict[str, str] = json.loads(
        server.cli(
            "apps", "add", "--tenant", DEMO_TENANT, unique("readme-public"), "--public", "--json"
        )
    )
    setup = with_values(
        readme_block("python-msgraph"),
        GRAPHPOST=server.base.removesuffix(":443"),
        TENANT_ID=public["tenant_id"],
        CLIENT_ID=public["client_id"],
        CLIENT_SECRET="unused",
        CA_FILE=str(server.data_dir / "tls" / "cert.pem"),
    )
    delegated = readme_block("python-msgraph-delegated")
    subject = unique("README delegated")  # Adele writes to herself: the token is hers
    script = (
        setup
        + f"USERNAME = {SENDER!r}\nPASSWORD = {DEMO_PASSWORD!r}\n"
        + delegated
        + PYTHON_SCENARIO
        + f"asyncio.run(scenario(client, {SENDER!r}, {SENDER!r}, {subject!r}, me=True))\n"
    )
    expect_delivered(python_result(server, script), SENDER)


# ------------------------------------------------------------------- python-o365

O365_SCENARIO = """
import json, time
message = account.mailbox().new_message()
message.to.add(RECIPIENT)
message.subject = SUBJECT
message.body = "sent with python-o365"
assert message.send(), "python-o365 could not send"
inbox = account.mailbox(resource=RECIPIENT).inbox_folder()
found = []
for _ in range(300):
    found = [m for m in inbox.get_messages(limit=25) if m.subject == SUBJECT]
    if found:
        break
    time.sleep(0.1)
print(json.dumps({"from": found[0].sender.address, "subject": found[0].subject}))
"""


def o365_script(tls: RunningServer, app_name: str, subject: str, scenario: str) -> str:
    """The README's python-o365 block for a newly registered app, then ``scenario``."""
    app = register(tls, unique(app_name), "Mail.ReadWrite Mail.Send")
    setup = with_values(
        readme_block("python-o365"),
        GRAPHPOST=tls.base,
        TENANT_ID=app["tenant_id"],
        CLIENT_ID=app["client_id"],
        CLIENT_SECRET=app["client_secret"],
        CA_FILE=str(tls.data_dir / "tls" / "cert.pem"),
        MAILBOX=SENDER,
    )
    return setup + f"RECIPIENT = {RECIPIENT!r}\nSUBJECT = {subject!r}\n" + scenario


def test_python_o365(tls: RunningServer) -> None:
    subject = unique("README o365")
    result = python_result(tls, o365_script(tls, "readme-o365", subject, O365_SCENARIO))
    assert result == {"from": SENDER, "subject": subject}


# ------------------------------------------------------------------- JavaScript

JS_SCENARIO = """
const subject = process.env.SUBJECT;
const sender = process.env.SENDER;
const recipient = process.env.RECIPIENT;
const draft = await client.api(`/users/${sender}/messages`).post({
  subject,
  body: { contentType: "Text", content: "see the attachment" },
  toRecipients: [{ emailAddress: { address: recipient } }],
  attachments: [{
    "@odata.type": "#microsoft.graph.fileAttachment", name: "hello.txt",
    contentType: "text/plain",
    contentBytes: Buffer.from("hello from the README").toString("base64"),
  }],
});
await client.api(`/users/${sender}/messages/${draft.id}/send`).post({});
let found = [];
for (let i = 0; i < 300 && found.length === 0; i++) {
  const page = await client.api(`/users/${recipient}/mailFolders/inbox/messages`).get();
  found = page.value.filter((m) => m.subject === subject);
  if (found.length === 0) await new Promise((r) => setTimeout(r, 100));
}
const attachments = await client
  .api(`/users/${recipient}/messages/${found[0].id}/attachments`).get();
const profile = await client.api(`/users/${sender}`).get();
const batch = await client.api("/$batch").post({ requests: [
  { id: "0", method: "GET", url: `/users/${sender}` },
  { id: "1", method: "GET", url: `/users/${recipient}/mailFolders` },
  { id: "2", method: "GET", url: `/users/${recipient}/messages/${found[0].id}` },
] });
console.log(JSON.stringify({
  from: found[0].from.emailAddress.address,
  attachments: attachments.value.map((a) => [a.name, a.contentBytes]),
  profile: profile.userPrincipalName,
  batch: Object.fromEntries(batch.responses.map((r) => [r.id, r.status])),
}));
"""


def test_graph_client_with_msal_node(tls: RunningServer, tmp_path: Path) -> None:
    executable, modules = node()
    app = register(tls, unique("readme-js"), "Mail.ReadWrite Mail.Send User.Read.All")
    setup = with_values(
        readme_block("js-graph-client"),
        GRAPHPOST=tls.base,
        TENANT_ID=app["tenant_id"],
        CLIENT_ID=app["client_id"],
        CLIENT_SECRET=app["client_secret"],
    )
    script = tmp_path / "readme.mjs"
    script.write_text(setup + JS_SCENARIO, encoding="utf-8")
    (tmp_path / "node_modules").symlink_to(modules)
    env = client_env()
    env["NODE_EXTRA_CA_CERTS"] = str(tls.data_dir / "tls" / "cert.pem")
    env.update(SUBJECT=unique("README js"), SENDER=SENDER, RECIPIENT=RECIPIENT)
    result = run([executable], str(script), tmp_path, env)
    expect_delivered(result, SENDER)


O365_ATTACHMENTS_SCENARIO = """
import base64, hashlib, json, os, time
from pathlib import Path
small = Path("o365-small.txt"); small.write_bytes(b"a small file from python-o365")
large = Path("o365-large.bin"); large.write_bytes(os.urandom(4 * 1024 * 1024 + 17))
message = account.mailbox().new_message()
message.to.add(RECIPIENT)
message.subject = SUBJECT
message.body = "attachments from python-o365"
message.attachments.add(str(small))
assert message.save_draft(), "the first save_draft failed"
message.attachments.add(str(large))  # over 3 MB: python-o365 opens an upload session
message.subject = SUBJECT
assert message.save_draft(), "the second save_draft failed"
assert message.send(), "python-o365 could not send"
inbox = account.mailbox(resource=RECIPIENT).inbox_folder()
found = []
for _ in range(300):
    found = [m for m in inbox.get_messages(limit=25) if m.subject == SUBJECT]
    if found:
        break
    time.sleep(0.1)
received = found[0]
received.attachments.download_attachments()
print(json.dumps({a.name: hashlib.sha256(base64.b64decode(a.content)).hexdigest()
                  for a in received.attachments}))
"""


def test_python_o365_attachments_save_draft_and_send(tls: RunningServer) -> None:
    """python-o365's ``attachments.add()`` + ``save_draft()`` + ``send()``, unchanged: the first
    save posts the draft with its attachment, the second adds one over 3 MB by an upload
    session, then the draft is sent and read back in the recipient's Inbox."""
    subject = unique("README o365 attachments")
    script = o365_script(tls, "readme-o365-att", subject, O365_ATTACHMENTS_SCENARIO)
    result = python_result(tls, script)
    small = (tls.data_dir / "o365-small.txt").read_bytes()
    large = (tls.data_dir / "o365-large.bin").read_bytes()
    assert len(large) > 4 * 1024 * 1024
    assert result == {
        "o365-small.txt": hashlib.sha256(small).hexdigest(),
        "o365-large.bin": hashlib.sha256(large).hexdigest(),
    }
