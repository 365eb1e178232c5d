"""What a mailbox decides about a message arriving in it, from its headers alone: is it
automated or bulk (Focused Inbox's default), and may an automatic reply answer it (RFC 3834,
and what Exchange honours: ``X-Auto-Response-Suppress``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from graphpost.domain.message import Header

# never answered: the null sender's usual names (a report arrives from them)
NO_REPLY_LOCALS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply"})
_LIST_HEADERS = frozenset({"list-id", "list-unsubscribe", "list-post", "list-help"})
_BULK = frozenset({"bulk", "list", "junk"})
# the header that marks an automatic reply; its value, and Exchange's suppression header
AUTO_SUBMITTED = "Auto-Submitted"
AUTO_REPLIED = "auto-replied"
SUPPRESS = "X-Auto-Response-Suppress"
# an upstream check's failed verdict (RFC 8601): the sender may be forged
_FAILED_CHECK = re.compile(r"(?:^|[;\s])(spf|dmarc)\s*=\s*(fail|softfail)\b", re.IGNORECASE)


def _values(headers: Iterable[Header]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h in headers:
        out.setdefault(h.name.lower(), []).append(h.value.strip())
    return out


def _first_word(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def automated(headers: Iterable[Header]) -> str | None:
    """Why a message looks sent by a machine or to a list (None: it does not)."""
    found = _values(headers)
    for value in found.get("auto-submitted", []):
        if _first_word(value) not in ("", "no"):
            return f"Auto-Submitted: {_first_word(value)}"
    for value in found.get("precedence", []):
        if _first_word(value) in _BULK:
            return f"Precedence: {_first_word(value)}"
    for name in sorted(_LIST_HEADERS & found.keys()):
        return f"a mailing list ({name})"
    for value in found.get("content-type", []):
        if _first_word(value) == "multipart/report":
            return "a delivery or disposition report"
    return None


def suspect(headers: Iterable[Header]) -> str | None:
    """Why a message's sender may be forged, by the verdict of a check before us (a spam
    filter's ``X-Spam-Flag``/``X-Spam-Status``, ``Authentication-Results`` with SPF or DMARC
    failed); None: no such verdict. A forged verdict can only silence a reply, never cause
    one, so the headers are believed whoever wrote them."""
    found = _values(headers)
    for value in found.get("x-spam-flag", []):
        if _first_word(value) == "yes":
            return "X-Spam-Flag: YES"
    for value in found.get("x-spam-status", []):
        if value.lower().startswith("yes"):
            return "X-Spam-Status: Yes"
    for value in found.get("authentication-results", []):
        failed = _FAILED_CHECK.search(value)
        if failed is not None:
            return f"Authentication-Results: {failed.group(1).lower()}={failed.group(2).lower()}"
    return None


def reply_refused(headers: Iterable[Header], sender: str | None) -> str | None:
    """Why no automatic reply may answer this message (None: one may)."""
    if not sender or "@" not in sender:
        return "no sender to answer (a null reverse path)"
    if sender.rsplit("@", 1)[0].lower() in NO_REPLY_LOCALS:
        return f"the sender {sender} is a system address"
    listed = list(headers)
    why = automated(listed)
    if why is not None:
        return why
    for value in _values(listed).get(SUPPRESS.lower(), []):
        words = {w.strip().lower() for w in value.split(",")}
        if words & {"all", "oof", "autoreply"}:
            return f"{SUPPRESS}: {value}"
    return suspect(listed)


def classify(headers: Iterable[Header], override: str | None) -> str:
    """Focused Inbox: the sender's override when there is one; else ``other`` for what looks
    automated or bulk (lists, automatic replies and reports, ``Precedence: bulk``), else
    ``focused``."""
    if override is not None:
        return override
    return "other" if automated(headers) is not None else "focused"
