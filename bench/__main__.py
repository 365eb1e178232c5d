"""`make bench`: graphpost against the machine's limits, as a user runs it.

Real processes only: the server (`graphpost serve`, SQLite or PostgreSQL), an aiosmtpd sink in
its own process, wrk (C) for HTTP load with Lua scripts, an aiosmtplib process for inbound SMTP.
Prints one table; every rate is also given as a ratio to a minimal uvicorn app measured in
the same run. Throttling is off for the load scenarios (16 connections hit one mailbox, which
Graph's 4-per-mailbox limit would refuse) and the table says so.

    python -m bench [--quick] [--no-postgres] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADELE = "AdeleV@contoso.onmicrosoft.com"
PG_URL = os.environ.get("GRAPHPOST_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
CREATE = {
    "subject": "Did you see last night's game?",
    "importance": "Low",
    "body": {"contentType": "HTML", "content": "They were <b>awesome</b>! " * 80},
    "toRecipients": [
        {"emailAddress": {"address": "AdeleV@contoso.onmicrosoft.com"}},
        {"emailAddress": {"address": "AlexW@contoso.onmicrosoft.com"}},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# ---------------------------------------------------------------- processes and their costs


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None):
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        self.p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.peak_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def pids(self) -> list[int]:
        """The process and its children (uvicorn --workers forks)."""
        out = [self.p.pid]
        try:
            children = Path(f"/proc/{self.p.pid}/task/{self.p.pid}/children").read_text().split()
            out += [int(c) for c in children]
        except OSError:
            pass
        return out

    def rss_kb(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except OSError:
                pass
        return total

    def loop_cpu_seconds(self) -> float:
        """The main thread's CPU (the event loop's; reader threads are apart)."""
        tick = os.sysconf("SC_CLK_TCK")
        try:
            stat = Path(f"/proc/{self.p.pid}/task/{self.p.pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, self.rss_kb())

    def reset_peak(self) -> None:
        self.peak_kb = self.rss_kb()

    def stop(self) -> None:
        self._stop.set()
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()


@dataclass
class Row:
    scenario: str
    rate: float
    p50: float | None
    p99: float | None
    cpu: float | None  # server CPU, % of one core
    peak_mb: float | None
    base: float | None = None  # baseline rate for the ratio
    note: str = ""

    def cells(self) -> list[str]:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        ratio = "-" if not self.base else f"{self.rate / self.base:.2f}"
        cpu = "-" if self.cpu is None else f"{self.cpu:.0f}%"
        peak = "-" if self.peak_mb is None else f"{self.peak_mb:.0f}"
        rate = f"{self.rate:,.0f}"
        return [self.scenario, rate, ms(self.p50), ms(self.p99), cpu, peak, ratio, self.note]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print("  " + " | ".join(row.cells()), flush=True)
        return row

    def table(self) -> str:
        head = ["scenario", "rate/s", "p50 ms", "p99 ms", "server CPU", "peak MB", "× baseline",
                "note"]  # fmt: skip
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r.cells()) + " |" for r in self.rows]
        return "\n".join(lines + [""] + [f"- {f}" for f in self.facts])


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def lua(path: Path, *, method: str, body: object | None, token: str,
        paths: list[str] | None = None) -> Path:  # fmt: skip
    lines = [f'wrk.method = "{method}"', 'wrk.headers["Content-Type"] = "application/json"',
             f'wrk.headers["Authorization"] = "Bearer {token}"']  # fmt: skip
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    if paths:
        lines.append("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}")
        lines.append("local i = 0")
        lines.append("request = function() i = i + 1\n  if i > #paths then i = 1 end\n"
                     "  return wrk.format(nil, paths[i]) end")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url: str, script: Path, conns: int, seconds: float) -> dict[str, float]:
    duration = f"-d{max(1, round(seconds))}s"
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", duration, "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = {"non2xx": 0}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            result["rate"] = float(line.split()[1])
        elif m := re.match(r"^(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)$", line):
            result[f"p{m.group(1)}"] = float(m.group(2)) * _UNITS[m.group(3)]
        elif line.startswith("Non-2xx"):
            result["non2xx"] = float(line.split()[-1])
        elif m := re.match(r"^(\d+) requests in", line):
            result["requests"] = float(m.group(1))
    return result


# ---------------------------------------------------------------- graphpost


@dataclass
class Server:
    proc: Proc
    base: str
    data_dir: Path
    env: dict[str, str]
    smtp_port: int

    def token(self, user: str = ADELE) -> str:
        return subprocess.run(
            [PY, "-m", "graphpost.cli.main", "token", "--user", user, "--data-dir",
             str(self.data_dir), "--lifetime", "86400"],
            capture_output=True, text=True, check=True, env=self.env,
        ).stdout.strip()  # fmt: skip


@contextmanager
def graphpost(data_dir: Path, *, relay: str | None = None, database_url: str | None = None,
              args: tuple[str, ...] = (), **env_extra: str) -> Iterator[Server]:  # fmt: skip
    port, smtp = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHPOST_")}
    env.update({"GRAPHPOST_THROTTLING": "off", "GRAPHPOST_SMTP_PORT": str(smtp), **env_extra})
    if relay:
        env["GRAPHPOST_SMTP_RELAY"] = relay
    if database_url:
        env["GRAPHPOST_DATABASE_URL"] = database_url
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = Proc([PY, "-m", "graphpost.cli.main", "serve", "--quiet", "--port", str(port),
                 "--data-dir", str(data_dir), *args], env, data_dir / "server.log")  # fmt: skip
    try:
        wait_port(port)
        wait_port(smtp) if "--no-smtp" not in args else None
        yield Server(proc, f"http://127.0.0.1:{port}", data_dir, env, smtp)
    finally:
        proc.stop()


def measure(res: Results, server: Server, name: str, url: str, script: Path, conns: int,
            seconds: float, base: float | None = None, note: str = "") -> Row:  # fmt: skip
    server.proc.reset_peak()
    cpu0, t0 = server.proc.cpu_seconds(), time.perf_counter()
    r = wrk(url, script, conns, seconds)
    cpu = 100 * (server.proc.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    if r.get("non2xx"):
        note = (note + f" {int(r['non2xx'])} non-2xx").strip()
    return res.add(Row(name, r.get("rate", 0.0), r.get("p50"), r.get("p99"), cpu,
                       server.proc.peak_kb / 1024, base, note))  # fmt: skip


class Sink:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.file = work / f"sink-{self.port}.count"
        self.proc = Proc([PY, str(HERE / "sink.py"), str(self.port), str(self.file)])
        wait_port(self.port)

    def count(self) -> int:
        try:
            return int(self.file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def duplicates(self) -> int:
        try:
            return int(self.file.read_text().split()[2])
        except (OSError, ValueError, IndexError):
            return 0

    def wait(self, n: int, timeout: float = 600) -> float:
        """Seconds until the sink holds n messages."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sink has {self.count()} of {n}")
            time.sleep(0.02)
        return time.monotonic()

    def stop(self) -> None:
        self.proc.stop()


def http_json(method: str, url: str, token: str, body: object | None = None) -> object:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------- scenarios


def baseline(res: Results, work: Path, seconds: float) -> dict[int, float]:
    port = free_port()
    proc = Proc([PY, str(HERE / "baseline.py"), str(port)])
    wait_port(port)
    script = lua(work / "base.lua", method="POST", body=CREATE, token="x")
    rates = {}
    try:
        for conns in (1, 16):
            srv = Server(proc, f"http://127.0.0.1:{port}", work, {}, 0)
            row = measure(res, srv, f"baseline: minimal uvicorn app, c{conns}",
                          f"http://127.0.0.1:{port}/", script, conns, seconds)  # fmt: skip
            rates[conns] = row.rate
    finally:
        proc.stop()
    return rates


def sqlite_scenarios(res: Results, work: Path, base: dict[int, float], seconds: float,
                     quick: bool) -> None:  # fmt: skip
    sink = Sink(work)
    try:
        with graphpost(work / "sqlite", relay=f"smtp://127.0.0.1:{sink.port}") as s:
            idle = s.proc.rss_kb() / 1024
            res.facts.append(f"idle graphpost serve (SQLite): {idle:.0f} MB RSS")
            token = s.token()
            api = f"{s.base}/v1.0"
            create = lua(work / "create.lua", method="POST", body=CREATE, token=token)
            wrk(f"{api}/me/messages", create, 16, 2)  # warm-up
            measure(res, s, "create draft, c1", f"{api}/me/messages", create, 1, seconds,
                    base[1])  # fmt: skip
            empty = measure(res, s, "create draft, c16", f"{api}/me/messages", create, 16,
                            seconds, base[16])  # fmt: skip
            one = http_json("POST", f"{api}/me/messages", token, CREATE)
            assert isinstance(one, dict)
            get = lua(work / "get.lua", method="GET", body=None, token=token)
            measure(res, s, "get message, c16", f"{api}/me/messages/{one['id']}", get, 16,
                    seconds, base[16])  # fmt: skip
            measure(res, s, "list $top=10, c16", f"{api}/me/mailFolders/drafts/messages?$top=10",
                    get, 16, seconds, base[16])  # fmt: skip
            send_scenarios(res, s, sink, work, token, seconds, quick)
            inbound(res, s, work, quick)
            big_inbound(res, s, work, token, seconds)
            after = s.proc.rss_kb() / 1024
            res.facts.append(f"graphpost serve RSS after the SQLite scenarios: {after:.0f} MB "
                             f"(idle {idle:.0f} MB)")  # fmt: skip
            memory_flat(res, s, work, token, quick)
        big_mailbox(res, work, base, seconds, empty.rate, quick)
    finally:
        sink.stop()


def send_scenarios(res: Results, s: Server, sink: Sink, work: Path, token: str, seconds: float,
                   quick: bool) -> None:  # fmt: skip
    api = f"{s.base}/v1.0"
    # sendMail: one external recipient each, until the sink has them all
    msg = {"message": {**CREATE, "toRecipients": [{"emailAddress": {"address": "x@example.net"}}]}}
    script = lua(work / "sendmail.lua", method="POST", body=msg, token=token)
    before = sink.count()
    s.proc.reset_peak()
    cpu0, t0 = s.proc.cpu_seconds(), time.monotonic()
    r = wrk(f"{api}/me/sendMail", script, 16, seconds)
    accepted = int(r.get("requests", 0) - r.get("non2xx", 0))
    done = sink.wait(before + accepted)
    rate = accepted / (done - t0)
    cpu = 100 * (s.proc.cpu_seconds() - cpu0) / (done - t0)
    res.add(Row("sendMail → at the sink, c16", rate, r.get("p50"), r.get("p99"), cpu,
                s.proc.peak_kb / 1024, None, f"{accepted} messages"))  # fmt: skip
    # send drafts: create them first, then send each once
    count = 1500 if quick else 4000
    ids = []
    for _ in range(count):
        d = http_json("POST", f"{api}/me/messages", token, msg["message"])
        assert isinstance(d, dict)
        ids.append(d["id"])
    script = lua(work / "send.lua", method="POST", body=None, token=token,
                 paths=[f"/v1.0/me/messages/{i}/send" for i in ids])  # fmt: skip
    before = sink.count()
    cpu0, t0 = s.proc.cpu_seconds(), time.monotonic()
    r = wrk(f"{api}/me/messages", script, 16, seconds)  # ids repeat when used up: no-op sends
    sent = int(min(r.get("requests", 0), count))
    done = sink.wait(before + sent)
    res.add(Row("send draft → at the sink, c16", sent / (done - t0), r.get("p50"), r.get("p99"),
                100 * (s.proc.cpu_seconds() - cpu0) / (done - t0), s.proc.peak_kb / 1024, None,
                f"{sent} drafts"))  # fmt: skip


def inbound(res: Results, s: Server, work: Path, quick: bool) -> None:
    total = 4000 if quick else 12000
    s.proc.reset_peak()
    cpu0, t0 = s.proc.cpu_seconds(), time.monotonic()
    out = subprocess.run([PY, str(HERE / "smtp_load.py"), str(s.smtp_port), ADELE, str(total), "8"],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    sent, elapsed = int(out[0]), float(out[1])
    res.add(Row("inbound SMTP → Inbox, 8 connections", sent / elapsed, None, None,
                100 * (s.proc.cpu_seconds() - cpu0) / (time.monotonic() - t0),
                s.proc.peak_kb / 1024, None, f"{sent} messages"))  # fmt: skip


def big_inbound(res: Results, s: Server, work: Path, token: str, seconds: float) -> None:
    """The API's latency while four SMTP clients send 10 MB messages (parsed off the loop)."""
    api = f"{s.base}/v1.0"
    one = http_json("POST", f"{api}/me/messages", token, CREATE)
    assert isinstance(one, dict)
    url = f"{api}/me/messages/{one['id']}"
    get = lua(work / "get.lua", method="GET", body=None, token=token)
    wrk(url, get, 4, 1)
    measure(res, s, "get message, c4 (no other load)", url, get, 4, seconds)
    load = subprocess.Popen([PY, str(HERE / "big_inbound.py"), str(s.smtp_port), ADELE,
                             str(seconds + 4), "4"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(2)  # the four clients are in the middle of their transfers
        row = measure(res, s, "get message, c4, while 4 SMTP clients send 10 MB messages", url,
                      get, 4, seconds)  # fmt: skip
        out, _ = load.communicate(timeout=600)
    finally:
        if load.poll() is None:
            load.kill()
    stored, elapsed, size = out.split()
    mb = int(size) / 2**20
    row.note = f"{stored} messages of {mb:.0f} MB stored in {float(elapsed):.0f} s; p99 goal 50 ms"


def memory_flat(res: Results, s: Server, work: Path, token: str, quick: bool) -> None:
    """RSS after a first batch of creates, then after many more: it must not grow."""
    api = f"{s.base}/v1.0"
    script = lua(work / "create.lua", method="POST", body=CREATE, token=token)
    wrk(f"{api}/me/messages", script, 16, 5)
    first = s.proc.rss_kb()
    seconds = 10 if quick else 35
    r = wrk(f"{api}/me/messages", script, 16, seconds)
    last = s.proc.rss_kb()
    growth = 100 * (last - first) / first
    more = int(r.get("requests", 0))
    res.facts.append(f"memory: {first / 1024:.0f} MB after warm-up, {last / 1024:.0f} MB after "
                     f"{more:,} more creates ({growth:+.1f}%)")  # fmt: skip


def big_mailbox(res: Results, work: Path, base: dict[int, float], seconds: float,
                empty_rate: float, quick: bool) -> None:  # fmt: skip
    count = 20_000 if quick else 100_000
    data = work / "big"
    out = subprocess.run([PY, str(HERE / "seed.py"), str(data), ADELE, str(count)],
                         capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    res.facts.append(f"big mailbox: {out}")
    with graphpost(data, args=("--no-smtp",)) as s:
        token = s.token()
        api = f"{s.base}/v1.0"
        get = lua(work / "get.lua", method="GET", body=None, token=token)
        query = ("/me/mailFolders/inbox/messages?$top=50&$orderby=receivedDateTime%20desc"
                 "&$filter=receivedDateTime%20ge%202020-01-01T00:00:00Z")  # fmt: skip
        wrk(f"{api}{query}", get, 16, 2)
        measure(res, s, f"list $top=50 ordered+filtered, {count:,}-message Inbox, c16",
                f"{api}{query}", get, 16, seconds, base[16])  # fmt: skip
        create = lua(work / "create.lua", method="POST", body=CREATE, token=token)
        wrk(f"{api}/me/messages", create, 16, 2)
        row = measure(res, s, f"create draft beside a {count:,}-message Inbox, c16",
                      f"{api}/me/messages", create, 16, seconds, base[16])  # fmt: skip
        row.note = f"{100 * row.rate / empty_rate:.0f}% of the empty-mailbox rate"


def search_scenarios(res: Results, work: Path, seconds: float, quick: bool,
                     database_url: str | None, connections: tuple[int, ...] = (16,),
                     server_args: tuple[str, ...] = (),
                     server_env: dict[str, str] | None = None) -> None:  # fmt: skip
    """``$search`` of two words of middling frequency (200 different queries in turn) over a
    mailbox of 100,000 messages of varied words, 16 connections. Goal: p99 under 50 ms."""
    sys.path.insert(0, str(HERE))
    import search  # bench/search.py: the seeding and the queries

    engine = "PostgreSQL" if database_url else "SQLite"
    count = 20_000 if quick else 100_000
    data = work / f"search-{engine.lower()}"
    seeded = data / f".seeded-{count}"  # with --keep, a later run finds the mailbox seeded
    if seeded.exists():
        res.facts.append(f"search mailbox ({engine}): {seeded.read_text().strip()} (kept)")
    else:
        seed = [PY, str(HERE / "search.py"), str(data), ADELE, str(count)]
        out = subprocess.run(seed + ([database_url] if database_url else []),
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        seeded.write_text(out + "\n")
        res.facts.append(f"search mailbox ({engine}): {out}")
    with graphpost(data, database_url=database_url, args=("--no-smtp", *server_args),
                   **(server_env or {})) as s:  # fmt: skip
        token = s.token()
        paths = [
            "/v1.0/me/messages?$search=" + urllib.parse.quote(f'"{q}"') for q in search.queries()
        ]
        script = lua(work / "search.lua", method="GET", body=None, token=token, paths=paths)
        wrk(s.base, script, 16, 2)  # warm-up
        for conns in connections:
            cpu0, loop0 = s.proc.cpu_seconds(), s.proc.loop_cpu_seconds()
            row = measure(res, s, f"$search two words, {count:,}-message mailbox, c{conns} "
                          f"({engine})", s.base, script, conns, seconds)  # fmt: skip
            # CPU per request: the whole server's, and its event loop's (the main thread)
            n = max(1.0, row.rate * seconds)
            row.note = (f"CPU ms/request {1000 * (s.proc.cpu_seconds() - cpu0) / n:.2f}, on the "
                        f"loop {1000 * (s.proc.loop_cpu_seconds() - loop0) / n:.2f}; "
                        f"load {os.getloadavg()[0]:.1f} {row.note}").strip()  # fmt: skip
            if conns == 16:
                goal = "under" if (row.p99 or 0) < 50 else "OVER"
                row.note = (row.note + f" p99 {goal} the 50 ms goal").strip()


def postgres_scenarios(res: Results, work: Path, base: dict[int, float], seconds: float) -> None:
    import asyncio

    import asyncpg

    name = f"gp_bench_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no PostgreSQL here: say so in the table
        res.facts.append(f"PostgreSQL scenarios skipped: {exc}")
        return
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    sink = Sink(work)
    workers: list[Proc] = []
    try:
        with graphpost(work / "pg", relay=f"smtp://127.0.0.1:{sink.port}", database_url=url,
                       args=("--workers", "2", "--no-worker", "--no-smtp")) as s:  # fmt: skip
            env = dict(s.env)
            for _ in range(2):
                workers.append(Proc([PY, "-m", "graphpost.cli.main", "worker", "--data-dir",
                                     str(s.data_dir)], env, s.data_dir / "worker.log"))  # fmt: skip
            token = s.token()
            api = f"{s.base}/v1.0"
            create = lua(work / "create.lua", method="POST", body=CREATE, token=token)
            wrk(f"{api}/me/messages", create, 16, 2)
            lsn0, calls0 = asyncio.run(wal_and_calls(url))
            row = measure(res, s, "PostgreSQL, 2 API processes: create draft, c16",
                          f"{api}/me/messages", create, 16, seconds, base[16])  # fmt: skip
            lsn1, calls1 = asyncio.run(wal_and_calls(url))
            done = max(1, int(row.rate * seconds))
            wal = (lsn1 - lsn0) / done / 1024
            res.facts.append(f"PostgreSQL cost of one create: {wal:.1f} KiB of WAL, "
                             f"{(calls1 - calls0) / done:.1f} transactions")  # fmt: skip
            outside = [{"emailAddress": {"address": "x@example.net"}}]
            msg = {"message": {**CREATE, "toRecipients": outside}}
            script = lua(work / "sendmail.lua", method="POST", body=msg, token=token)
            before = sink.count()
            lsn0, calls0 = asyncio.run(wal_and_calls(url))
            t0 = time.monotonic()
            r = wrk(f"{api}/me/sendMail", script, 16, seconds)
            accepted = int(r.get("requests", 0) - r.get("non2xx", 0))
            done = sink.wait(before + accepted)
            time.sleep(1.0)
            lsn1, calls1 = asyncio.run(wal_and_calls(url))
            sent = max(1, sink.count() - before)
            wal = (lsn1 - lsn0) / sent / 1024
            per = (calls1 - calls0) / sent
            res.facts.append(f"PostgreSQL cost of one sendMail, delivered: {wal:.1f} KiB of WAL, "
                             f"{per:.1f} transactions (API and worker)")  # fmt: skip
            extra = sink.count() - before - accepted
            name = "PostgreSQL, 2 API + 2 workers: sendMail → at the sink"
            res.add(Row(name, accepted / (done - t0), r.get("p50"), r.get("p99"), None, None,
                        None, f"{accepted} acknowledged, {extra} more (timed-out at wrk) at the "
                        f"sink, {sink.duplicates()} duplicates"))  # fmt: skip
    finally:
        for w in workers:
            w.stop()
        sink.stop()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def identity_scenarios(res: Results, work: Path, base: dict[int, float], seconds: float) -> None:
    """The token endpoint under load (client credentials), and what verifying a token that was
    seen before costs a request."""
    with graphpost(work / "identity", args=("--no-smtp", "--no-worker")) as s:
        made = subprocess.run(
            [PY, "-m", "graphpost.cli.main", "apps", "add", "bench", "--roles", "Mail.Send",
             "--json", "--data-dir", str(s.data_dir)],
            capture_output=True, text=True, check=True, env=s.env,
        ).stdout  # fmt: skip
        app = json.loads(made)
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        })  # fmt: skip
        script = work / "token.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            f"wrk.body = {json.dumps(form)}\n"
        )
        url = f"{s.base}/{app['tenant_id']}/oauth2/v2.0/token"
        wrk(url, script, 16, 2)
        measure(res, s, "token endpoint: client_credentials, c16", url, script, 16, seconds,
                base[16], "goal: 500/s or more")  # fmt: skip
    res.facts.append(verify_cost())


def verify_cost() -> str:
    """Microseconds TokenService.verify takes for a token it has verified before (each
    request pays it), measured in this process."""
    import tempfile as tf

    from graphpost.auth.keys import load_or_create
    from graphpost.auth.tokens import TokenService

    with tf.TemporaryDirectory() as tmp:
        tokens = TokenService(load_or_create(Path(tmp)))
    token = tokens.issue_application(
        tenant_id="7a7d9f61-3d8e-4b8c-9f5a-2f1a3c9d0e11", app_id="bench", roles=["Mail.Send"]
    )
    tokens.verify(token)
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        tokens.verify(token)
    per = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(200):
        tokens._decode(token)
    first = (time.perf_counter() - t0) / 200 * 1e6
    return (f"verifying a token seen before: {per:.2f} µs a request (goal: under 20 µs); "
            f"the first verification of a token: {first:.0f} µs")  # fmt: skip


async def wal_and_calls(url: str) -> tuple[int, int]:
    """The WAL position and the committed transactions of the database so far."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        lsn = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        xacts = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        await conn.execute("SELECT pg_stat_clear_snapshot()")
    finally:
        await conn.close()
    return int(lsn), int(xacts)


@contextmanager
def private_pg_database(keep: str | None = None) -> Iterator[str]:
    """A database of its own on the PostgreSQL server of PG_URL, dropped afterwards; with
    ``keep``, the database of that name, made if missing and kept (a seeded mailbox is then
    seeded once for several runs)."""
    import asyncio

    import asyncpg

    name = keep or f"gp_bench_upload_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def exists() -> bool:
        conn = await asyncpg.connect(PG_URL)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    if not (keep and asyncio.run(exists())):
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def upload_scenarios(res: Results, work: Path, size_mb: int, send_mb: int,
                     database_url: str | None) -> None:  # fmt: skip
    """A file of ``size_mb`` MB uploaded in 4 MiB parts (one cut off and sent again): the server's
    peak RSS (goal: under 200 MB). Then a ``send_mb`` MB upload sent to the sink and a local
    Inbox, and the peak RSS of that send."""
    from bench import upload

    sink = Sink(work)
    engine = "PostgreSQL" if database_url else "SQLite"
    limit = str(max(size_mb, send_mb) * 2 * upload.MIB)
    try:
        with graphpost(work / f"upload-{engine}", relay=f"smtp://127.0.0.1:{sink.port}",
                       database_url=database_url, GRAPHPOST_MAX_MESSAGE_BYTES=limit,
                       GRAPHPOST_MAX_UPLOAD_BYTES=limit) as s:  # fmt: skip
            token, alex = s.token(), s.token(upload.ALEX)
            idle = s.proc.rss_kb() / 1024
            s.proc.reset_peak()
            size = size_mb * upload.MIB
            big, seconds = upload.upload_file(s.base, token, size, 4 * upload.MIB, [upload.ALEX])
            res.add(Row(f"upload {size_mb} MB in 4 MiB parts ({engine})", size_mb / seconds,
                        None, None, None, s.proc.peak_kb / 1024,
                        note=f"MB/s; a part cut off, sent again; idle {idle:.0f} MB"))  # fmt: skip
            s.proc.reset_peak()
            got, seconds = upload.download(s.base, token, big)
            assert got == size, f"downloaded {got} of {size} bytes"
            res.add(Row(f"download it: GET …/attachments/{{id}}/$value ({engine})",
                        size_mb / seconds, None, None, None, s.proc.peak_kb / 1024,
                        note="MB/s; streamed from storage"))  # fmt: skip
            mid, _ = upload.upload_file(s.base, token, send_mb * upload.MIB, 4 * upload.MIB,
                                        [upload.ALEX, "far@example.net"])  # fmt: skip
            before = sink.count()
            s.proc.reset_peak()
            t0 = time.monotonic()
            upload.send(s.base, token, mid)
            sink.wait(before + 1)
            upload.wait_until(lambda: upload.inbox_has(s.base, alex, "upload bench"))
            elapsed = time.monotonic() - t0
            res.add(Row(f"send a {send_mb} MB attachment: relay + a local Inbox ({engine})",
                        send_mb / elapsed, None, None, None, s.proc.peak_kb / 1024,
                        note="MB/s until both copies arrived"))  # fmt: skip
    finally:
        sink.stop()


def emulator_scenario(res: Results, work: Path, database_url: str | None) -> None:
    """sendMail, then the emulator's long poll until the delivery is listed (one at a time)."""
    from bench import emulator

    engine = "postgresql" if database_url else "sqlite"
    with graphpost(work / f"emulator-{engine}", database_url=database_url, args=("--no-smtp",),
                   GRAPHPOST_EMULATOR="true") as s:  # fmt: skip
        rate, p50, p99 = emulator.send_to_awaited(s.base, 200)
        res.add(Row(f"sendMail → /_graphpost/messages?wait returns it ({engine})", rate, p50, p99,
                    None, None, note="one at a time; local delivery; 200 sends"))  # fmt: skip


def folder_scenarios(res: Results, work: Path, count: int, database_url: str | None) -> None:
    """Copy, permanentDelete and a search folder over a folder of ``count`` messages."""
    from bench import folders

    engine = "PostgreSQL" if database_url else "SQLite"
    with graphpost(work / f"folders-{engine.lower()}", database_url=database_url,
                   args=("--no-smtp",)) as s:  # fmt: skip
        for scenario, value, note in folders.run(s.base, s.token(), count):
            res.add(Row(f"{scenario} ({engine})", value, None, None, None, None, note=note))


def notify_scenarios(res: Results, work: Path, database_url: str | None, rate: float,
                     seconds: float) -> None:  # fmt: skip
    """Creates at ``rate``/s into one mailbox with a subscription on it: the latency from each
    create's request to its notification's arrival at a receiver process (goal: p99 < 1 s)."""
    import asyncio

    from bench import notify

    engine = "PostgreSQL" if database_url else "SQLite"
    port = free_port()
    out = work / f"notify-{engine}.log"
    receiver = Proc([PY, "-m", "bench.notify", "receive", str(port), str(out)], None,
                    work / f"notify-receiver-{engine}.log")  # fmt: skip
    try:
        wait_port(port)
        with graphpost(work / f"notify-{engine}", database_url=database_url,
                       args=("--no-smtp",),
                       GRAPHPOST_WEBHOOK_ALLOW_HOSTS="127.0.0.1") as s:  # fmt: skip
            token = s.token()
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
            sub = {"changeType": "created", "notificationUrl": f"http://127.0.0.1:{port}/hook",
                   "resource": "me/messages", "expirationDateTime": expires}  # fmt: skip
            made_sub = http_json("POST", f"{s.base}/v1.0/subscriptions", token, sub)
            assert isinstance(made_sub, dict) and made_sub.get("id"), made_sub
            s.proc.reset_peak()
            cpu0, t0 = s.proc.cpu_seconds(), time.perf_counter()
            sent = asyncio.run(notify.create_paced(s.base, token, rate, seconds))
            made = time.perf_counter() - t0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                lat, missing, gaps = notify.latencies(sent, out)
                if not missing:
                    break
                time.sleep(0.2)
            cpu = 100 * (s.proc.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
            res.add(Row(f"notifications: {rate:.0f} creates/s into one subscribed mailbox "
                        f"({engine})", len(sent) / made, notify.percentile(lat, 0.5),
                        notify.percentile(lat, 0.99), cpu, s.proc.peak_kb / 1024,
                        note=f"rate: creates/s reached; ms from request to the notification's "
                             f"arrival; {missing} not arrived, {gaps} sequence gaps"))  # fmt: skip
    finally:
        receiver.stop()


def delta_scenarios(res: Results, work: Path, count: int, database_url: str | None) -> None:
    """A ``count``-message Inbox (seeded through the store): its initial delta sync in pages of
    1,000, then incremental rounds after 100 changes each (goals: 20,000 messages/s, 20 ms)."""
    from bench import delta

    engine = "PostgreSQL" if database_url else "SQLite"
    data = work / f"delta-{engine}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHPOST_")}
    if database_url:
        env["GRAPHPOST_DATABASE_URL"] = database_url
    seeding = [PY, str(HERE / "seed.py"), str(data), ADELE, str(count), "direct"]
    out = subprocess.run(
        seeding, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    res.facts.append(f"delta ({engine}): {out} (documents built directly, no MIME)")
    with graphpost(data, database_url=database_url, args=("--no-smtp",)) as s:
        token = s.token()
        s.proc.reset_peak()
        got = delta.run(s.base, token, count)
        res.add(Row(f"delta: initial sync of a {count:,}-message Inbox, pages of 1,000 ({engine})",
                    got["rate"], None, None, None, s.proc.peak_kb / 1024,
                    note=f"messages/s, {got['pages']} pages in {got['initial_s']:.1f} s; "
                         f"goal 20,000/s"))  # fmt: skip
        rounds = ", ".join(f"{t:.1f}" for t in got["incremental_ms"])
        res.add(Row(f"delta: incremental round after 100 changes ({engine})",
                    1000 / got["incremental_median_ms"], got["incremental_median_ms"], None,
                    None, None, note=f"rounds/s; each round ms: {rounds}; goal 20 ms"))  # fmt: skip


def _web_get(url: str, cookie: str) -> object:
    import urllib.request

    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def web_list_scenarios(res: Results, work: Path, count: int, seconds: float,
                       database_url: str | None) -> None:  # fmt: skip
    """The web page's message list (``/web/api/…/folders/{id}/messages``, 50 a page) at a
    ``count``-message Inbox: its first page, a page half-way down and the last (by the
    keyset cursor the page hands out), a page of another folder (2,000 messages), and Graph's
    ``GET /me/mailFolders/inbox/messages?$top=50`` beside them; one connection, as one person
    paging (goal: under 100 ms)."""
    import http.client

    engine = "PostgreSQL" if database_url else "SQLite"
    data = work / f"web-list-{engine}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHPOST_")}
    seeding = [PY, str(HERE / "web_list.py"), str(data), ADELE, str(count), "2000"]
    if database_url:
        seeding.append(database_url)
    t0 = time.perf_counter()
    out = subprocess.run(seeding, env=env, capture_output=True, text=True, check=True).stdout
    at = json.loads(out.strip().splitlines()[-1])
    res.facts.append(f"web list ({engine}): {count:,} + 2,000 messages seeded through the store "
                     f"in {time.perf_counter() - t0:.0f} s; load average before measuring: "
                     f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    with graphpost(data, database_url=database_url, args=("--no-smtp", "--no-worker"),
                   GRAPHPOST_EMULATOR="true") as s:  # fmt: skip
        host = urllib.parse.urlsplit(s.base).netloc
        conn = http.client.HTTPConnection(host, timeout=60)
        conn.request("GET", "/web/api/session")
        answer = conn.getresponse()
        answer.read()
        cookie = (answer.getheader("set-cookie") or "").split(";", 1)[0]
        conn.close()
        assert cookie, "the page gave no session cookie"
        token = s.token()
        pages = f"{s.base}/web/api/mailboxes/{at['user']}/folders"
        inbox = f"{pages}/{at['inbox']}/messages"
        cases = [
            ("first page", inbox),
            ("a page half-way down (cursor)", f"{inbox}?cursor={at['middle']}"),
            ("the last page (cursor)", f"{inbox}?cursor={at['last']}"),
            ("first page of another folder (2,000)", f"{pages}/{at['archive']}/messages"),
            ("Graph: /me/mailFolders/inbox/messages?$top=50",
             f"{s.base}/v1.0/me/mailFolders/inbox/messages?$top=50"),
        ]  # fmt: skip
        for name, url in cases:
            got = http_json("GET", url, token) if "/v1.0/" in url else _web_get(url, cookie)
            assert isinstance(got, dict) and len(got["value"]) == 50, (name, str(got)[:300])
            script = lua(work / "web-list.lua", method="GET", body=None, token=token)
            with script.open("a") as f:
                f.write(f'wrk.headers["Cookie"] = "{cookie}"\n')
            wrk(url, script, 1, 2)  # warm-up: the pages' rows in the cache
            measure(res, s, f"web list at {count:,} messages: {name} ({engine})", url, script, 1,
                    seconds, note="one connection; goal p99 < 100 ms")  # fmt: skip


def _on_each_engine(
    args: argparse.Namespace,
    scenario: Callable[[Results, Path, str | None], None],
    facts: list[str],
) -> int:
    """One ``--only-…`` scenario on SQLite, then on PostgreSQL in a database of its own (never
    the shared database's schema), as ``--only-postgres``/``--no-postgres`` allow; the table
    printed (and written to ``--out``)."""
    res = Results()
    res.facts.extend(facts)
    with tempfile.TemporaryDirectory(prefix="graphpost-bench-") as tmp:
        if not args.only_postgres:
            scenario(res, Path(tmp), None)
        if not args.no_postgres:
            with private_pg_database() as url:
                scenario(res, Path(tmp), url)
    table = res.table()
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="shorter runs, smaller mailbox")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only-postgres", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--only-identity", action="store_true",
                        help="only the token endpoint and token verification")  # fmt: skip
    parser.add_argument("--only-big-inbound", action="store_true",
                        help="only the API under large inbound mail (SQLite)")  # fmt: skip
    parser.add_argument("--only-upload", action="store_true",
                        help="only a large upload session and its send (peak RSS)")  # fmt: skip
    parser.add_argument(
        "--upload-mb", type=int, default=150, help="the file's size for --only-upload"
    )
    parser.add_argument("--send-mb", type=int, default=30, help="--only-upload's sent file")
    parser.add_argument("--only-emulator", action="store_true",
                        help="only the emulator's wait for a delivery")  # fmt: skip
    parser.add_argument("--only-search", action="store_true",
                        help="only $search over a 100,000-message mailbox")  # fmt: skip
    parser.add_argument("--search-connections", default="16",
                        help="--only-search's wrk connections, e.g. 1,16")  # fmt: skip
    parser.add_argument("--search-pg-workers", type=int, default=1,
                        help="API processes for --only-search on PostgreSQL")  # fmt: skip
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="--only-search: a GRAPHPOST_ variable for the server "
                             "(e.g. GRAPHPOST_SQLITE_READERS=0)")  # fmt: skip
    parser.add_argument("--keep", type=Path,
                        help="--only-search: seed the mailboxes into this directory (and the "
                             "PostgreSQL database gp_bench_search_kept) once, and reuse them "
                             "in later runs")  # fmt: skip
    parser.add_argument("--only-folders", action="store_true",
                        help="only folder copy, delete, search folders, $filter")  # fmt: skip
    parser.add_argument("--folder-messages", type=int, default=2000,
                        help="messages in --only-folders' folder")  # fmt: skip
    parser.add_argument("--only-notify", action="store_true",
                        help="only change notifications")  # fmt: skip
    parser.add_argument("--notify-rate", type=float, default=1000.0, help="--only-notify's rate")
    parser.add_argument("--only-delta", action="store_true",
                        help="only delta sync: a 100,000-message Inbox's initial sync and "
                             "incremental rounds")  # fmt: skip
    parser.add_argument("--delta-messages", type=int, default=100_000,
                        help="the Inbox's size for --only-delta on SQLite")  # fmt: skip
    parser.add_argument("--only-web-list", action="store_true",
                        help="only the web page's message list at a 1,000,000-message "
                             "mailbox")  # fmt: skip
    parser.add_argument("--web-list-messages", type=int, default=1_000_000,
                        help="the Inbox's size for --only-web-list on SQLite")  # fmt: skip
    parser.add_argument("--web-list-pg-messages", type=int, default=1_000_000,
                        help="the Inbox's size for --only-web-list on PostgreSQL")  # fmt: skip
    parser.add_argument("--delta-pg-messages", type=int, default=20_000,
                        help="the Inbox's size for --only-delta on PostgreSQL (seeding it "
                             "costs a round trip a message)")  # fmt: skip
    args = parser.parse_args()
    # (flag, scenario over (res, work, database_url), facts)
    single: list[tuple[bool, Callable[[Results, Path, str | None], None], list[str]]] = [
        (args.only_emulator, emulator_scenario, []),
        (args.only_folders,
         lambda r, w, u: folder_scenarios(r, w, args.folder_messages, u), []),
        (args.only_notify,
         lambda r, w, u: notify_scenarios(r, w, u, args.notify_rate, 3.0 if args.quick else 10.0),
         [f"machine: {os.cpu_count()} cores, shared by server, load and receiver"]),
        (args.only_delta,
         lambda r, w, u: delta_scenarios(
             r, w, args.delta_pg_messages if u else args.delta_messages, u), []),
        (args.only_upload,
         lambda r, w, u: upload_scenarios(r, w, args.upload_mb, args.send_mb, u), []),
        (args.only_web_list,
         lambda r, w, u: web_list_scenarios(
             r, w, args.web_list_pg_messages if u else args.web_list_messages,
             3.0 if args.quick else 8.0, u), []),
    ]  # fmt: skip
    for chosen, scenario, facts in single:
        if chosen:
            return _on_each_engine(args, scenario, facts)
    if shutil.which("wrk") is None:
        print("bench needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    seconds = 3.0 if args.quick else 8.0
    res = Results()
    res.facts.append("throttling: off for every scenario (16 connections on one mailbox)")
    res.facts.append(f"machine: {os.cpu_count()} cores; wrk -t1 shares them with the server")
    with tempfile.TemporaryDirectory(prefix="graphpost-bench-") as tmp:
        work = Path(tmp)
        if args.only_search:
            keep = args.keep.resolve() if args.keep else work
            conns = tuple(int(c) for c in args.search_connections.split(","))
            env = dict(e.split("=", 1) for e in args.server_env)
            if env:
                res.facts.append(f"server environment: {env}")
            if not args.only_postgres:
                search_scenarios(res, keep, seconds, args.quick, None, conns, (), env)
            if not args.no_postgres:
                name = "gp_bench_search_kept" if args.keep else None
                workers = ("--workers", str(args.search_pg_workers), "--no-worker")
                with private_pg_database(name) as url:
                    search_scenarios(res, keep, seconds, args.quick, url, conns,
                                     workers if args.search_pg_workers > 1 else (),
                                     env)  # fmt: skip
            table = res.table()
            print("\n" + table)
            if args.out:
                args.out.write_text(table + "\n")
            return 0
        if args.only_big_inbound:
            with graphpost(work / "sqlite") as s:
                big_inbound(res, s, work, s.token(), seconds)
            print("\n" + res.table())
            return 0
        base = baseline(res, work, seconds)
        identity_scenarios(res, work, base, seconds)
        if args.only_identity:
            print("\n" + res.table())
            return 0
        if not args.only_postgres:
            sqlite_scenarios(res, work, base, seconds, args.quick)
        if not args.no_postgres:
            postgres_scenarios(res, work, base, seconds)
    table = res.table()
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
