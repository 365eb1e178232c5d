"""A tiny app: it sends a welcome mail through the Microsoft Graph API (as a real app would,
with any HTTP client or the msgraph SDK), and retries when Graph says 429 or 503, waiting what
Retry-After says."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

RETRIED = (429, 503)


class WelcomeMailer:
    def __init__(
        self,
        graph_url: str,
        token: str,
        *,
        attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = httpx.Client(
            base_url=graph_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.attempts = attempts
        self.sleep = sleep

    def send_welcome(self, address: str, name: str) -> None:
        message = {
            "subject": f"Welcome, {name}!",
            "body": {"contentType": "Text", "content": f"Hello {name}, your account is ready."},
            "toRecipients": [{"emailAddress": {"address": address, "name": name}}],
        }
        for attempt in range(1, self.attempts + 1):
            r = self.client.post("/me/sendMail", json={"message": message})
            if r.status_code == 202:
                return
            if r.status_code not in RETRIED or attempt == self.attempts:
                r.raise_for_status()
            self.sleep(float(r.headers.get("retry-after", "1")))
        raise RuntimeError("unreachable")

    def close(self) -> None:
        self.client.close()
