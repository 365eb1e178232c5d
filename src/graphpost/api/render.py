"""Graph JSON for messages, folders, attachments and collections.

A message's stored document already is its default JSON; the common case splices the OData
annotations in front of it without decoding it.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import msgspec

from graphpost.domain.body import html_to_text
from graphpost.domain.message import FILE, ITEM, REFERENCE, Attachment, Item, Message
from graphpost.ports.folders import Folder
from graphpost.ports.messages import StoredMessage

encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

# Every property $select may name, lower case → canonical (default ones in wire order).
DEFAULT_PROPS = tuple(f.encode_name for f in msgspec.structs.fields(Message))
EXTRA_PROPS = ("internetMessageHeaders", "uniqueBody")
MESSAGE_PROPS = {name.lower(): name for name in (*DEFAULT_PROPS, *EXTRA_PROPS)}
HIDDEN_BASIC = ("body", "bodyPreview", "uniqueBody")
OPEN_EXTENSION = "#microsoft.graph.openTypeExtension"
SEARCH_FOLDER = "#microsoft.graph.mailSearchFolder"
# what $select may name on a folder (a search folder's own properties too), lower case →
# canonical
FOLDER_PROPS = {
    name.lower(): name
    for name in ("id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount",
                 "totalItemCount", "isHidden", "isSupported", "includeNestedFolders",
                 "sourceFolderIds", "filterQuery")
}  # fmt: skip
FILE_ATTACHMENT = "#microsoft.graph.fileAttachment"
_ATTACHMENT_TYPES = {
    FILE: FILE_ATTACHMENT,
    ITEM: "#microsoft.graph.itemAttachment",
    REFERENCE: "#microsoft.graph.referenceAttachment",
}


class Renderer:
    """Builds response bodies; knows the public base URL for contexts and links."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.metadata = f"{self.base}/v1.0/$metadata#"

    def context(self, fragment: str) -> str:
        return self.metadata + fragment

    # ------------------------------------------------------------ messages

    def message(
        self,
        stored: StoredMessage,
        *,
        context: str | None,
        select: list[str] | None = None,
        basic_only: bool = False,
        text_body: bool = False,
        extensions: list[dict[str, Any]] | None = None,
        extensions_context: str | None = None,
        attachments: list[Attachment] | None = None,
        more: dict[str, Any] | None = None,
        attachment_select: list[str] | None = None,
    ) -> bytes:
        """The message's JSON; ``more``: expanded properties (with their annotations) added
        after the others, unless the caller reads basic properties only."""
        etag = b'"@odata.etag":' + encode(f'W/"{stored.change_key}"')
        head = b"{" + (b'"@odata.context":' + encode(context) + b"," if context else b"") + etag
        simple = (
            select is None
            and not basic_only
            and not text_body
            and extensions is None
            and attachments is None
            and more is None
        )
        if simple:
            return head + b"," + stored.document[1:]
        doc: dict[str, Any] = _decode(stored.document)
        out: dict[str, Any] = {}
        if select is None:
            out = doc
        else:
            out["id"] = doc["id"]
            for name in select:
                if name == "internetMessageHeaders":
                    headers = stored.headers_document
                    out[name] = _decode(headers) if headers else []
                elif name == "uniqueBody":
                    out[name] = doc["body"]
                elif name in doc:
                    out[name] = doc[name]
        if basic_only:
            for name in HIDDEN_BASIC:
                out.pop(name, None)
        if text_body:
            for name in ("body", "uniqueBody"):
                body = out.get(name)
                if body and body.get("contentType") == "html":
                    out[name] = {"contentType": "text", "content": html_to_text(body["content"])}
        if attachments is not None and not basic_only:
            out["attachments@odata.context"] = self.context(
                f"users('{stored.mailbox_id}')/messages('{quote(stored.id)}')/attachments"
            )
            out["attachments"] = [self.attachment(a, select=attachment_select) for a in attachments]
        if extensions is not None and not basic_only:
            if extensions_context:
                out["extensions@odata.context"] = extensions_context
            out["extensions"] = [self.extension(e) for e in extensions]
        if more and not basic_only:
            out.update(more)
        body_bytes = encode(out)
        return head + (b"," + body_bytes[1:] if len(body_bytes) > 2 else b"}")

    def extension(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.type": OPEN_EXTENSION, **doc}

    def attachment(self, a: Attachment, *, select: list[str] | None = None) -> dict[str, Any]:
        """An attachment as Graph shows it; with ``select``, its id and those properties."""
        out: dict[str, Any] = {"@odata.type": _ATTACHMENT_TYPES.get(a.kind, FILE_ATTACHMENT)}
        if a.kind == FILE:
            out["@odata.mediaContentType"] = a.content_type
        props: dict[str, Any] = {
            "id": a.id,
            "lastModifiedDateTime": a.last_modified_date_time,
            "name": a.name,
            "contentType": a.content_type,
            "size": a.size,
            "isInline": a.is_inline,
        }
        if a.kind == FILE:
            props["contentId"] = a.content_id
            props["contentLocation"] = None
            if select is None or "contentBytes" in select:  # encoded only when shown
                props["contentBytes"] = base64.b64encode(a.content).decode("ascii")
        elif a.kind == REFERENCE and a.reference is not None:
            props.update(msgspec.to_builtins(a.reference))
        if select is None:
            out.update(props)
        else:
            out["id"] = a.id
            out.update((name, props[name]) for name in select if name in props)
        return out

    def item(self, item: Item) -> dict[str, Any]:
        """An attached message (``$expand=microsoft.graph.itemAttachment/item``): its
        properties, headers and own attachments; it has no id, folder or change key of its
        own."""
        doc: dict[str, Any] = msgspec.to_builtins(item.message)
        for empty in ("changeKey", "parentFolderId"):
            doc.pop(empty, None)
        out: dict[str, Any] = {"@odata.type": "#microsoft.graph.message", **doc}
        out["internetMessageHeaders"] = [{"name": h.name, "value": h.value} for h in item.headers]
        if item.attachments:
            out["attachments"] = [self.attachment(a) for a in item.attachments]
        return out

    # ------------------------------------------------------------ folders

    @staticmethod
    def folder_dict(f: Folder, select: list[str] | None = None) -> dict[str, Any]:
        """A folder as Graph shows it (a search folder with its ``@odata.type`` and
        definition); with ``select``, its id and those properties."""
        out: dict[str, Any] = {}
        if f.search is not None:
            out["@odata.type"] = SEARCH_FOLDER
        props: dict[str, Any] = {
            "id": f.id,
            "displayName": f.display_name,
            "parentFolderId": f.parent_id,
            "childFolderCount": f.child_count,
            "unreadItemCount": f.unread_count,
            "totalItemCount": f.total_count,
            "isHidden": f.is_hidden,
        }
        if f.search is not None:
            props["isSupported"] = True
            props["includeNestedFolders"] = f.search.include_nested
            props["sourceFolderIds"] = list(f.search.source_ids)
            props["filterQuery"] = f.search.filter_query
        if select is None:
            out.update(props)
        else:
            out["id"] = f.id
            out.update((name, props[name]) for name in select if name in props)
        return out

    def folder(self, f: Folder, *, context: str, select: list[str] | None = None) -> bytes:
        return encode({"@odata.context": context, **self.folder_dict(f, select)})

    # ------------------------------------------------------------ collections

    @staticmethod
    def collection(
        *,
        context: str,
        items: list[bytes],
        count: int | None = None,
        next_link: str | None = None,
    ) -> bytes:
        parts = [b'{"@odata.context":', encode(context)]
        if count is not None:
            parts += [b',"@odata.count":', str(count).encode()]
        parts += [b',"value":[', b",".join(items), b"]"]
        if next_link:
            parts += [b',"@odata.nextLink":', encode(next_link)]
        parts.append(b"}")
        return b"".join(parts)
