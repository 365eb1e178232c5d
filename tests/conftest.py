"""Shared fixtures: PostgreSQL discovery, temporary databases, and a real running server."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from graphpost.cli.common import with_runtime
from graphpost.cli.main import build_parser
from graphpost.cli.token import BASE_URL_FILE, make_token
from graphpost.errors import GraphpostError
from graphpost.runtime import Runtime
from graphpost.settings import Settings
from tests.ports import free_port
from tests.sink import Sink

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() == "true"
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread of its own: session fixtures may be set up inside a running loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _pg_reachable(url: str) -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        await conn.close()

    try:
        in_thread(lambda: asyncio.run(probe()))
    except Exception as exc:  # any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """A PostgreSQL server to make test databases on: required under CI, else skipped."""
    url = os.environ.get("GRAPHPOST_TEST_DATABASE_URL") or PG_DEFAULT
    problem = _pg_reachable(url)
    if problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true needs PostgreSQL at {url}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {url} ({problem}); PostgreSQL tests skipped")
    return url


def make_pg_database(admin_url: str) -> tuple[str, str]:
    name = f"gp_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(create()))
    base, _, _ = admin_url.rpartition("/")
    return name, f"{base}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    in_thread(lambda: asyncio.run(drop()))


@pytest.fixture(scope="session")
def pg_database(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session."""
    name, url = make_pg_database(pg_admin_url)
    yield url
    drop_pg_database(pg_admin_url, name)


def graphpost(*args: str, env: dict[str, str] | None = None) -> str:
    """Run the real CLI; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "graphpost.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"graphpost {' '.join(args)} failed: {done.stderr}")
    return done.stdout


class _EnvOf(EnvSettingsSource):
    """Settings from the given environment instead of this process's."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self.environ.items()}


def settings_in(environ: Mapping[str, str], **given: Any) -> Settings:
    """The Settings a `graphpost` process with this environment (and these options) has."""

    class InEnviron(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, _EnvOf(settings_cls, environ)

    return InEnviron(**given)


_TOKEN_LOCK = threading.RLock()


def issue_token(data_dir: Path, environ: Mapping[str, str], *args: str) -> str:
    """What `graphpost token ARGS --data-dir DATA_DIR` run with this environment prints, made
    by the same code in this process: starting Python and importing graphpost for each token
    took more of the suite's time than most tests (the command itself is tested on its own)."""
    options = build_parser().parse_args(["token", *args, "--data-dir", str(data_dir)])
    settings = settings_in(environ, data_dir=data_dir)
    recorded = data_dir / BASE_URL_FILE
    if settings.public_url is None and recorded.is_file() and recorded.read_text().strip():
        settings = settings_in(environ, data_dir=data_dir, public_url=recorded.read_text().strip())

    async def work(rt: Runtime) -> str:
        return await make_token(rt, options)

    try:
        # one at a time: opening a runtime runs the migrations, and Alembic's module-level
        # proxies are not thread-safe (tests call client() from many threads at once)
        with _TOKEN_LOCK:
            return in_thread(lambda: with_runtime(settings, work))
    except GraphpostError as exc:
        raise AssertionError(f"graphpost token {' '.join(args)} failed: {exc.message}") from exc


@dataclass
class RunningServer:
    """A `graphpost serve` process on an ephemeral port."""

    base: str
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    smtp_port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    # what an https server's clients trust: its generated certificate (True: http)
    verify: ssl.SSLContext | bool = True

    def cli(self, *args: str) -> str:
        return graphpost(*args, "--data-dir", str(self.data_dir), env=self.env)

    def token(self, user: str = "AdeleV@contoso.onmicrosoft.com",
              scopes: str = "Mail.ReadWrite Mail.Send") -> str:  # fmt: skip
        key = f"user:{user}:{scopes}"
        with _TOKEN_LOCK:  # many threads asking at once get the one token
            if key not in self.tokens:
                self.tokens[key] = issue_token(
                    self.data_dir, self.env, "--user", user, "--scopes", scopes
                )
            return self.tokens[key]

    def app_token(self, name: str = "tests", roles: str = "Mail.ReadWrite Mail.Send") -> str:
        key = f"app:{name}:{roles}"
        with _TOKEN_LOCK:
            if key not in self.tokens:
                self.tokens[key] = issue_token(
                    self.data_dir, self.env, "--app", name, "--roles", roles
                )
            return self.tokens[key]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return httpx.Client(
            base_url=f"{self.base}/v1.0", headers=headers, timeout=30, verify=self.verify
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


# Fast retries and short leases, so that retry and crash tests finish in seconds.
TEST_ENV = {
    "GRAPHPOST_RETRY_BASE_SECONDS": "0.3",
    "GRAPHPOST_RETRY_MAX_SECONDS": "1",
    "GRAPHPOST_POLL_SECONDS": "0.1",
    "GRAPHPOST_LEASE_SECONDS": "3",
    # tests send from many threads into one mailbox; test_throttling turns it on
    "GRAPHPOST_THROTTLING": "off",
    # the webhook receivers of tests (tests/webhook.py) listen on loopback
    "GRAPHPOST_WEBHOOK_ALLOW_HOSTS": "127.0.0.0/8,::1,localhost",
}


def server_env(database_url: str | None, relay: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHPOST_")}
    env.update(TEST_ENV)
    if database_url:
        env["GRAPHPOST_DATABASE_URL"] = database_url
    if relay:
        env["GRAPHPOST_SMTP_RELAY"] = relay
    env["PYTHONPATH"] = str(SRC)
    env.update(extra)
    return env


def start_server(
    data_dir: Path,
    database_url: str | None = None,
    *,
    relay: str | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
    **extra_env: str,
) -> RunningServer:
    """Start `graphpost serve`; on ports of its own choosing, again on others if one of them
    was taken meanwhile (by another test process, or a client's socket)."""
    for _ in range(4):
        try:
            return _start_server(data_dir, database_url, relay, args, port, extra_env)
        except PortTaken:
            pass
    return _start_server(data_dir, database_url, relay, args, port, extra_env)


class PortTaken(AssertionError):
    """The server could not bind one of its ports."""


def _start_server(
    data_dir: Path,
    database_url: str | None,
    relay: str | None,
    args: tuple[str, ...],
    fixed_port: int | None,
    extra_env: dict[str, str],
) -> RunningServer:
    port = fixed_port or free_port()
    smtp_port = free_port()
    env = server_env(database_url, relay, GRAPHPOST_SMTP_PORT=str(smtp_port), **extra_env)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the server
    log_start = log.tell()
    process = subprocess.Popen(
        [sys.executable, "-m", "graphpost.cli.main", "serve", "--quiet", "--port", str(port),
         "--data-dir", str(data_dir), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    tls = "--tls" in args or extra_env.get("GRAPHPOST_TLS") == "true"
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    cert = Path(extra_env.get("GRAPHPOST_TLS_CERT") or data_dir / "tls" / "cert.pem")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            output = log_path.read_bytes()[log_start:].decode(errors="replace")
            if "address already in use" in output:
                raise PortTaken(f"server exited: {output}")
            raise AssertionError(f"server exited: {log_path.read_text()}")
        try:
            verify: ssl.SSLContext | bool = True
            if tls:
                if not cert.exists():
                    time.sleep(0.1)
                    continue
                verify = ssl.create_default_context(cafile=str(cert))
            if (
                httpx.get(f"{base}/.well-known/jwks.json", timeout=1, verify=verify).status_code
                == 200
            ):
                return RunningServer(
                    base, data_dir, env, process, smtp_port=smtp_port, verify=verify
                )
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start: {(data_dir / 'server.log').read_text()}")


@pytest.fixture(scope="session")
def sink() -> Iterator[Sink]:
    """A real SMTP sink: the relay every test server sends external mail to."""
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server-sqlite"), relay=sink.url)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgresql_server(
    tmp_path_factory: pytest.TempPathFactory, sink: Sink, pg_database: str
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("server-postgresql"), pg_database, relay=sink.url
    )
    yield running
    running.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> RunningServer:
    """The real server, once on SQLite and once on PostgreSQL, relaying to the sink: one of
    each for the session. (Each is a fixture of its own: pytest ends a parametrized session
    fixture whenever the next test wants the other parameter, which under pytest-xdist, a
    module at a time, is at nearly every module.)"""
    running: RunningServer = request.getfixturevalue(f"{request.param}_server")
    return running


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sink: Sink
) -> Iterator[RunningServer]:
    """A `graphpost serve --tls` for one test module, on each engine, relaying to the sink."""
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    data_dir = tmp_path_factory.mktemp(f"tls-{request.param}")
    running = start_server(data_dir, url, relay=sink.url, args=("--tls",))
    yield running
    running.stop()


@pytest.fixture
def trust_tls(tls: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the `tls` server's certificate in this process: requests (under MSAL) lets
    REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE override its session's ``verify``, httpx reads
    SSL_CERT_FILE; point them all at it."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, str(tls.data_dir / "tls" / "cert.pem"))
