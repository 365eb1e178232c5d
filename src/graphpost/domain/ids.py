"""Opaque ids in Graph's style, always from the URL-safe base64 alphabet (no ``/`` or ``+``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
import time
import uuid

_ID_SHAPE = re.compile(r"^[A-Za-z0-9_\-+/]+={0,2}$")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def guid() -> str:
    """A lower-case GUID, as Entra uses for object ids."""
    return str(uuid.uuid4())


def message_id() -> str:
    """A new message id: looks like Exchange's ``AAMk…`` ids, URL-safe, 48 characters."""
    return "AAMkAG" + _b64url(os.urandom(31))


def folder_id() -> str:
    return "AQMkAD" + _b64url(os.urandom(22))


def attachment_id() -> str:
    return "AAMkAGAT" + _b64url(os.urandom(31))


def attachment_id_for(seed: str) -> str:
    """An attachment id derived from a secret ``seed`` (one-way: the id does not reveal it)."""
    return "AAMkAGAT" + _b64url(hashlib.sha256(seed.encode()).digest()[:31])


def conversation_id_for(index: str) -> str:
    """The conversationId of a conversation index: derived from its 22-byte root, as Exchange
    derives ConversationId from Thread-Index, so every reply (and every copy delivered to
    another mailbox) lands in the same conversation."""
    try:
        root = base64.b64decode(index)[:22]
    except (binascii.Error, ValueError):
        root = index.encode()
    return "AAQkAG" + _b64url(hashlib.sha256(root).digest()[:22])


def child_conversation_index(parent: str, seconds: float | None = None) -> str:
    """A reply's index: the parent's bytes plus a 5-byte child block (MAPI rules, simplified)."""
    try:
        raw = base64.b64decode(parent)
    except (binascii.Error, ValueError):
        return conversation_index(seconds)
    when = time.time() if seconds is None else seconds
    block = struct.pack(">Q", int(when * 10_000_000) & 0xFFFFFFFFFF)[3:]
    return base64.b64encode(raw + block).decode("ascii")


def change_key() -> str:
    """A new change key. Standard base64 like Exchange's (``CQAAABYAAAB…``): never a quote."""
    return "CQAAABYAAAB" + base64.b64encode(os.urandom(18)).decode("ascii")


def conversation_index(seconds: float | None = None) -> str:
    """A 22-byte conversation root index (MAPI PidTagConversationIndex), base64.

    One reserved byte, the top five bytes of the FILETIME, and a 16-byte GUID.
    """
    when = time.time() if seconds is None else seconds
    filetime = int((when + 11644473600) * 10_000_000)
    head = struct.pack(">Q", filetime)[:6]
    raw = b"\x01" + head[1:6] + uuid.uuid4().bytes
    return base64.b64encode(raw).decode("ascii")


def internet_message_id(domain: str) -> str:
    """An RFC 5322 Message-ID for a new item: ``<GP…@domain>``."""
    return f"<GP{uuid.uuid4().hex.upper()}@{domain}>"


def is_well_formed(value: str, *, min_bytes: int = 6) -> bool:
    """True when ``value`` could be a Graph item id (base64 of at least ``min_bytes`` bytes).

    Ids that are well formed but unknown are "not found"; anything else is "malformed".
    """
    if not value or len(value) > 512 or not _ID_SHAPE.match(value):
        return False
    text = value.replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= min_bytes
