"""Subscriptions and change notifications, as values: the input a client writes, the resources
one may subscribe to, the limits, and the notification objects sent to a webhook."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from graphpost.domain.reader import EntityInput
from graphpost.errors import InvalidInputError

CHANGE_TYPES = ("created", "updated", "deleted")
MAX_CLIENT_STATE = 128
# Outlook messages: 10,080 minutes (under 7 days) in Graph's current docs, 4,230 minutes (under
# three days) in earlier ones; graphpost allows the longer only with a lifecycleNotificationUrl,
# where it warns before the end (reauthorizationRequired)
MAX_MINUTES = 10_080
MAX_MINUTES_WITHOUT_LIFECYCLE = 4_230
MIN_MINUTES = 45  # an earlier expiry is set to 45 minutes after the request, as Graph does
MAX_PER_MAILBOX = 1000  # Graph: 1000 active subscriptions per mailbox, all apps together
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")


class SubscriptionInput(EntityInput):
    """A subscription as POST and PATCH carry it; read-only properties are accepted (an SDK
    echoes what it read) and ignored; the values' types are checked by the service."""

    graph_type: ClassVar[str] = "microsoft.graph.subscription"
    change_type: Any = None
    notification_url: Any = None
    lifecycle_notification_url: Any = None
    resource: Any = None
    expiration_date_time: Any = None
    client_state: Any = None
    latest_supported_tls_version: Any = None
    include_resource_data: Any = None
    encryption_certificate: Any = None
    encryption_certificate_id: Any = None
    notification_url_app_id: Any = None
    notification_query_options: Any = None
    notification_content_type: Any = None
    # read-only
    application_id: Any = msgspec.UNSET
    creator_id: Any = msgspec.UNSET


@dataclass(frozen=True, slots=True)
class Resource:
    """What a ``resource`` path names: whose mailbox (None: /me), messages or folders, and for
    messages of one folder, the folder's id or well-known name."""

    user_key: str | None
    kind: str  # "message" | "folder"
    folder_key: str | None


_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\('((?:[^']|'')*)'\)|\(([^)']*)\))?$")


def _segments(path: str) -> list[str]:
    out: list[str] = []
    for seg in path.split("/"):
        m = _SEGMENT.match(seg)
        if m is None:
            out.append(seg)
            continue
        out.append(m.group(1))
        key = m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3)
        if key is not None:
            out.append(key)
    return out


def parse_resource(value: object) -> Resource:
    """``me/messages``, ``users/{id}/messages``, ``me/mailFolders('inbox')/messages`` (or
    ``…/mailFolders/{id}/messages``), ``me/mailFolders``; a leading ``/`` is allowed."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("resource is required: e.g. me/mailFolders('inbox')/messages.")
    text = value.strip()
    unsupported = InvalidInputError(
        f"The resource '{_shown(text)}' is not supported: subscribe to me/messages, "
        "users/{id}/messages, me/mailFolders('{id}')/messages or me/mailFolders.",
        target="resource",
    )
    if len(text) > 1024 or "?" in text or any(ord(c) < 0x20 for c in text):
        raise unsupported
    parts = _segments(text.lstrip("/"))
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts or any(not p for p in parts):
        raise unsupported
    head = parts[0].lower()
    if head == "me":
        user_key, rest = None, parts[1:]
    elif head == "users" and len(parts) >= 2:
        user_key, rest = parts[1], parts[2:]
    else:
        raise unsupported
    lowered = [p.lower() for p in rest]
    if lowered == ["messages"]:
        return Resource(user_key, "message", None)
    if lowered == ["mailfolders"]:
        return Resource(user_key, "folder", None)
    if len(rest) == 3 and lowered[0] == "mailfolders" and lowered[2] == "messages":
        return Resource(user_key, "message", rest[1])
    raise unsupported


def parse_change_types(value: object) -> frozenset[str]:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            "changeType is required: created, updated, deleted, or several of them "
            "separated by commas.",
            target="changeType",
        )
    kinds = [k.strip().lower() for k in value.split(",")]
    for k in kinds:
        if k not in CHANGE_TYPES:
            raise InvalidInputError(
                f"changeType '{_shown(k)}' is not one of created, updated, deleted.",
                target="changeType",
            )
    return frozenset(kinds)


def _shown(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned if len(cleaned) <= 200 else cleaned[:200] + "…"


def shown(text: str) -> str:
    return _shown(text)


# ------------------------------------------------------------------- notification objects

_encode = msgspec.json.Encoder().encode


def change_body(*, change_type: str, mailbox_id: str, kind: str, item_id: str) -> bytes:
    """What a change notification says of the change (stored; the subscription's properties
    and the sequence number are added when it is sent)."""
    if kind == "folder":
        resource = f"Users/{mailbox_id}/MailFolders/{item_id}"
        odata_type = "#Microsoft.Graph.MailFolder"
    else:
        resource = f"Users/{mailbox_id}/Messages/{item_id}"
        odata_type = "#Microsoft.Graph.Message"
    return _encode(
        {
            "changeType": change_type,
            "resource": resource,
            "resourceData": {
                "@odata.type": odata_type,
                "@odata.id": resource,
                "id": item_id,
            },
        }
    )


def lifecycle_body(event: str) -> bytes:
    return _encode({"lifecycleEvent": event})


def notification(
    stored: bytes,
    *,
    subscription_id: str,
    expiration: str,
    client_state: str | None,
    tenant_id: str,
    sequence_number: int,
) -> dict[str, Any]:
    """The notification object as sent: Graph's properties, and graphpost's
    ``sequenceNumber`` (1, 2, 3 … per subscription and URL: a gap means a notification lost)."""
    body: dict[str, Any] = msgspec.json.decode(stored)
    return {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": expiration,
        "clientState": client_state,
        "tenantId": tenant_id,
        "sequenceNumber": sequence_number,
        **body,
    }


def collection(items: list[dict[str, Any]]) -> bytes:
    return _encode({"value": items})
