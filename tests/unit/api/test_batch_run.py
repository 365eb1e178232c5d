"""The batch runner alone, with a stand-in for the app's internal entry point: how many members
run at once, and that a member waits for what it depends on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from graphpost.api import batch
from graphpost.asgi import Receive, Request, Response
from graphpost.errors import BatchFormatError

pytestmark = pytest.mark.anyio


class Recorder:
    """Answers every member 200 (or 500 for a path with 'fail'), after a few loop turns, and
    records how many were in flight at once and the order they started and ended in."""

    def __init__(self) -> None:
        self.inflight = 0
        self.most = 0
        self.events: list[str] = []
        self.seen: list[Request] = []

    async def respond(self, request: Request, receive: Receive | None = None) -> Response:
        self.seen.append(request)
        self.inflight += 1
        self.most = max(self.most, self.inflight)
        name = request.raw_path.rsplit("/", 1)[-1]
        self.events.append(f"start {name}")
        for _ in range(5):
            await asyncio.sleep(0)
        self.inflight -= 1
        self.events.append(f"end {name}")
        return Response(500 if "fail" in name else 200, b'{"ok":true}')


def outer(requests: list[Any]) -> Request:
    headers = {"authorization": "Bearer T", "content-type": "application/json"}
    return Request("POST", "/v1.0/$batch", {}, headers, json.dumps({"requests": requests}).encode())


async def test_members_run_at_most_four_at_once() -> None:
    app = Recorder()
    requests = [{"id": str(i), "method": "GET", "url": f"/me/m{i}"} for i in range(20)]
    answer = await batch.run(app, outer(requests))
    assert answer.status == 200
    responses = json.loads(answer.body)["responses"]
    assert sorted(r["id"] for r in responses) == sorted(str(i) for i in range(20))
    assert app.most == batch.CONCURRENCY == 4
    # every member carries the batch's token, whatever its own headers say
    assert {r.headers["authorization"] for r in app.seen} == {"Bearer T"}


async def test_dependents_wait_and_fail_with_their_dependency() -> None:
    app = Recorder()
    answer = await batch.run(app, outer([
        {"id": "a", "method": "GET", "url": "/me/a"},
        {"id": "b", "method": "GET", "url": "/me/fail", "dependsOn": ["a"]},
        {"id": "c", "method": "GET", "url": "/me/c", "dependsOn": ["b"]},
        {"id": "d", "method": "GET", "url": "/me/d", "dependsOn": ["A"],
         "headers": {"Authorization": "Bearer other"}},
    ]))  # fmt: skip
    statuses = {r["id"]: r["status"] for r in json.loads(answer.body)["responses"]}
    assert statuses == {"a": 200, "b": 500, "c": 424, "d": 200}
    assert app.events.index("end a") < app.events.index("start fail")
    assert app.events.index("end a") < app.events.index("start d")
    assert "start c" not in app.events  # never run: its dependency failed
    assert {r.headers["authorization"] for r in app.seen} == {"Bearer T"}


class Nester:
    """Answers its member by running a batch again, as a router reaching $batch would."""

    async def respond(self, request: Request, receive: Receive | None = None) -> Response:
        return await batch.run(self, outer([{"id": "x", "method": "GET", "url": "/me"}]))


async def test_a_member_can_never_run_a_batch() -> None:
    with pytest.raises(BatchFormatError, match="cannot be nested"):
        await batch.run(Nester(), outer([{"id": "1", "method": "GET", "url": "/me"}]))
    # and the guard does not outlive the batch
    app = Recorder()
    assert (await batch.run(app, outer([{"id": "1", "method": "GET", "url": "/me"}]))).status == 200
