"""The web page's session cookie and signed links: HMAC-SHA256 over a small value, with a
secret every process of one server shares (``runtime`` derives it from the token signing key,
which lives in the data directory). Nothing is kept server side: a session ends at its expiry
or when its cookie is cleared (signing out); rotating the signing key ends every session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import msgspec

from graphpost.domain import times

COOKIE = "graphpost_web"
_decode = msgspec.json.Decoder(tuple[str, str, int]).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """Who signed in (``user_id``; "" for the emulator's open page, which signs nobody in but
    still needs a CSRF token), the CSRF token of their state-changing requests, and when the
    session ends (epoch seconds)."""

    user_id: str
    csrf: str
    expires: int


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"graphpost web page\0" + secret).digest()

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def new_session(self, user_id: str, lifetime: float) -> tuple[Session, str]:
        session = Session(user_id, secrets.token_urlsafe(24), int(times.wall() + lifetime))
        body = _b64(msgspec.json.encode((session.user_id, session.csrf, session.expires)))
        return session, f"{body}.{self._mac(body)}"

    def session(self, value: str | None) -> Session | None:
        """The session a cookie value holds, if it is ours, intact and not expired."""
        if not value or len(value) > 1024 or value.count(".") != 1 or not value.isascii():
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            user_id, csrf, expires = _decode(_unb64(body))
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
            return None
        if expires <= times.wall():
            return None
        return Session(user_id, csrf, expires)

    def link_token(self, what: str, lifetime: int = 3600) -> str:
        """A token for one path (``what``) until ``lifetime`` seconds from now: for requests
        a browser sends without the session cookie (images inside the sandboxed body)."""
        expires = int(times.wall()) + lifetime
        return f"{expires}.{self._mac(f'{what}|{expires}')}"

    def check_link(self, what: str, token: str | None) -> bool:
        if not token or len(token) > 200 or token.count(".") != 1 or not token.isascii():
            return False
        expires, mac = token.split(".")
        if not expires.isdigit() or len(expires) > 12 or int(expires) <= times.wall():
            return False
        return hmac.compare_digest(mac, self._mac(f"{what}|{int(expires)}"))
