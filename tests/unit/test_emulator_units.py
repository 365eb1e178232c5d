"""The emulator's pieces on their own: fault rules, the clock, lifetimes read off the one
clock, the SMTP fault transport, and the controls' refusal of clients outside their networks."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterator
from typing import Any, cast

import jwt
import pytest

from graphpost.asgi import Message, Scope
from graphpost.auth.claims import decode_claims
from graphpost.delivery.faults import FaultyTransport
from graphpost.domain import times
from graphpost.emulator.edge import Absent, Controls
from graphpost.errors import AuthenticationError, InvalidInputError
from graphpost.ports.emulator import Delivered, ResetCount
from graphpost.services.directory import DirectoryService
from graphpost.services.emulator import DeliveredQuery, EmulatorService, Faults, Limit
from graphpost.services.identity import IdentityService
from graphpost.services.messages import MessageService
from tests.fakes import FakeTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> Iterator[None]:
    """The process clock's offset, put back afterwards (tests only: it never goes back)."""
    saved = times._offset[0]
    yield
    times._offset[0] = saved


def test_the_clock_moves_forward_only(clock: None) -> None:
    before = times.now()
    offset = times.offset()
    assert times.advance(3600) == offset + 3600
    assert times.now() >= before + 3600
    assert times.now_ms() // 1000 >= before + 3600
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            times.advance(bad)
    assert times.offset() == offset + 3600


def test_the_clock_stops_short_of_the_dates_python_and_graph_can_write(clock: None) -> None:
    """Past year 9999 no date can be written (datetime, Graph's DateTimeOffset): a move that
    would take the clock beyond LATEST is refused and the clock stays where it was."""
    offset = times.offset()
    for huge in (1e12, 1e300, float(times.LATEST)):
        with pytest.raises(ValueError, match="9990-01-01"):
            times.advance(huge)
    assert times.offset() == offset
    times.advance(times.LATEST - times.wall() - 3600)  # up to an hour before it: fine
    assert times.iso(times.now()).startswith("9989-12-31T")
    with pytest.raises(ValueError):
        times.advance(7200)


def test_lifetimes_are_read_off_the_one_clock(clock: None) -> None:
    key = "k" * 32
    now = times.now()
    token = jwt.encode({"exp": now + 600, "nbf": now, "aud": "a"}, key, algorithm="HS256")

    def check() -> dict[str, Any]:
        return decode_claims(token, key, algorithms=["HS256"], audiences=["a"], require=["exp"])

    assert check()["aud"] == "a"
    times.advance(600 + 31)  # past exp and the 30 s leeway
    with pytest.raises(AuthenticationError, match="expired"):
        check()
    # a token made by a clock ahead of the system's is not "not yet valid"
    ahead = jwt.encode(
        {"exp": times.now() + 600, "nbf": times.now(), "iat": times.now(), "aud": "a"},
        key,
        algorithm="HS256",
    )
    claims = decode_claims(ahead, key, algorithms=["HS256"], audiences=["a"], require=["exp"])
    assert claims["aud"] == "a"
    bad = jwt.encode({"exp": "soon", "aud": "a"}, key, algorithm="HS256")
    with pytest.raises(AuthenticationError):
        decode_claims(bad, key, algorithms=["HS256"], audiences=["a"], require=["exp"])


def draws(*values: float) -> Any:
    it = iter(values)
    return lambda: next(it)


def test_a_count_rule_fires_that_often_then_goes() -> None:
    faults = Faults()
    rule = faults.add_graph(
        status=429, path="/v1.0/me/sendMail", method=None, user=None, user_key=None,
        retry_after=None, count=2, probability=None,
    )  # fmt: skip
    assert rule.retry_after == 1  # a 429 always says when to come back
    assert faults.pick_graph("POST", "/v1.0/me/messages", None) is None
    assert faults.pick_graph("POST", "/V1.0/ME/SENDMAIL", None) is rule
    assert faults.pick_graph("POST", "/v1.0/me/sendMail", None) is rule
    assert faults.graph == []
    assert faults.pick_graph("POST", "/v1.0/me/sendMail", None) is None


def test_prefixes_end_at_a_segment_and_globs_cover_the_path() -> None:
    faults = Faults()
    faults.add_graph(
        status=503, path="v1.0/me/messages", method="get", user=None, user_key=None,
        retry_after=None, count=None, probability=1.0,
    )  # fmt: skip
    assert faults.pick_graph("GET", "/v1.0/me/messages/abc/attachments", None) is not None
    assert faults.pick_graph("GET", "/v1.0/me/messagesx", None) is None
    assert faults.pick_graph("POST", "/v1.0/me/messages", None) is None
    faults.clear()
    faults.add_graph(
        status=504, path="/v1.0/users/*/sendMail", method=None, user=None, user_key=None,
        retry_after=None, count=None, probability=1.0,
    )  # fmt: skip
    assert faults.pick_graph("POST", "/v1.0/users/a@b.c/sendmail", None) is not None
    assert faults.pick_graph("POST", "/v1.0/me/sendMail", None) is None


def test_a_share_of_requests() -> None:
    limit = Limit.of(None, 0.5)
    draw = draws(0.1, 0.9, 0.49, 0.5)
    assert [limit.fire(draw) for _ in range(4)] == [True, False, True, False]
    assert limit.hits == 2 and not limit.spent
    both = Limit.of(1, 0.5)  # a share, at most once
    draw = draws(0.9, 0.1, 0.1)
    assert [both.fire(draw) for _ in range(3)] == [False, True, False]
    assert both.spent


@pytest.mark.parametrize(
    "rule",
    [
        {"status": 200},
        {"status": 429, "count": 0},
        {"status": 429, "count": 10**7},
        {"status": 429, "probability": 0.0},
        {"status": 429, "probability": 2.0},
        {"status": 429, "retry_after": 3601},
        {"status": 429, "method": "TRACE"},
        {"status": 429, "path": "/v1.0/\x00"},
        {"status": 429, "path": "x" * 2001},
    ],
)
def test_bad_graph_rules(rule: dict[str, Any]) -> None:
    given: dict[str, Any] = {
        "status": 429, "path": None, "method": None, "user": None, "user_key": None,
        "retry_after": None, "count": None, "probability": None,
    }  # fmt: skip
    with pytest.raises(InvalidInputError):
        Faults().add_graph(**{**given, **rule})


async def test_the_smtp_fault_transport_answers_before_the_relay() -> None:
    relay = FakeTransport()
    faults = Faults()
    faults.add_smtp(
        recipient="*@refused.example", code=550, enhanced="5.7.1", text="no thanks",
        drop=False, count=None, probability=1.0,
    )  # fmt: skip
    faults.add_smtp(
        recipient="Later@Example.net", code=451, enhanced=None, text=None, drop=False,
        count=1, probability=None,
    )  # fmt: skip
    transport = FaultyTransport(relay, faults)
    answers = await transport.send(
        "a@here.example", ["x@refused.example", "later@example.net", "ok@example.net"], b"m"
    )
    assert (answers["x@refused.example"].code, answers["x@refused.example"].enhanced) == (
        550, "5.7.1",
    )  # fmt: skip
    assert answers["later@example.net"].code == 451
    assert answers["ok@example.net"].code == 250
    assert [c.recipients for c in relay.calls] == [("ok@example.net",)]
    # the 451 was for once: the next transaction reaches the relay
    again = await transport.send("a@here.example", ["later@example.net"], b"m")
    assert again["later@example.net"].code == 250
    faults.add_smtp(
        recipient="cut@example.net", code=None, enhanced=None, text=None, drop=True,
        count=1, probability=None,
    )  # fmt: skip
    cut = await transport.send("a@here.example", ["ok@example.net", "cut@example.net"], b"m")
    assert {r.code for r in cut.values()} == {None}
    assert len(relay.calls) == 2  # the dropped session never reached it
    await transport.close()
    assert relay.closed


async def _call(app: Any, path: str, client: tuple[str, int] | None) -> tuple[int, Any]:
    scope = cast(
        Scope,
        {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
         "query_string": b"", "headers": [], "client": client},
    )  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    return status, json.loads(sent[1]["body"]) if sent[1]["body"] else None


async def inner(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize(
    "client", [("10.1.2.3", 5000), ("::ffff:8.8.8.8", 1), ("not-an-ip", 1), None]
)
async def test_controls_refuse_clients_outside_their_networks(
    client: tuple[str, int] | None,
) -> None:
    loopback = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    # nothing behind the refusal is reached: no services are given
    controls = Controls(
        inner, emulator=cast(Any, None), directory=cast(Any, None), tokens=cast(Any, None),
        allowed=loopback, token_lifetime=3600,
    )  # fmt: skip
    status, body = await _call(controls, "/_graphpost/clock", client)
    assert status == 403
    assert "GRAPHPOST_EMULATOR_CONTROLS_FROM" in body["error"]["message"]
    assert (await _call(controls, "/v1.0/me", client))[0] == 299


async def test_absent_is_404_for_controls_only() -> None:
    absent = Absent(inner)
    for path in ("/_graphpost", "/_graphpost/clock", "/_GraphPost/x/y"):
        status, body = await _call(absent, path, ("127.0.0.1", 1))
        assert status == 404 and body["error"]["code"] == "ErrorItemNotFound"
    for path in ("/_graphpostx", "/v1.0/_graphpost", "/"):
        assert (await _call(absent, path, ("127.0.0.1", 1)))[0] == 299


class CountingOutcomes:
    """An EmulatorStore of no outcomes that counts how often it is read (slowly: a read takes
    a turn of the loop, as a database's would)."""

    def __init__(self) -> None:
        self.reads = 0

    async def reset_tenant(self, tenant_id: str) -> ResetCount:
        return ResetCount(0, 0, 0)

    async def delivered(self, limit: int) -> list[Delivered]:
        self.reads += 1
        await asyncio.sleep(0.01)
        return []


async def test_many_waits_share_their_reads() -> None:
    """Hundreds of waits woken at once by one outcome read the outcomes a few times between
    them, not once each (each read is up to MAX_LISTED rows: a thousand waiters reading them
    on every outcome would starve the API's own queries)."""
    store = CountingOutcomes()
    service = EmulatorService(
        store, cast(DirectoryService, None), cast(MessageService, None),
        cast(IdentityService, None),
    )  # fmt: skip
    waits = [
        asyncio.create_task(service.delivered(DeliveredQuery(subject=f"s{n}"), 0.5))
        for n in range(200)
    ]
    await asyncio.sleep(0.05)  # every wait has looked once and sleeps
    first = store.reads
    assert first <= 5, first
    for _ in range(3):
        service.signal.notify()  # as the worker does for an outcome
        await asyncio.sleep(0.05)
    assert store.reads - first <= 10, store.reads - first
    assert await asyncio.gather(*waits) == [[] for _ in waits]  # the waits end empty, in time
