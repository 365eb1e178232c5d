"""Text that is safe to store and to put in a header, whatever a client or a sender gave."""

from __future__ import annotations

import re

# every character str.splitlines() breaks on, and the other C0/C1 controls and DEL
_UNSAFE_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def storable(text: str) -> str:
    """Text both engines store as it is: NUL (PostgreSQL refuses it) and anything that is not
    valid UTF-8 (lone surrogates, a parser's escapes of undecodable bytes) become U+FFFD."""
    if text.isascii() and "\x00" not in text:
        return text
    cleaned = text.replace("\x00", "\ufffd")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        errors = "surrogateescape" if _escaped(cleaned) else "surrogatepass"
        raw = cleaned.encode("utf-8", errors)
        return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
    return cleaned


def _escaped(text: str) -> bool:
    """Only surrogates of the surrogateescape range (undecodable bytes a parser kept)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def one_line(text: str) -> str:
    """Storable text on one line: line breaks of every kind (CR, LF, U+2028, ...) and other
    control characters become a space, so that it can go into any header."""
    return " ".join(_UNSAFE_IN_LINE.sub(" ", storable(text)).split())
