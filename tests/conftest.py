"""Shared fixtures: a fixed clock, settings built from TOML text, and a real SMTP server on
loopback (aiosmtpd with STARTTLS and AUTH required, certificate from a throwaway CA)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest.settings import Settings, settings_from_dict

FIXED_NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data"
SMTP_USER = "reader"
SMTP_PASSWORD = "s3cret-pa55"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from a dict, as if read from `tmp_path/config.toml`."""

    def make(**data: Any) -> Settings:
        return settings_from_dict(data, tmp_path / "config.toml")

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpHandler:
    """Records accepted messages; `rcpt_replies` / `data_replies` script failures, in order."""

    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_replies:
            reply = self.rcpt_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.raw.append(envelope.content)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    handler: SmtpHandler

    def smtp_settings(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": "starttls",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "ca_file": str(self.ca_file),
            "from_address": "digest@example.org",
            "from_name": "Research digest",
            "timeout": 10,
        }
        values.update(overrides)
        return values


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@pytest.fixture
def smtp_server(tls_material: tuple[ssl.SSLContext, Path]) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that requires STARTTLS and AUTH; stopped after the test."""
    context, ca_file = tls_material
    handler = SmtpHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=_authenticator,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, ca_file, handler)
    finally:
        controller.stop()


PROFILE = {
    "name": "me",
    "email": ["me@example.org"],
    "send_at": "07:30",
    "timezone": "Europe/Berlin",
    "keywords": ["KV cache", "speculative decoding", "quantiz*", "concept bottleneck model"],
    "all_of": [["diffusion", "language model"]],
    "exclude": ["medical imaging"],
    "authors": ["Rishabh Tiwari", {"name": "Seyed Iman Mirzadeh", "aliases": ["Iman Mirzadeh"]}],
    "categories": ["cs.LG", "cs.CL"],
    "first_run_days": 2,
}


@pytest.fixture
def listing_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings reading tests/data/listings.jsonl with one profile; SMTP per the caller."""

    def make(smtp: dict[str, Any] | None = None, **profile: Any) -> Settings:
        return make_settings(
            sources={"files": [{"name": "listings", "path": str(DATA / "listings.jsonl")}]},
            profiles=[{**PROFILE, **profile}],
            smtp=smtp or {},
        )

    return make


# --- a real HTTP server on loopback -------------------------------------------------------------


@dataclass
class Recorded:
    """One request the local server received."""

    path: str
    query: str
    headers: dict[str, str]
    at: float  # time.monotonic() when the handler started


Route = Callable[["Recorded", int], tuple[int, dict[str, str], bytes] | None]


@dataclass
class HttpServer:
    """A ThreadingHTTPServer on 127.0.0.1 whose routes are plain functions of the request and
    how many times its path was asked for; every request is recorded."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    stall_seconds: float = 0.0

    def hits(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import urlsplit

    state = HttpServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            record = Recorded(parts.path, parts.query, dict(self.headers.items()), time.monotonic())
            with lock:
                state.requests.append(record)
                count = len(state.hits(parts.path))
            route = state.routes.get(parts.path)
            reply = route(record, count) if route else (404, {}, b"not found")
            if reply is None:  # a stalled response: say nothing until the client gives up
                time.sleep(state.stall_seconds)
                return
            status, headers, body = reply
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up on us; fine

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
