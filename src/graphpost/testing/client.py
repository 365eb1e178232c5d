"""A client of the emulator's test controls (``/_graphpost/``), on the standard library only:
an app's tests use it against graphpost in-process or a running one."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

DEMO_USER = "AdeleV@contoso.onmicrosoft.com"
MAX_WAIT = 60.0  # the longest wait of GET /_graphpost/messages
DEMO_TENANT = "contoso.onmicrosoft.com"


class ControlError(Exception):
    """A test control answered with an error (its status and Graph's error body)."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status} {error.get('code', '')}: {error.get('message', body)}")
        self.status = status
        self.body = body


class GraphpostClient:
    """The test controls of one graphpost in emulator mode, at ``base_url``."""

    def __init__(self, base_url: str, *, timeout: float = 90.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._tokens: dict[tuple[str, ...], str] = {}

    @property
    def graph_url(self) -> str:
        """Where the Graph API is: ``{base_url}/v1.0``."""
        return f"{self.base_url}/v1.0"

    def _call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        url = f"{self.base_url}/_graphpost{path}"
        if query:
            pairs = {k: str(v) for k, v in query.items() if v is not None}
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            raise ControlError(exc.code, parsed) from None
        return json.loads(raw) if raw else None

    # ---- tokens

    def token(
        self, user: str = DEMO_USER, scopes: str = "User.Read Mail.ReadWrite Mail.Send"
    ) -> str:
        """A delegated access token for ``user`` (kept for the life of this client)."""
        key = ("user", user.lower(), scopes)
        if key not in self._tokens:
            answer = self._call("POST", "/token", {"user": user, "scopes": scopes})
            self._tokens[key] = str(answer["access_token"])
        return self._tokens[key]

    def app_token(
        self, app: str = "tests", roles: str = "Mail.ReadWrite Mail.Send",
        tenant: str = DEMO_TENANT,
    ) -> str:  # fmt: skip
        """An application token (client credentials) of the app named ``app``, made if new."""
        key = ("app", app, roles, tenant.lower())
        if key not in self._tokens:
            answer = self._call("POST", "/token", {"app": app, "roles": roles, "tenant": tenant})
            self._tokens[key] = str(answer["access_token"])
        return self._tokens[key]

    # ---- state

    def reset(self, tenant: str | None = None) -> dict[str, Any]:
        """Empty every mailbox (or one tenant's), the outbox and, for all, the fault rules."""
        return dict(self._call("POST", "/reset", {} if tenant is None else {"tenant": tenant}))

    def seed(
        self,
        source: str | Path | dict[str, Any] | None = None,
        *,
        users: list[dict[str, Any]] | None = None,
        messages: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Users and messages, from a JSON file, a dict, or the keywords."""
        if isinstance(source, str | Path):
            data = json.loads(Path(source).read_text())
        else:
            data = dict(source or {})
        if users is not None:
            data["users"] = users
        if messages is not None:
            data["messages"] = messages
        return dict(self._call("POST", "/seed", data))

    # ---- what was delivered

    def messages(
        self,
        *,
        to: str | None = None,
        sender: str | None = None,
        subject: str | None = None,
        state: str | None = None,
        wait: float | None = None,
    ) -> list[dict[str, Any]]:
        """What was delivered (locally and to the relay), newest first, filtered by substrings
        (any case); with ``wait``, waiting up to that many seconds (60 at most) for a first
        match."""
        query = {"to": to, "from": sender, "subject": subject, "state": state, "wait": wait}
        return list(self._call("GET", "/messages", query=query)["value"])

    def wait_for_message(self, *, timeout: float = 30.0, **filters: str | None) -> dict[str, Any]:
        """The newest delivery matching ``filters`` (those of ``messages``), waiting for it up
        to ``timeout`` seconds; AssertionError if none came."""
        deadline = time.monotonic() + timeout
        while True:
            # a control waits MAX_WAIT seconds at most: a longer timeout is several waits
            left = max(0.0, deadline - time.monotonic())
            found = self.messages(wait=min(left, MAX_WAIT), **filters)
            if found:
                return found[0]
            if left <= MAX_WAIT:
                raise AssertionError(f"nothing delivered matching {filters} within {timeout:g} s")

    # ---- faults

    def fault(
        self,
        status: int = 429,
        *,
        path: str | None = None,
        method: str | None = None,
        user: str | None = None,
        count: int | None = None,
        probability: float | None = None,
        retry_after: int | None = None,
    ) -> dict[str, Any]:
        """A Graph fault rule: matching requests get ``status`` (429, 503, or 504 after the
        work was done); the next ``count`` (default 1), or a ``probability`` share of them."""
        rule = {
            "layer": "graph", "status": status, "path": path, "method": method, "user": user,
            "count": count, "probability": probability, "retryAfter": retry_after,
        }  # fmt: skip
        return dict(self._call("POST", "/faults", {k: v for k, v in rule.items() if v is not None}))

    def smtp_fault(
        self,
        recipient: str,
        *,
        code: int | None = None,
        enhanced_code: str | None = None,
        message: str | None = None,
        drop: bool = False,
        count: int | None = None,
        probability: float | None = None,
    ) -> dict[str, Any]:
        """An SMTP fault rule for relay deliveries to ``recipient`` (an address or a glob): a
        ``code`` (4xx or 5xx) or a dropped connection."""
        rule = {
            "layer": "smtp", "recipient": recipient, "code": code, "enhancedCode": enhanced_code,
            "message": message, "drop": drop or None, "count": count,
            "probability": probability,
        }  # fmt: skip
        return dict(self._call("POST", "/faults", {k: v for k, v in rule.items() if v is not None}))

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/faults")["value"])

    def clear_faults(self, rule_id: str | None = None) -> None:
        path = "/faults" if rule_id is None else "/faults/" + urllib.parse.quote(rule_id, safe="")
        self._call("DELETE", path)

    # ---- the clock

    def clock(self) -> dict[str, Any]:
        return dict(self._call("GET", "/clock"))

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the server's clock forward (retry schedules, token and session expiry); the
        tokens this client kept are forgotten (they may have expired)."""
        answer = dict(self._call("POST", "/clock", {"advanceSeconds": seconds}))
        self._tokens.clear()
        return answer
