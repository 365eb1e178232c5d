"""The service layer alone, in one process on a SQLite file (no HTTP, no wrk): create a draft,
get it, list a folder, so a change to the services or the store is measured without the
network's noise. Rates are calls per CPU second of the process (``time.process_time``): the
disk's fsync at each commit, which varies run to run, is left out. ``--against DIR`` runs the
same loop on another checkout's ``src`` (say, the commit before a refactor) in the same run,
and prints both side by side.

    python -m bench.service_calls [--against ../old-checkout/src] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BODY = {
    "subject": "Did you see last night's game?",
    "importance": "Low",
    "body": {"contentType": "HTML", "content": "They were <b>awesome</b>!"},
    "toRecipients": [{"emailAddress": {"address": "AdeleV@contoso.onmicrosoft.com"}}],
}


async def measure() -> dict[str, float]:
    import msgspec

    from graphpost.auth.principal import Principal
    from graphpost.domain.message import MessageInput
    from graphpost.domain.query import MessageQuery
    from graphpost.runtime import Runtime, prepare
    from graphpost.settings import Settings

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="graphpost-calls-")), demo=False)
    prepare(settings)
    rt = await Runtime.open(settings)
    try:
        await rt.directory.seed_demo()
        user = await rt.directory.user("AdeleV@contoso.onmicrosoft.com")
        assert user is not None
        rights = frozenset({"Mail.ReadWrite", "Mail.Send"})
        mailbox = await rt.directory.open_mailbox(
            Principal(user.tenant_id, "bench", user.id, rights, 2**40), None
        )
        inp = msgspec.json.decode(json.dumps(BODY), type=MessageInput)
        out: dict[str, float] = {}
        created: Any = None
        for n in (300, 3000):  # the first round warms up
            start = time.process_time()
            for _ in range(n):
                created = await rt.messages.create_draft(mailbox, inp)
            out["create draft"] = n / (time.process_time() - start)
        # the created item, whatever the service calls it (older trees: .row)
        message_id = getattr(created, "message", None) or created.row
        start = time.process_time()
        for _ in range(10_000):
            await rt.messages.get(mailbox, message_id.id)
        out["get message"] = 10_000 / (time.process_time() - start)
        start = time.process_time()
        for _ in range(2000):
            await rt.messages.list_messages(mailbox, MessageQuery(top=10), folder_key="drafts")
        out["list $top=10"] = 2000 / (time.process_time() - start)
        return out
    finally:
        await rt.close()


def run_in(src: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.service_calls", "--child"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service_calls")
    parser.add_argument("--against", type=Path, help="another checkout's src directory")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each tree")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure())))
        return 0
    here = Path(__file__).resolve().parents[1] / "src"
    trees = {"this tree": here}
    if args.against:
        trees["--against"] = args.against.resolve()
    best: dict[str, dict[str, float]] = {name: {} for name in trees}
    for _ in range(args.rounds):  # alternate, keep each tree's best: noise only slows
        for name, src in trees.items():
            for op, rate in run_in(src).items():
                best[name][op] = max(rate, best[name].get(op, 0.0))
    names = list(trees)
    print(f"| operation (calls per CPU s, best of {args.rounds}) | {' | '.join(names)} |")
    print("|---|" + "---|" * len(names))
    for op in best[names[0]]:
        print(f"| {op} | " + " | ".join(f"{best[n][op]:,.0f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
