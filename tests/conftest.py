"""Shared fixtures: a fixed clock, settings built from TOML text, and a real SMTP server on
loopback (aiosmtpd with STARTTLS and AUTH required, certificate from a throwaway CA)."""

from __future__ import annotations

import contextlib
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
from hypothesis import settings as hypothesis_settings

from digest.settings import Settings, settings_from_dict

# No per-example deadline: speed is measured by bench (`make bench`), never by a timed assertion
# in a test, and hypothesis's default deadline of 200 ms is one. On a shared 2-core machine it
# failed a pure property of `html_part_bytes` at 359 ms (CI's shifted run, 8 December 2026).
hypothesis_settings.register_profile("digest", deadline=None)
hypothesis_settings.load_profile("digest")

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


# --- a scripted SMTP server on loopback (protocol faults) ---------------------------------------


@dataclass
class Script:
    """What one SMTP connection answers, step by step; the defaults are a healthy server.

    A step is a reply line, or `drop` (close the connection), `stall` (say nothing more), `drip`
    (the reply one byte at a time) or, for the greeting only, `endless` (continuation lines
    forever). `rcpt` maps an address to its reply; `{echo}` in `auth` quotes the client's AUTH
    lines back, as a hostile server might.
    """

    greeting: str = "220 scripted ESMTP"
    starttls_offered: bool = True
    starttls: str = "220 go ahead"  # or a refusal, or `garbage` (no TLS handshake follows)
    untrusted_cert: bool = False
    auth_mechanisms: str = "PLAIN LOGIN"
    auth: str = ""  # '' checks the credentials; else the reply to the AUTH exchange
    mail: str = "250 OK"
    rcpt: dict[str, str] = field(default_factory=dict)
    data: str = "354 go ahead"
    dot: str = "250 2.0.0 queued"
    quit: str = "221 bye"
    # The replies to this connection's first MAIL commands and final dots, in turn (`mail` and
    # `dot` after them): a server that ends a session after some messages, or fails one of them.
    mails: tuple[str, ...] = ()
    dots: tuple[str, ...] = ()


@dataclass(frozen=True)
class Received:
    """A message the scripted server read to its final dot, and what it answered."""

    recipients: tuple[str, ...]
    raw: bytes
    message_id: str
    reply: str  # the step after the dot: a reply line, `drop` or `stall`

    @property
    def accepted(self) -> bool:
        """The server answered 250: delivered."""
        return self.reply.startswith("250")

    @property
    def may_have_arrived(self) -> bool:
        """Accepted, or no answer came (the client cannot know): it may be in the mailbox."""
        return self.accepted or self.reply in ("drop", "stall")


@dataclass
class ScriptedSmtp:
    """A threaded SMTP server on 127.0.0.1 that plays `scripts` to successive connections (the
    last one repeats) and a healthy server once they are cleared."""

    host: str
    port: int
    ca_file: Path
    scripts: list[Script] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    ended: int = 0  # connections over (the client closed, or it was dropped)
    step_seconds: float = 0.1  # between the bytes of a drip and the lines of an endless reply

    def smtp_settings(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": "starttls",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "ca_file": str(self.ca_file),
            "from_address": "digest@example.org",
            "timeout": 1,
            "deadline_seconds": 2,
        }
        values.update(overrides)
        return values

    def script_for(self, number: int) -> Script:
        if not self.scripts:
            return Script()
        return self.scripts[min(number, len(self.scripts) - 1)]


def _in_turn(steps: tuple[str, ...], number: int, then: str) -> str:
    """The `number`-th (from 1) of `steps`, or `then` after them."""
    return steps[number - 1] if number <= len(steps) else then


class _Connection:
    """One client connection of the scripted server, played on its own thread."""

    def __init__(
        self,
        server: ScriptedSmtp,
        sock: socket.socket,
        script: Script,
        contexts: dict[bool, ssl.SSLContext],
        stop: Any,
    ) -> None:
        self.server, self.sock, self.script, self.contexts, self.stop = (
            server,
            sock,
            script,
            contexts,
            stop,
        )
        self.file = sock.makefile("rb")
        self.messages = 0  # read to their final dot on this connection

    def say(self, step: str) -> bool:
        """Play one step; False when the connection is over."""
        if step == "drop":
            return False
        if step == "stall":
            self.stop.wait()
            return False
        if step == "endless":  # endless for any client: 300 lines, 30 s, then it gives in
            for _ in range(300):
                if self.stop.wait(self.server.step_seconds):
                    return False
                self.sock.sendall(b"220-still greeting you\r\n")
            self.sock.sendall(b"220 scripted ESMTP\r\n")
            return True
        if step.startswith("drip "):
            for byte in step.removeprefix("drip ").encode() + b"\r\n":
                if self.stop.wait(self.server.step_seconds):
                    return False
                self.sock.sendall(bytes([byte]))
            return True
        self.sock.sendall(step.encode() + b"\r\n")
        return True

    def line(self) -> str:
        data = self.file.readline(10_000)
        if not data:
            raise ConnectionError("client closed")
        return data.decode(errors="replace").rstrip("\r\n")

    def run(self) -> None:
        try:
            self._play()
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client went away, or the handshake failed: the session is over
        finally:
            self.file.close()
            self.sock.close()
            self.server.ended += 1

    def _play(self) -> None:
        script = self.script
        if not self.say(script.greeting):
            return
        envelope: list[str] = []
        mails = 0
        while True:
            command = self.line()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                tls = isinstance(self.sock, ssl.SSLSocket)
                lines = ["250-scripted", "250-8BITMIME"]
                if script.starttls_offered and not tls:
                    lines.append("250-STARTTLS")
                if tls:
                    lines.append(f"250-AUTH {script.auth_mechanisms}")
                lines.append("250 SIZE 10000000")
                self.sock.sendall("\r\n".join(lines).encode() + b"\r\n")
            elif verb == "STARTTLS":
                if script.starttls == "garbage":
                    self.sock.sendall(b"220 go ahead\r\nthis is not TLS at all\r\n")
                    return
                if not self.say(script.starttls):
                    return
                if script.starttls.startswith("220"):
                    self.file.close()
                    context = self.contexts[script.untrusted_cert]
                    self.sock = context.wrap_socket(self.sock, server_side=True)
                    self.file = self.sock.makefile("rb")
            elif verb == "AUTH":
                if not self._auth(command):
                    return
            elif verb == "MAIL":
                envelope = []
                mails += 1
                if not self.say(_in_turn(script.mails, mails, script.mail)):
                    return
            elif verb == "RCPT":
                address = command.partition(":")[2].strip().strip("<>")
                reply = script.rcpt.get(address, "250 OK")
                if reply.startswith("250"):
                    envelope.append(address)
                if not self.say(reply):
                    return
            elif verb == "DATA":
                if not self.say(script.data):
                    return
                if script.data.startswith("354") and not self._message(tuple(envelope)):
                    return
            elif verb == "RSET":
                envelope = []
                self.say("250 OK")
            elif verb == "QUIT":
                self.say(script.quit)
                return
            else:
                self.say("502 5.5.2 unknown command")

    def _auth(self, command: str) -> bool:
        import base64

        exchange = [command]
        words = command.split()
        mechanism = words[1].upper() if len(words) > 1 else ""
        if mechanism == "PLAIN":
            blob = words[2] if len(words) > 2 else ""
            credentials = base64.b64decode(blob).split(b"\0")[1:]
        else:  # LOGIN: the user (perhaps already given), then the password
            user = words[2] if len(words) > 2 else ""
            if not user:
                self.say("334 VXNlcm5hbWU6")
                user = self.line()
                exchange.append(user)
            self.say("334 UGFzc3dvcmQ6")
            password = self.line()
            exchange.append(password)
            credentials = [base64.b64decode(user), base64.b64decode(password)]
        if self.script.auth:
            return self.say(self.script.auth.replace("{echo}", " ".join(exchange)))
        good = credentials == [SMTP_USER.encode(), SMTP_PASSWORD.encode()]
        return self.say("235 2.7.0 accepted" if good else "535 5.7.8 bad credentials")

    def _message(self, recipients: tuple[str, ...]) -> bool:
        lines = []
        while (line := self.file.readline(100_000)) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        if not line:
            return False
        raw = b"".join(lines)
        parsed = message_from_bytes(raw, policy=policy.default)
        self.messages += 1
        step = _in_turn(self.script.dots, self.messages, self.script.dot)
        self.server.received.append(
            Received(recipients, raw, str(parsed["Message-ID"] or ""), step)
        )
        return self.say(step)


@pytest.fixture
def scripted_smtp(tls_material: tuple[ssl.SSLContext, Path]) -> Iterator[ScriptedSmtp]:
    """The scripted SMTP server, stopped (its threads joined, sockets closed) after the test."""
    import threading

    context, ca_file = tls_material
    stranger = trustme.CA().issue_cert("127.0.0.1", "localhost")  # a CA the client does not know
    untrusted = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    stranger.configure_cert(untrusted)
    contexts = {False: context, True: untrusted}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    server = ScriptedSmtp("127.0.0.1", int(listener.getsockname()[1]), ca_file)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(5)
            sockets.append(sock)
            script = server.script_for(server.connections)
            server.connections += 1
            connection = _Connection(server, sock, script, contexts, stop)
            thread = threading.Thread(target=connection.run, daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stop.set()
        acceptor.join(5)
        listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)


FIVE_PAPERS = [
    {
        "id": f"2411.0000{n}",
        "title": f"KV cache trick number {n}",
        "authors": [f"Author {n}"],
        "abstract": f"Paper {n} shrinks the KV cache.",
        "categories": ["cs.LG"],
        "published": "2026-11-20",
        "url": f"https://arxiv.org/abs/2411.0000{n}",
        "source": "arxiv",
    }
    for n in range(1, 6)
]


@pytest.fixture
def five_paper_config(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Config data with a files source of 5 papers that all match the one profile's keyword,
    SMTP to `server`, quick retries (no backoff), the store in `tmp_path`."""
    import json

    listing = tmp_path / "five.jsonl"
    listing.write_text("".join(json.dumps(paper) + "\n" for paper in FIVE_PAPERS))

    def make(
        server: ScriptedSmtp,
        emails: tuple[str, ...] = ("me@example.org",),
        attempts: int = 2,
        **smtp: Any,
    ) -> dict[str, Any]:
        return {
            "store": {"path": str(tmp_path / "digest.sqlite")},
            "sources": {"files": [{"name": "five", "path": str(listing)}]},
            "profiles": [{"name": "me", "email": list(emails), "keywords": ["KV cache"]}],
            "smtp": server.smtp_settings(**smtp),
            "delivery": {"attempts": attempts, "retry_backoff_seconds": 0},
        }

    return make


@pytest.fixture
def five_paper_settings(
    tmp_path: Path, five_paper_config: Callable[..., dict[str, Any]]
) -> Callable[..., Settings]:
    """The same, as Settings."""

    def make(*args: Any, **kwargs: Any) -> Settings:
        return settings_from_dict(five_paper_config(*args, **kwargs), tmp_path / "config.toml")

    return make


_REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _nothing_written_into_the_repository() -> Iterator[None]:
    """No test leaves a database beside the example config (the repository's root): a
    command on the example config must be given a database of its own."""
    leftover = _REPOSITORY / "digest.sqlite"
    existed = leftover.exists()
    yield
    assert existed or not leftover.exists(), f"a test created {leftover}"
