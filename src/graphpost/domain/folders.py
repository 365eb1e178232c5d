"""Well-known folders: every mailbox has them, with stable ids.

``clutter`` is left out: Exchange retired Clutter for Focused Inbox, and a mailbox without it
lets clients create their own "Clutter" folder as the Graph docs' example does.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from msgspec import UNSET

from graphpost.domain.reader import EntityInput


class WellKnown(NamedTuple):
    name: str  # the well-known name, lower case
    display_name: str
    hidden: bool
    top_level: bool  # directly under msgfolderroot (False: the root itself or under a hidden one)


ROOT = "msgfolderroot"

WELL_KNOWN: tuple[WellKnown, ...] = (
    WellKnown(ROOT, "Top of Information Store", False, False),
    WellKnown("archive", "Archive", False, True),
    WellKnown("conversationhistory", "Conversation History", False, True),
    WellKnown("deleteditems", "Deleted Items", False, True),
    WellKnown("drafts", "Drafts", False, True),
    WellKnown("inbox", "Inbox", False, True),
    WellKnown("junkemail", "Junk Email", False, True),
    WellKnown("outbox", "Outbox", False, True),
    WellKnown("sentitems", "Sent Items", False, True),
    WellKnown("conflicts", "Conflicts", True, True),
    WellKnown("localfailures", "Local Failures", True, True),
    WellKnown("scheduled", "Scheduled", True, True),
    WellKnown("searchfolders", "Finder", True, True),
    WellKnown("serverfailures", "Server Failures", True, True),
    WellKnown("syncissues", "Sync Issues", True, True),
    WellKnown("recoverableitemsdeletions", "Recoverable Items Deletions", True, True),
)

WELL_KNOWN_NAMES = frozenset(w.name for w in WELL_KNOWN) | {"clutter"}


def well_known_name(value: str) -> str | None:
    """The canonical well-known name for ``value`` in any case, or None."""
    lowered = value.lower()
    return lowered if lowered in WELL_KNOWN_NAMES else None


class MailFolderInput(EntityInput):
    """A mailFolder as POST and PATCH carry it; the services check the values' types. The
    read-only properties a client may echo back are accepted and ignored."""

    graph_type: ClassVar[str] = "microsoft.graph.mailFolder"
    display_name: Any = None
    is_hidden: Any = None
    # a mailSearchFolder's (with @odata.type microsoft.graph.mailSearchFolder)
    include_nested_folders: Any = UNSET
    source_folder_ids: Any = UNSET
    filter_query: Any = UNSET
    # read-only: accepted, never read
    is_supported: Any = UNSET
    parent_folder_id: Any = UNSET
    child_folder_count: Any = UNSET
    unread_item_count: Any = UNSET
    total_item_count: Any = UNSET
    size_in_bytes: Any = UNSET


SEARCH_FOLDER_TYPE = "microsoft.graph.mailsearchfolder"


def is_search_type(odata_type: object) -> bool:
    """``@odata.type`` names a mailSearchFolder (any case, with or without '#')."""
    return isinstance(odata_type, str) and odata_type.lstrip("#").lower() == SEARCH_FOLDER_TYPE
