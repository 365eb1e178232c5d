"""Reading what a client sends the identity platform: form bodies and query strings (strictly:
UTF-8, no control characters, no parameter twice, bounded), and HTTP Basic client
credentials."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qsl, unquote

from graphpost.errors import SignInError

MAX_FIELDS = 64
MAX_VALUE_CHARS = 16_384
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def malformed(why: str) -> SignInError:
    return SignInError("invalid_request", 9002313, f"Invalid request. {why}")


def parse_pairs(raw: bytes, what: str) -> dict[str, str]:
    """``a=1&b=2`` → a dict; an error for what a strict reader refuses."""
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict",
            max_num_fields=MAX_FIELDS,
        )  # fmt: skip
    except UnicodeDecodeError:
        raise malformed(f"The {what} is not valid UTF-8.") from None
    except ValueError:
        raise malformed(f"The {what} has more than {MAX_FIELDS} parameters.") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise malformed(f"The parameter '{key[:40]}' is given more than once.")
        if _CONTROL.search(key) or _CONTROL.search(value):
            raise malformed(
                f"The parameter '{_CONTROL.sub('?', key)[:40]}' contains a control character."
            )
        if len(value) > MAX_VALUE_CHARS:
            raise malformed(f"The parameter '{key[:40]}' is too long.")
        out[key] = value
    return out


def form_body(content_type: str | None, body: bytes) -> dict[str, str]:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise malformed(
            "The request body must be application/x-www-form-urlencoded "
            f"(got '{_CONTROL.sub('?', ctype)[:60] or 'nothing'}')."
        )
    return parse_pairs(body, "request body")


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(urlencode(id):urlencode(secret))`` (RFC 6749 §2.3.1)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise SignInError(
            "invalid_client", 7000215, "The Authorization header is not valid Basic "
            "credentials.", status=401,
        ) from None  # fmt: skip
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise SignInError(
            "invalid_client", 7000215, "The Authorization header is not valid Basic "
            "credentials.", status=401,
        )  # fmt: skip
    client_id, secret = unquote(client_id), unquote(secret)
    if _CONTROL.search(client_id) or _CONTROL.search(secret):
        raise malformed("The client credentials contain a control character.")
    return client_id, secret
