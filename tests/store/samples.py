"""Users and messages the store contract tests write."""

from __future__ import annotations

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, item
from graphpost.ports.directory import User
from graphpost.ports.messages import NewMessage
from graphpost.services.directory import mailbox_folders
from tests.store.conftest import Stores


async def a_user(store: Stores, mail: str = "a@example.com") -> User:
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, "A Person", mail, mail)
    await store.directory.add_user(user, mailbox_folders(user.id))
    return user


def a_message(user: User, folder: str, *, subject: str = "s", read: bool = True,
              at: int = 1_700_000_000, to: str = "b@example.com") -> NewMessage:  # fmt: skip
    me = Recipient(EmailAddress("A", "a@example.com"))
    msg = item(
        message_id=ids.message_id(), folder_id=folder, now=at, web_base="http://x",
        conversation_index=ids.conversation_index(), attachments=[],
        internet_message_id=f"<{ids.guid()}@example.com>", subject=subject,
        body=ItemBody("text", subject), sender=me, from_=me,
        to=[Recipient(EmailAddress("B", to))], cc=[], bcc=[], reply_to=[], is_read=read,
        is_draft=True, categories=["Red"] if read else [],
    )  # fmt: skip
    return NewMessage(user.id, msg)
