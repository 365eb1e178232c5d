"""A webhook receiver for tests: a real HTTP server on loopback that answers Graph's validation
request, records every notification it is sent, and can be told to misbehave."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Post:
    path: str
    content_type: str
    body: bytes
    at: float

    def notifications(self) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = json.loads(self.body)["value"]
        return value


@dataclass
class Behaviour:
    """How the receiver answers. ``token``: the validation answer (None: echo the token);
    ``validation_status``; ``fail_next``: that many notification posts get 503;
    ``status``: what a notification post gets otherwise; ``delay``: seconds before any
    answer; ``hang``: a notification post is read and never answered (a black hole: the
    connection stays open until the receiver stops)."""

    token: str | None = None
    validation_status: int = 200
    fail_next: int = 0
    status: int = 202
    delay: float = 0.0
    hang: bool = False


@dataclass
class Receiver:
    """``url`` (``/hook``) and ``url + '/life'`` both work; ``posts`` holds every notification
    post in arrival order, ``validations`` every validation token received."""

    server: ThreadingHTTPServer
    behaviour: Behaviour = field(default_factory=Behaviour)
    posts: list[Post] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    hung: list[float] = field(default_factory=list)  # when each post left hanging came
    released: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def notifications(self, path: str = "/hook") -> list[dict[str, Any]]:
        with self.changed:
            return [n for p in self.posts if p.path == path for n in p.notifications()]

    def wait_for(self, predicate: Callable[[], bool], seconds: float = 30.0) -> bool:
        """Wait (on the receiver's condition, no polling) until ``predicate`` holds."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
            return True

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"", ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            receiver = holder[0]
            b = receiver.behaviour
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = urlsplit(self.path)
            token = parse_qs(parts.query).get("validationToken")
            if b.delay:
                time.sleep(b.delay)
            if token is not None:
                with receiver.changed:
                    receiver.validations.append(token[0])
                    receiver.changed.notify_all()
                answer = token[0] if b.token is None else b.token
                self._answer(b.validation_status, answer.encode())
                return
            if b.hang:
                with receiver.changed:
                    receiver.hung.append(time.time())
                    receiver.changed.notify_all()
                receiver.released.wait()
                return  # never answered
            with receiver.changed:
                failing = b.fail_next > 0
                if failing:
                    b.fail_next -= 1
                else:
                    receiver.posts.append(
                        Post(parts.path, self.headers.get("Content-Type", ""), body, time.time())
                    )
                receiver.changed.notify_all()
            self._answer(503 if failing else b.status)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    holder.append(receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def sequence_gaps(notifications: list[dict[str, Any]], subscription_id: str) -> list[int]:
    """The sequence numbers missing from 1 to the highest received for a subscription."""
    seen = {n["sequenceNumber"] for n in notifications if n["subscriptionId"] == subscription_id}
    return [n for n in range(1, max(seen, default=0) + 1) if n not in seen]


def dispatched_twice(notifications: list[dict[str, Any]], subscription_id: str) -> list[str]:
    """Items notified under more than one sequence number: a change dispatched twice (a
    notification delivered twice keeps its number)."""
    numbers: dict[tuple[str, str], set[int]] = {}
    for n in notifications:
        if n["subscriptionId"] == subscription_id:
            key = (n["resourceData"]["id"], n["changeType"])
            numbers.setdefault(key, set()).add(n["sequenceNumber"])
    return [item for (item, _), seqs in numbers.items() if len(seqs) > 1]
