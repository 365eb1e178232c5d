"""The mailbox viewer: one page per mailbox and message, for people testing apps locally.

Read-only and unauthenticated, like a local SMTP catcher; switch it off with
GRAPHPOST_WEB_UI=false on a server others can reach.
"""

from __future__ import annotations

from html import escape
from typing import Any

import msgspec

from graphpost.asgi import Request, Response
from graphpost.domain.query import MessageQuery
from graphpost.errors import MalformedIdError, NotFoundError
from graphpost.services.directory import DirectoryService, Mailbox
from graphpost.services.folders import FolderService
from graphpost.services.messages import MessageService

HTML = b"text/html; charset=utf-8"
_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;
text-align:left}a{color:#0b5cad;text-decoration:none}.muted{color:#777}
iframe{width:100%;height:60vh;border:1px solid #ccc}nav a{margin-right:1rem}
</style>"""


def _page(title: str, body: str) -> Response:
    text = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"{_STYLE}</head><body><nav><a href='/'>graphpost</a></nav><h1>{escape(title)}</h1>"
        f"{body}</body></html>"
    )
    return Response(200, text.encode(), content_type=HTML)


def _who(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    addr = value.get("emailAddress") or {}
    name, address = addr.get("name") or "", addr.get("address") or ""
    return f"{name} <{address}>" if name and name != address else str(address)


class Viewer:
    """Reads every mailbox through the services, as their owner would with Mail.Read."""

    def __init__(
        self, directory: DirectoryService, folders: FolderService, messages: MessageService
    ) -> None:
        self.directory = directory
        self.folders = folders
        self.messages = messages

    async def __call__(self, request: Request) -> Response | None:
        if request.method != "GET":
            return None
        parts = request.segments()
        if not parts:
            return await self.index()
        if parts[0] == "mailbox" and len(parts) == 2:
            return await self.mailbox(parts[1], request.query.get("folder"))
        if parts[0] == "owa" and "ItemID" in request.query:
            return await self.message(request.query["ItemID"])
        return None

    async def index(self) -> Response:
        rows = []
        for user in await self.directory.users():
            try:
                inbox = await self.folders.get(Mailbox.reader(user), "inbox")
                unread = inbox.unread_count
            except NotFoundError:
                unread = 0
            rows.append(
                f"<tr><td><a href='/mailbox/{escape(user.id)}'>{escape(user.display_name)}</a>"
                f"</td><td>{escape(user.mail)}</td><td>{unread}</td></tr>"
            )
        table = "<table><tr><th>Mailbox</th><th>Address</th><th>Unread</th></tr>"
        return _page("Mailboxes", table + "".join(rows) + "</table>")

    async def mailbox(self, user_id: str, folder_id: str | None) -> Response | None:
        user = await self.directory.user(user_id)
        if user is None:
            return None
        mailbox = Mailbox.reader(user)
        try:
            folders, _ = await self.folders.children(
                mailbox, None, include_hidden=False, top=100, skip=0
            )
        except NotFoundError:
            return None
        current = next((f for f in folders if f.id == folder_id), None) or next(
            (f for f in folders if f.well_known == "inbox"), folders[0]
        )
        nav = " ".join(
            f"<a href='/mailbox/{escape(user.id)}?folder={escape(f.id)}'>"
            f"{'<b>' if f.id == current.id else ''}{escape(f.display_name)} "
            f"<span class='muted'>({f.total_count})</span>{'</b>' if f.id == current.id else ''}"
            "</a>"
            for f in folders
        )
        found, _, _ = await self.messages.list_messages(
            mailbox, MessageQuery(top=200), folder_key=current.id
        )
        lines = []
        for stored in found:
            doc = msgspec.json.decode(stored.document)
            lines.append(
                f"<tr><td>{escape(_who(doc.get('from')))}</td>"
                f"<td><a href='{escape(doc['webLink'])}'>"
                f"{escape(doc.get('subject') or '(no subject)')}</a></td>"
                f"<td class='muted'>{escape(doc['receivedDateTime'])}</td></tr>"
            )
        table = "<table><tr><th>From</th><th>Subject</th><th>Received</th></tr>"
        body = f"<p>{nav}</p>{table}{''.join(lines)}</table>"
        return _page(f"{user.display_name} — {current.display_name}", body)

    async def message(self, message_id: str) -> Response | None:
        for user in await self.directory.users():
            try:
                stored = await self.messages.get(Mailbox.reader(user), message_id)
            except (NotFoundError, MalformedIdError):
                continue
            doc = msgspec.json.decode(stored.document)
            to = ", ".join(_who(r) for r in doc.get("toRecipients", []))
            body = doc.get("body") or {}
            content = body.get("content") or ""
            if body.get("contentType") == "html":
                shown = f'<iframe sandbox srcdoc="{escape(content)}"></iframe>'
            else:
                shown = f"<pre>{escape(content)}</pre>"
            meta = (
                f"<p><b>From:</b> {escape(_who(doc.get('from')))}<br><b>To:</b> {escape(to)}<br>"
                f"<b>Date:</b> {escape(doc['sentDateTime'])}<br><b>Draft:</b> {doc['isDraft']}</p>"
            )
            return _page(doc.get("subject") or "(no subject)", meta + shown)
        return None
