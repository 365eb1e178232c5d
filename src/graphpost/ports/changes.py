"""The change log port: every change to a mailbox's messages and folders, in commit order.

Each write records its changes in the same transaction as the change itself (so no change is
ever missed, and none is seen before it is committed). ``seq`` is per mailbox, gap-free and
strictly increasing in commit order on both engines, so a reader that remembers the last seq it
saw and asks for what came after it never skips a change.

What a change says:

* a message created (insert, copy, delivery, a send's Sent Items copy, a report): ``created``
  in ``folder_id``;
* a message changed (PATCH, flags, read state, attachments, extended properties): ``updated``;
  moved (a move, a DELETE into Deleted Items, a send's draft into Sent Items): ``updated`` with
  ``prior_folder_id`` the folder it left and ``folder_id`` the one it is in now;
* a message deleted for good (permanentDelete, a delete from Deleted Items, its folder deleted):
  ``deleted``, ``folder_id`` the folder it was in;
* a folder: the same, with ``folder_id`` its parent (``prior_folder_id`` the parent it left when
  moved); a deleted folder records itself, its subfolders and their messages as deleted.

Open extensions are not recorded: they are not part of the message document a delta returns.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

MESSAGE = "message"
FOLDER = "folder"

CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"


class Change(msgspec.Struct, frozen=True):
    seq: int  # per mailbox, strictly increasing in COMMIT order
    kind: str  # "message" | "folder"
    item_id: str
    folder_id: str  # folder the item is in after the change (a folder: its parent)
    prior_folder_id: str | None  # the folder it left, when the change moved it
    change_type: str  # "created" | "updated" | "deleted"
    at_ms: int


class ChangeLog(Protocol):
    async def changes_after(self, mailbox_id: str, after_seq: int, limit: int) -> list[Change]:
        """Up to ``limit`` changes with seq > ``after_seq``, in seq order."""
        ...

    async def last_seq(self, mailbox_id: str) -> int:
        """The seq of the mailbox's last committed change (0: none yet)."""
        ...

    async def horizon(self, mailbox_id: str) -> int:
        """Changes with seq <= this were pruned: a reader that last saw an older seq cannot
        know what it missed."""
        ...

    async def counters(self, mailbox_id: str) -> tuple[int, int]:
        """``last_seq`` and ``horizon`` in one read."""
        ...
