"""The ONE e-mail address check: what may go into an SMTP envelope (RFC 5321, RFC 6531).

Used before a send is accepted (every recipient), by the MIME writer (every address it
writes) and by the directory (a user's mail and userPrincipalName).

- local part: a dot-string (atoms of RFC 5321 ``atext`` joined by single dots) or a quoted
  string (printable ASCII; ``\\`` quotes one character); at most 64 octets;
- domain: a hostname (labels of letters, digits and inner hyphens, at most 63 octets each)
  or an address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``); at most 255 octets;
- the whole address at most 254 octets (the 256-octet path less its ``<>``);
- non-ASCII letters, digits and marks are allowed in both halves: such an address goes out
  as SMTPUTF8 (RFC 6531); controls, spaces, line and paragraph separators, format
  characters, private-use and unassigned code points, and ``<>`` never are.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_ADDRESS = 254
MAX_LABEL = 63

_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_DOT_STRING = re.compile(rf"[{_ATEXT}\x80-\U0010ffff]+(?:\.[{_ATEXT}\x80-\U0010ffff]+)*")
# quoted-string: qtextSMTP (printable ASCII but " and \) or a quoted pair; no space (see below)
_QUOTED = re.compile(r'"(?:[\x21\x23-\x5b\x5d-\x7e\x80-\U0010ffff]|\\[\x21-\x7e])*"')
_LABEL = re.compile(r"[A-Za-z0-9\x80-\U0010ffff](?:[A-Za-z0-9\-\x80-\U0010ffff]*"
                    r"[A-Za-z0-9\x80-\U0010ffff])?")  # fmt: skip
_BAD_CATEGORIES = ("C", "Z")  # Cc Cf Cs Co Cn, Zs Zl Zp


def _clean_unicode(text: str) -> bool:
    """No non-ASCII character a mail system could not show or that hides as something else."""
    return all(
        ch.isascii() or not unicodedata.category(ch).startswith(_BAD_CATEGORIES) for ch in text
    )


def _octets(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _domain_ok(domain: str) -> bool:
    if domain.startswith("["):
        if not domain.endswith("]"):
            return False
        inner = domain[1:-1]
        try:
            if inner[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(inner[5:])
            else:
                ipaddress.IPv4Address(inner)
        except ValueError:
            return False
        return True
    if _octets(domain) > MAX_DOMAIN:
        return False
    labels = domain.split(".")
    return all(_LABEL.fullmatch(label) and _octets(label) <= MAX_LABEL for label in labels)


def problem(address: str) -> str | None:
    """Why ``address`` cannot go into an SMTP envelope, or None when it can."""
    if not address:
        return "it is empty"
    if not address.isascii() and not _clean_unicode(address):
        return "it contains a control, space or invisible character"
    if any(ord(ch) < 0x21 or ch == "\x7f" for ch in address):
        return "it contains a space or a control character"
    if "<" in address or ">" in address:
        return "it contains '<' or '>'"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "it is not of the form local-part@domain"
    if _octets(address) > MAX_ADDRESS:
        return f"it is longer than {MAX_ADDRESS} octets"
    if _octets(local) > MAX_LOCAL:
        return f"its local part is longer than {MAX_LOCAL} octets"
    if not (_DOT_STRING.fullmatch(local) or _QUOTED.fullmatch(local)):
        return "its local part is neither a dot-atom nor a quoted string"
    if not _domain_ok(domain):
        return "its domain is neither a host name nor an address literal"
    return None


def is_valid(address: str) -> bool:
    return problem(address) is None


def needs_smtputf8(address: str) -> bool:
    """True when the address can go out only to a relay that offers SMTPUTF8."""
    return not address.isascii()


def shown(value: str, limit: int = 320) -> str:
    """``value`` for an error message: controls and invisible characters escaped, shortened."""
    out = []
    for ch in value[:limit]:
        if (ch.isascii() and ch.isprintable()) or (not ch.isascii() and _clean_unicode(ch)):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out) + ("…" if len(value) > limit else "")


def domain_of(address: str) -> str:
    """The domain as a reader would see it: what is not a letter, digit, dot or hyphen (quotes,
    controls, NUL, U+FFFD, spaces) is dropped, so ``contoso.com\\x00`` or ``contoso.com"`` is
    contoso.com."""
    tail = address.rsplit("@", 1)[-1].lower()
    return "".join(c for c in tail if c.isalnum() or c in ".-").strip(".")
