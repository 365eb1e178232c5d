"""Automatic replies (out of office): the reply a delivered message gets when its mailbox's
``automaticRepliesSetting`` is on, sent through the outbox like any send.

Once per sender per period: the submission's idempotency key names the mailbox's reply period
(``reply_epoch``, bumped by every change of the automatic replies, as Exchange forgets whom it
answered when they change) and the sender, so a second message from the same sender, a
concurrent delivery, a retry or a restart sends nothing more: the key is in the database
(``uq_submissions_idempotency``). The reply is queued after the delivery commits; a crash
between the two loses that one reply, never sends it twice.

Never answered (``domain.arrival.reply_refused``): a null or system sender, anything marked
``Auto-Submitted`` other than ``no`` (so two mailboxes answering each other stop after one
reply each), ``Precedence: bulk/list/junk``, mailing lists (``List-*``), reports, and
``X-Auto-Response-Suppress: All/OOF/AutoReply``, and mail a filter before us found spam or
forged (``arrival.suspect``: its sender is likely an innocent third party). The reply
carries ``Auto-Submitted: auto-replied`` and ``X-Auto-Response-Suppress: All``, as
Exchange's do.

At most ``per_minute`` replies per mailbox per minute (``GRAPHPOST_AUTOMATIC_REPLIES_PER_MINUTE``,
counted per process): a burst of distinct senders, forged ones costing nothing, is not turned
into as many replies to whoever was forged. A sender beyond the cap is not answered, nor
remembered as answered: a later message of theirs, once the minute has passed, is."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict, deque

import msgspec

from graphpost.domain import addresses, arrival, ids
from graphpost.domain.message import Header, MessageInput
from graphpost.domain.times import now
from graphpost.errors import AlreadyExistsError
from graphpost.ports.directory import User
from graphpost.ports.messages import NewMessage
from graphpost.services.directory import DirectoryService
from graphpost.services.mailbox import MailboxSettingsService
from graphpost.services.sending import SendService

log = logging.getLogger("graphpost.autoreply")
SUBJECT_PREFIX = "Automatic reply: "
PER_MINUTE = 30  # replies a mailbox sends at most per minute, by default
ANSWERED_KEPT = 10_000  # keys this process knows were answered (not counted again)


def reply_key(epoch: int, sender: str) -> str:
    """The idempotency key of the reply to ``sender`` in period ``epoch``."""
    digest = hashlib.sha256(sender.strip().lower().encode()).hexdigest()[:40]
    return f"automatic-reply {epoch} {digest}"


class AutomaticReplies:
    def __init__(
        self,
        settings: MailboxSettingsService,
        directory: DirectoryService,
        sending: SendService,
        *,
        per_minute: int = PER_MINUTE,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.sending = sending
        self.per_minute = per_minute
        self._sent: dict[str, deque[float]] = {}  # mailbox: its replies' times, last minute
        self._answered: OrderedDict[str, None] = OrderedDict()  # reply keys sent here

    def _allowed(self, mailbox_id: str, key: str) -> bool:
        """Whether a reply of ``key`` may be submitted now: one known answered is (the outbox
        sends nothing twice); a new one only within the mailbox's rate, which it then takes."""
        key = f"{mailbox_id} {key}"
        if key in self._answered:
            return True
        clock = time.monotonic()
        for stale in [m for m, q in self._sent.items() if not q or q[-1] <= clock - 60]:
            del self._sent[stale]
        recent = self._sent.setdefault(mailbox_id, deque())
        while recent and recent[0] <= clock - 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(clock)
        self._answered[key] = None
        while len(self._answered) > ANSWERED_KEPT:
            self._answered.popitem(last=False)
        return True

    async def consider(self, user: User, copy: NewMessage, sender: str | None) -> bool:
        """Send ``user``'s automatic reply to ``sender`` (the envelope's reverse path) for the
        message ``copy`` just delivered, if one is due; whether a reply was queued (or had
        been, for this sender in this period). Never raises: a reply is not worth a failed
        delivery."""
        try:
            return await self._consider(user, copy, sender)
        except Exception:
            log.exception("could not send the automatic reply of %s", user.id)
            return False

    async def _consider(self, user: User, copy: NewMessage, sender: str | None) -> bool:
        plan = await self.settings.reply_plan(user.id)
        if plan is None or not plan.active(now()):
            return False
        address = (sender or "").strip()
        if arrival.reply_refused(copy.headers, address) is not None:
            return False
        if addresses.problem(address) is not None or address.lower() in (
            user.mail.lower(),
            user.upn.lower(),
        ):
            return False
        tenant = await self.directory.tenant(addresses.domain_of(address))
        text = plan.message_for(internal=tenant is not None and tenant.id == user.tenant_id)
        if not text.strip():
            return False
        original = copy.message
        subject = SUBJECT_PREFIX + (original.subject or "")
        inp = msgspec.convert(
            {
                "subject": subject[:255],
                "body": {"contentType": "html", "content": text},
                "toRecipients": [{"emailAddress": {"address": address}}],
            },
            MessageInput,
        )
        refs = next((h.value for h in copy.headers if h.name.lower() == "references"), "")
        headers = [
            Header(arrival.AUTO_SUBMITTED, arrival.AUTO_REPLIED),
            Header(arrival.SUPPRESS, "All"),
            Header("In-Reply-To", original.internet_message_id),
            Header("References", " ".join([*refs.split()[-19:], original.internet_message_id])),
        ]
        key = reply_key(plan.epoch, address)
        if not self._allowed(user.id, key):
            log.warning(
                "automatic replies of %s: more than %d a minute; %s not answered",
                user.id, self.per_minute, addresses.shown(address),
            )  # fmt: skip
            return False
        try:
            await self.sending.send_automatic(
                user,
                inp,
                headers=headers,
                key=key,
                conversation_index=ids.child_conversation_index(original.conversation_index),
            )
        except AlreadyExistsError:  # a concurrent delivery from the same sender won the key
            return True
        except Exception:
            self._answered.pop(f"{user.id} {key}", None)  # not sent: not known answered
            raise
        return True
