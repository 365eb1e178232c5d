"""Message bodies: Exchange's HTML wrapping and the plain-text bodyPreview."""

from __future__ import annotations

import html
import re

PREVIEW_LIMIT = 255
PREVIEW_SCAN_LIMIT = 1 << 20

# Exactly what Exchange wraps an HTML fragment in (the "Create Message" page, example 1).
_HTML_HEAD = (
    "<html>\r\n<head>\r\n"
    '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
    '<meta content="text/html; charset=us-ascii">\r\n'
    "</head>\r\n<body>\r\n"
)
_HTML_TAIL = "\r\n</body>\r\n</html>\r\n"

# Every pattern here is linear in the input: a hostile body (thousands of "<" or "<style"
# without an end) must not hold the event loop for seconds. So no pattern scans to the end of
# the text from each of many starting points: tags stop at the next "<", and what needs a
# closing part (comments, invisible elements) is found with str.find, once.
_INVISIBLE_OPEN = re.compile(r"<(head|style|script|title)\b", re.IGNORECASE)
_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6]|p|div|li|tr|h[1-6])\b[^<>]*>", re.I)


def content_type(value: str) -> str:
    """``text`` or ``html`` from any case; ValueError otherwise."""
    lowered = value.lower()
    if lowered not in ("text", "html"):
        raise ValueError(value)
    return lowered


def is_full_document(content: str) -> bool:
    head = content.lstrip()[:15].lower()
    return head.startswith(("<html", "<!doctype"))


def wrap_html(content: str) -> str:
    """Wrap an HTML fragment as Exchange does; a full document is kept as it came."""
    if not content or is_full_document(content):
        return content
    return _HTML_HEAD + content + _HTML_TAIL


def html_to_text(content: str, *, window: int | None = None) -> str:
    """Readable text of HTML, as a browser would lay it out in lines.

    Invisible parts (head, style, script) are dropped, tags stripped, entities decoded, runs of
    white space folded, and block elements and ``<br>`` become line breaks (CRLF). With
    ``window``, only that many characters from the start of the body are read.
    """
    source = content
    body_at = source.find("<body")
    if body_at < 0:
        body_at = source.lower().find("<body")
    if body_at >= 0:
        source = source[body_at:]
    if window is not None:
        source = source[:window]
    source = _drop_invisible(source)
    source = _BREAKS.sub("\x00", source)
    source = html.unescape(_strip_tags(source))
    lines = [" ".join(line.split()) for line in source.split("\x00")]
    return "\r\n".join(lines).strip()


_INVISIBLE: tuple[str, ...] = ("head", "style", "script", "title")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")


def _openers(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"<({'|'.join(names)})\b", re.IGNORECASE)


def _drop_invisible(source: str) -> str:
    """Remove <head>, <style>, <script> and <title> elements with their content (an element
    without its end tag is left as it is, as before). An element name found without an end
    tag is not looked for again: no later element of that name can end either."""
    lower = source.lower()
    out: list[str] = []
    at = 0
    names = _INVISIBLE
    openers = _INVISIBLE_OPEN
    search_from = 0
    while names:
        m = openers.search(lower, search_from)
        if m is None:
            break
        name = m.group(1).lower()
        end = lower.find(f"</{name}", m.end())
        close = lower.find(">", end) if end >= 0 else -1
        if close < 0:
            names = tuple(n for n in names if n != name)
            openers = _openers(names) if names else openers
            search_from = m.end()
            continue
        out.append(source[at : m.start()])
        out.append(" ")
        at = search_from = close + 1
    out.append(source[at:])
    return "".join(out)


def _strip_tags(source: str) -> str:
    """Remove comments and tags, in C and in one pass each: comments only up to the last
    "-->" (so every "<!--" searched for has an end to find), tags as "<" ... ">" without
    another "<" inside (so no search runs past the next "<"). A "<" with no ">" is text."""
    last = source.rfind("-->")
    if last >= 0:
        source = _COMMENT.sub("", source[: last + 3]) + source[last + 3 :]
    return _TAG.sub("", source)


def preview(kind: str, content: str) -> str:
    """bodyPreview: tag-free text, line breaks kept as CRLF, at most 255 characters."""
    if not content:
        return ""
    if kind == "html":
        # most previews need only the start of the document: look further only if needed
        text = ""
        # and never more than the first MiB: a body of megabytes of markup before its first
        # words previews as what that MiB holds
        for window in (640, 4096, 32768, PREVIEW_SCAN_LIMIT):
            text = html_to_text(content, window=window)
            if len(content) <= window or len(text) > PREVIEW_LIMIT:
                break
    else:
        text = content[: PREVIEW_LIMIT * 4].replace("\r\n", "\n").replace("\r", "\n")
        text = text.strip().replace("\n", "\r\n")
    return text[:PREVIEW_LIMIT].rstrip()
