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
