"""``graphpost queue list|show|retry|delete``: the outbound queue, for operators.

A retry made here is picked up by the running server's worker at its next poll
(``GRAPHPOST_POLL_SECONDS``), since this process cannot wake it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.ports.outbox import DeliveryState, QueueEntry
from graphpost.runtime import Runtime
from graphpost.services.queue import QUEUE_STATES

STATES = [s.value for s in DeliveryState]


def register(sub: Any) -> None:
    queue = sub.add_parser("queue", help="the outbound queue: list, retry now, delete")
    actions = queue.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", help="deliveries by state, newest first")
    listing.add_argument(
        "--state", action="append", choices=STATES,
        help="queued, deferred, failed (the default: all three) or delivered; repeatable",
    )  # fmt: skip
    listing.add_argument("--tenant", help="only this tenant's senders (its domain or id)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--before", type=int, help="older than this delivery (paging)")
    listing.set_defaults(handler=list_queue)

    show = actions.add_parser("show", help="one delivery with every attempt")
    show.add_argument("delivery", type=int, help="the delivery's number (from `queue list`)")
    show.set_defaults(handler=show_delivery)

    retry = actions.add_parser("retry", help="attempt a queued or deferred delivery now")
    retry.add_argument("delivery", type=int)
    retry.set_defaults(handler=retry_delivery)

    delete = actions.add_parser(
        "delete", help="take a queued or deferred delivery out of the queue (no bounce)"
    )
    delete.add_argument("delivery", type=int)
    delete.set_defaults(handler=delete_delivery)
    for p in (listing, show, retry, delete):
        add_storage_options(p)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(e: QueueEntry) -> str:
    d = e.delivery
    last = " ".join(str(x) for x in (d.last_code, d.last_enhanced, d.last_response) if x)
    due = _when(d.next_attempt_ms) if not d.state.final else "-"
    busy = " (attempt under way)" if e.in_progress else ""
    return (
        f"{d.seq}\t{d.state.value}{busy}\t{e.envelope_from}\t{d.recipient}\t"
        f"{e.subject or ''}\tattempts={d.attempts}\tnext={due}\t{last}"
    )


def list_queue(args: argparse.Namespace) -> int:
    states = tuple(DeliveryState(s) for s in args.state) if args.state else QUEUE_STATES

    async def work(rt: Runtime) -> None:
        page = await rt.queue.page(states, tenant=args.tenant, before=args.before, limit=args.limit)
        for entry in page.entries:
            print(_line(entry))
        if page.next_before is not None:
            print(f"# more: --before {page.next_before}")

    with_runtime(settings_from(args), work)
    return 0


def _details(entry: QueueEntry) -> None:
    print(_line(entry))
    for a in entry.attempts:
        reply = " ".join(str(x) for x in (a.code, a.enhanced, a.response) if x)
        print(f"  {_when(a.at_ms)}\t{a.outcome.value}\t{reply}")


def show_delivery(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        _details(await rt.queue.get(args.delivery))

    with_runtime(settings_from(args), work)
    return 0


def retry_delivery(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        _details(await rt.queue.retry(args.delivery))

    with_runtime(settings_from(args), work)
    return 0


def delete_delivery(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        _details(await rt.queue.delete(args.delivery))

    with_runtime(settings_from(args), work)
    return 0
