"""Chat and push servers on 127.0.0.1 for the notify tests: one HTTP server that answers as a
JSON webhook (`json://`), a Mattermost incoming webhook (`mmost://HOST:PORT/TOKEN`) and an ntfy
server (`ntfy://HOST:PORT/topic`) alike, recording every post, and playing a fault on request:
500, a timeout (no answer until after the client's read timeout), 429 with Retry-After, or a body
limit (413 for bodies over `body_limit` bytes); and an answer dripped a byte at a time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

Fault = Literal["", "500", "timeout", "429", "413", "drip"]
FAULTS: tuple[Fault, ...] = ("500", "timeout", "429", "413")
# The token in every URL the tests use: it must never show in output, logs or the store.
TOKEN = "tok3n5ecretXYZ"
READ_TIMEOUT = 1.0  # the client's read timeout (`rto`); a "timeout" server waits longer


@dataclass(frozen=True)
class Post:
    """One request the server read, and whether it answered 2xx."""

    path: str
    headers: dict[str, str]
    body: bytes
    accepted: bool

    @property
    def text(self) -> str:
        """The message text of the post, whichever service shape it has."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return self.body.decode(errors="replace")
        return str(data.get("message") or data.get("text") or "")


@dataclass
class ChatServer:
    """The server's state: the fault it plays now, the body limit, and what it received."""

    port: int = 0
    fault: Fault = ""
    body_limit: int = 200
    posts: list[Post] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, kind: str) -> str:
        """An apprise URL of `kind` (json, mmost, ntfy) for this server."""
        base = f"127.0.0.1:{self.port}"
        query = f"?rto={READ_TIMEOUT:g}&cto=1"
        return {
            "json": f"json://{base}/hook/{TOKEN}{query}",
            "mmost": f"mmost://{base}/{TOKEN}{query}",
            "ntfy": f"ntfy://{TOKEN}@{base}/papers{query}&auth=token",
        }[kind]

    @property
    def accepted(self) -> list[Post]:
        """The posts answered 2xx (delivered)."""
        return [post for post in self.posts if post.accepted]


def _handler(state: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status = self._status(len(body))
            state.posts.append(Post(self.path, dict(self.headers), body, status < 300))
            if status == 0:  # the timeout: answer only after the client gave up
                state.release.wait(READ_TIMEOUT + 1.5)
                status = 200
            if status == 1:
                self._drip()
                return
            self._answer(status)

        def _drip(self) -> None:
            """An answer a byte at a time, each within the client's read timeout, for ever."""
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 1000:
                if state.release.wait(READ_TIMEOUT / 3):
                    return
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    return

        def _status(self, size: int) -> int:
            fault = state.fault
            if fault == "timeout":
                return 0
            if fault == "drip":
                return 1
            if fault == "413" and size > state.body_limit:
                return 413
            return {"500": 500, "429": 429}.get(fault, 200)

        def _answer(self, status: int) -> None:
            payload = b'{"id": "1"}'
            try:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def chat_server(fault: Fault = "") -> Iterator[ChatServer]:
    """A ChatServer on 127.0.0.1 (any free port) in a thread; stopped and joined on exit."""
    state = ChatServer(fault=fault)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = False
    server.block_on_close = True
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def seed_config(tmp_path: Path, ntfy_file: Path, more: str = "") -> Path:
    """A config over the five seed files (Maildir delivery, a `public_url`) with the profiles
    `lab` (only a Mattermost target, its URL in `LAB_MATTERMOST`) and `me` (an email and an
    ntfy target whose URL is in `ntfy_file`), then the TOML `more`."""
    config = tmp_path / "config.toml"
    files = enumerate(sorted(SEEDS.glob("*.jsonl")))
    seeds = ", ".join(f'{{ name = "s{n}", path = "{path}" }}' for n, path in files)
    config.write_text(
        '[store]\npath = "d.sqlite"\n'
        '[delivery]\nmethod = "maildir"\nmaildir = "mail"\n'
        f"[sources]\nfiles = [{seeds}]\n"
        '[server]\npublic_url = "https://digest.example.org"\n'
        '[[profiles]]\nname = "lab"\nkeywords = ["reinforcement learning", "diffusion"]\n'
        'notify = [{ env = "LAB_MATTERMOST" }]\n'
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["language model"]\n'
        f'notify = [{{ file = "{ntfy_file}", name = "phone" }}]\n' + more
    )
    return config
