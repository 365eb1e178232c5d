"""One Settings object, read from GRAPHPOST_* environment variables, built once by the caller."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graphpost.auth.external import TrustedIssuer, parse_trusted_issuers


class Settings(BaseSettings):
    """Every knob graphpost has, each with a documented default."""

    model_config = SettingsConfigDict(env_prefix="GRAPHPOST_", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        description="Directory for the SQLite file and the token signing key.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(default=8765, ge=0, le=65535, description="Port of the HTTP API.")
    database_url: str | None = Field(
        default=None,
        description="postgresql://user@host:port/db for PostgreSQL; unset: SQLite in data_dir.",
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach us at (nextLink, webLink); default http://host:port.",
    )
    tls: bool = Field(
        default=False,
        description="Serve HTTPS on the same port (MSAL and azure-identity need https); "
        "without tls_cert, a certificate made once in data_dir/tls/.",
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate (chain) for tls; default data_dir/tls/cert.pem."
    )
    tls_key: Path | None = Field(
        default=None, description="PEM private key of tls_cert; default data_dir/tls/key.pem."
    )
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="NORMAL survives a process crash; FULL also a power loss, at some speed.",
    )
    sqlite_readers: int = Field(
        default=2,
        ge=0,
        le=16,
        description="SQLite reader connections in threads for searches, lists and delta "
        "pages (0: every read on the event loop).",
    )
    sqlite_reader_mmap_mb: int = Field(
        default=0,
        ge=0,
        description="Memory-map this much of the SQLite file in each reader thread's "
        "connection (faster searches; RSS then counts the file's pages they touch).",
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Request body cap (Graph: 4 MB)."
    )
    max_upload_bytes: int = Field(
        default=150 * 1024 * 1024,
        ge=3 * 1024 * 1024,
        description="Largest file attachment an upload session takes (Graph: 150 MB).",
    )
    upload_session_seconds: int = Field(
        default=6 * 3600,
        ge=1,
        description="How long an upload session's URL works (fixed when it is created).",
    )
    change_retention_days: float = Field(
        default=30,
        gt=0,
        description="How long the change log keeps a change (delta tokens older than this get "
        "410 SyncStateNotFound).",
    )
    blob_dir: Path | None = Field(
        default=None,
        description="Directory for attachment bytes (files named by SHA-256); unset: in the "
        "database.",
    )
    demo: bool = Field(default=True, description="Seed the demo tenant on first start.")
    emulator: bool = Field(
        default=False,
        description="Emulator mode for app developers (`make run` turns it on): the test "
        "controls under /_graphpost/, the open mailbox page on loopback, plain-http webhooks.",
    )
    emulator_controls_from: str = Field(
        default="127.0.0.0/8,::1/128",
        description="CIDRs of the clients the emulator's test controls (/_graphpost/) answer; "
        "others get 403.",
    )
    automatic_replies_per_minute: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Automatic replies a mailbox sends at most per minute (per process); "
        "senders beyond are not answered.",
    )
    webhook_ca_file: Path | None = Field(
        default=None,
        description="PEM file of CA certificates trusted for https notification URLs, beside "
        "the system's (a receiver with a private CA, tests).",
    )
    webhook_allow_hosts: str = Field(
        default="",
        description="Internal webhook receivers allowed (comma-separated CIDRs, addresses, host "
        "names): notification URLs on private, loopback or link-local addresses are refused "
        "otherwise (emulator mode allows them).",
    )
    webhook_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=60,
        description="Time a webhook has to answer a notification post (Graph: 3 s); a "
        "subscription's posts wait for it, others' do not.",
    )
    token_lifetime: int = Field(
        default=3600,
        ge=60,
        description="Lifetime in seconds of access tokens (`graphpost token`, the token endpoint).",
    )
    token_max_lifetime: int = Field(
        default=3600,
        ge=60,
        description="Longest lifetime of any token issued; a rotated signing key stays "
        "published this long (+30 s).",
    )
    smtp_relay: str | None = Field(
        default=None,
        description="smtp://user:pass@host:port (STARTTLS when offered, ?starttls=require to "
        "insist), smtps://… for implicit TLS; unset: external mail waits in the queue.",
    )
    smtp_host: str = Field(default="127.0.0.1", description="Inbound SMTP listen address.")
    smtp_port: int = Field(default=2525, ge=0, le=65535, description="Inbound SMTP port.")
    smtp_enabled: bool = Field(default=True, description="Run inbound SMTP inside serve.")
    hostname: str = Field(
        default="graphpost.localhost", description="Our name in SMTP greetings and Received."
    )
    max_message_bytes: int = Field(
        default=35 * 1024 * 1024, ge=1024, description="Largest message (Exchange: 35 MB)."
    )
    max_recipients: int = Field(
        default=500, ge=1, description="Most recipients (to+cc+bcc) per message (Exchange: 500)."
    )
    worker: bool = Field(default=True, description="Run a delivery worker inside serve.")
    retry_base_seconds: float = Field(
        default=60.0, gt=0, description="First retry delay; doubles each attempt."
    )
    retry_max_seconds: float = Field(default=3600.0, gt=0, description="Longest retry delay.")
    retry_window_seconds: float = Field(
        default=24 * 3600.0, gt=0, description="How long a deferred delivery is retried."
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, description="Relay I/O timeout.")
    lease_seconds: float = Field(
        default=120.0, gt=0, description="How long a worker owns a claimed delivery."
    )
    poll_seconds: float = Field(default=1.0, gt=0, description="Worker poll interval.")
    throttling: bool = Field(
        default=True, description="Graph's per-app, per-mailbox limits; `off` to disable."
    )
    throttle_requests: int = Field(default=10_000, ge=1, description="Requests per window.")
    throttle_window_seconds: int = Field(
        default=600, ge=10, description="The rate window in seconds (counted in tenths)."
    )
    throttle_concurrency: int = Field(default=4, ge=1, description="Requests at once.")
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Time a client has to send a request's line and headers."
    )
    http_body_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Time a client has to send a request's body (408)."
    )
    http_idle_timeout_seconds: float = Field(
        default=15.0, gt=0, description="How long an idle keep-alive connection stays open."
    )
    http_max_connections: int = Field(
        default=1000, ge=1, description="Open HTTP connections per process; more are refused."
    )
    smtp_idle_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Inbound SMTP: a session silent this long is closed."
    )
    smtp_max_sessions: int = Field(
        default=100, ge=1, description="Inbound SMTP sessions at once (over it: 421 4.7.0)."
    )
    smtp_trusted_networks: str = Field(
        default="127.0.0.0/8,::1/128",
        description="CIDRs whose unauthenticated SMTP clients may send as our own domains.",
    )
    mime_parse_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A received message's parse is abandoned after this."
    )
    mime_offload_bytes: int = Field(
        default=0,
        ge=0,
        description="Received mail smaller than this is parsed on the event loop (0: none is).",
    )
    web_ui: bool = Field(
        default=True,
        description="Serve the mailbox web page at / (open on the emulator's control "
        "networks in emulator mode; otherwise after signing in).",
    )
    web_admins: str = Field(
        default="",
        description="userPrincipalNames (or mail addresses), comma-separated, who see every "
        "mailbox on the web page once signed in; everyone else sees only their own.",
    )
    web_session_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="A web page sign-in lasts this long."
    )
    cors_origins: str = Field(
        default="*",
        description="Origins browsers may call the API and identity endpoints from "
        "(comma-separated; * for any; empty: CORS off).",
    )
    pg_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connections per process.")
    trusted_issuers: str | None = Field(
        default=None,
        description="JSON list of external OpenID Connect issuers whose access tokens are "
        'accepted: [{"issuer", "audience", "jwks_uri"?, "user_claim"?, "tenant"?, '
        '"scopes"?, "roles_claim"?, "require_verified_email"?}]; an issuer without "tenant" '
        "only while the server has one tenant.",
    )

    @field_validator("smtp_trusted_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a bad CIDR stops the start, with pydantic's message
        return value

    @field_validator("emulator_controls_from")
    @classmethod
    def _control_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _webhook_hosts(cls, value: str) -> str:
        from graphpost.delivery.webhook import parse_allow_list

        parse_allow_list(value)  # a bad entry stops the start, naming it
        return value

    @field_validator("trusted_issuers")
    @classmethod
    def _issuers(cls, value: str | None) -> str | None:
        parse_trusted_issuers(value)  # a bad entry stops the start, saying which and why
        return value

    @property
    def issuers(self) -> tuple[TrustedIssuer, ...]:
        return parse_trusted_issuers(self.trusted_issuers)

    @property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return parse_networks(self.smtp_trusted_networks)

    @property
    def web_admin_names(self) -> frozenset[str]:
        return frozenset(n.strip().lower() for n in self.web_admins.split(",") if n.strip())

    @property
    def control_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return parse_networks(self.emulator_controls_from)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "graphpost.sqlite3"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"


def parse_networks(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``"127.0.0.0/8, ::1/128"`` → networks (a bare address is a /32 or /128)."""
    return [
        ipaddress.ip_network(part.strip(), strict=False)
        for part in value.split(",")
        if part.strip()
    ]
