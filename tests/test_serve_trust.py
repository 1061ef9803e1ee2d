"""`digest serve` against bad and hostile input, over real HTTP on 127.0.0.1: a real `digest
serve` process (its stderr read for tracebacks) or the same app on a real uvicorn in a thread.

Every bad request gets a 4xx page and nothing is logged as a traceback; form bodies have a size
bound and a read deadline; a double click on a mute is "already" and never a 500; clocks a few
minutes apart do not expire a fresh link; the page is rendered once per change, whoever asks.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from digest.feedback import Ask, secret_path, sign, signing_secret
from digest.serve import PageCache, ServeOptions, running
from digest.settings import load_settings

from .conftest import FIXED_NOW, Clock
from .test_serve import CONFIG, _fetched

STOP_SECONDS = 10  # a server process that has not stopped by then is killed


@dataclass(frozen=True)
class Served:
    """A `digest serve` process: its port and where its stderr goes."""

    config: Path
    port: int
    stderr: Path
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def logged(self) -> str:
        return self.stderr.read_text(errors="replace")


@contextmanager
def serve_process(config: Path) -> Iterator[Served]:
    """`digest serve --port 0` as a child process; stopped (SIGINT, then SIGKILL) and reaped."""
    stderr = config.parent / "serve.stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=60)
        line = process.stdout.readline().decode() if ready else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, f"no 'Serving on' line: {line!r} {stderr.read_text()}"
        yield Served(config, int(found.group(1)), stderr, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _raw(port: int, head: str, body: bytes = b"") -> socket.socket:
    """A connection that has sent a POST's head (and `body`) and nothing more."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode() + body)
    return sock


def _post_head(port: int, length: int) -> str:
    return (
        f"POST /me/feedback HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )


def _closed(sock: socket.socket) -> bool:
    """True when the server closes the connection (after what it sent) within the timeout."""
    try:
        while sock.recv(65536):
            pass
    except OSError:
        return False
    return True


def _status(sock: socket.socket) -> int:
    """The status of the response on `sock` (0 when the server closed without one)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    config = _fetched(tmp_path, CONFIG.replace("[server]\n", "[server]\nbody_seconds = 1\n"))
    with serve_process(config) as server:
        yield server
    assert "Traceback" not in server.logged(), server.logged()


def _feedback_token(config: Path, action: str, clock: Callable[[], datetime] | None = None) -> str:
    secret = signing_secret(load_settings(config), config.parent / "d.sqlite")
    return sign(secret, "feedback", Ask("me", "arxiv:2401.01234", action), clock=clock)


# --- 5: bad forms, disconnects, slow bodies, double clicks ----------------------------------------


def test_a_form_with_hundreds_of_fields_is_a_400_page(served: Served) -> None:
    token = _feedback_token(served.config, "like")
    with served.client() as client:
        many = client.post("/me/feedback", content=f"t={token}&" + "a=1&" * 900)
        bad = client.post("/me/feedback", content=b"t=%ff%fe\xff\x00&&&==")
        fine = client.post("/me/feedback", data={"t": token})
    assert many.status_code == 400 and "too many fields" in many.text, many.text
    assert bad.status_code == 403 and "not valid" in bad.text
    assert fine.status_code == 200 and "Recorded" in fine.text


def test_a_client_leaving_mid_form_logs_no_traceback(served: Served) -> None:
    for _ in range(5):
        sock = _raw(served.port, _post_head(served.port, 500), b"t=abc")
        sock.close()
    time.sleep(0.5)  # the server notices the disconnects
    with served.client() as client:
        assert client.get("/").status_code == 200  # and it still answers


def test_slow_bodies_are_cut_at_the_read_deadline_with_408(served: Served) -> None:
    socks = [_raw(served.port, _post_head(served.port, 100), b"t") for _ in range(50)]
    started = time.monotonic()
    try:
        for _ in range(4):  # a byte a half second each, far slower than the 1 s deadline allows
            time.sleep(0.5)
            for sock in socks:
                with contextlib.suppress(OSError):  # answered and closed: what the test wants
                    sock.sendall(b"A")
        statuses = [_status(sock) for sock in socks]
        closed = [_closed(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert statuses == [408] * 50, statuses
    assert all(closed) and time.monotonic() - started < 8


def test_an_oversized_form_is_413_and_the_connection_closed(served: Served) -> None:
    sock = _raw(served.port, _post_head(served.port, 50_000), b"t=" + b"A" * 10_000)
    try:
        assert _status(sock) == 413
    finally:
        sock.close()


@pytest.mark.parametrize(
    "action", ["mute-term:KV cache", "mute-author:Ada Lovelace"], ids=["term", "author"]
)
def test_a_double_click_on_a_mute_is_already_recorded_never_500(
    served: Served, action: str
) -> None:
    token = _feedback_token(served.config, action)

    def click(_: int) -> httpx.Response:
        with served.client() as client:
            return client.post("/me/feedback", data={"t": token})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(click, range(8)))
    with served.client() as client:
        answers.append(client.post("/me/feedback", data={"t": token}))  # and once more later
    assert [a.status_code for a in answers] == [200] * 9, [a.text for a in answers]
    assert sum("Muted" in a.text for a in answers) == 1
    assert sum("Already muted" in a.text for a in answers) == 8
    settings = load_settings(served.config).profiles[0]
    if action.startswith("mute-term:"):
        assert settings.exclude == ["KV cache"]
    else:
        assert settings.mute_authors == ["Ada Lovelace"]


# --- 6: clocks a few minutes apart ---------------------------------------------------------------


@pytest.fixture
def skewed(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A server whose clock reads FIXED_NOW."""
    config = _fetched(tmp_path)
    with running(ServeOptions(config, None, clock=Clock(FIXED_NOW))) as (_, port):
        yield config, port


@pytest.mark.parametrize(
    ("offset", "status", "said"),
    [
        (timedelta(minutes=2), 200, "Recorded"),  # the server is 2 minutes behind the sender
        (timedelta(minutes=4, seconds=59), 200, "Recorded"),
        (timedelta(minutes=30), 403, "not yet valid"),  # a token from the future
        (-timedelta(days=30, minutes=3), 200, "Recorded"),  # 30 days, and within the skew
        (-timedelta(days=30, minutes=6), 410, "expired"),
    ],
    ids=["behind-2m", "behind-5m", "ahead-30m", "edge-of-expiry", "expired"],
)
def test_clock_skew_between_sender_and_server_is_allowed_within_bounds(
    skewed: tuple[Path, int], offset: timedelta, status: int, said: str
) -> None:
    config, port = skewed
    when = FIXED_NOW + offset
    token = _feedback_token(config, "like", clock=lambda: when)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        shown = client.get("/me/feedback", params={"t": token})
        posted = client.post("/me/feedback", data={"t": token})
    assert shown.status_code == status, shown.text
    assert posted.status_code == status and said in posted.text, posted.text


# --- 11: messages that say what is wrong ---------------------------------------------------------


def test_a_post_while_the_database_is_missing_says_the_store_is_not_there(tmp_path: Path) -> None:
    config = _fetched(tmp_path)
    token = _feedback_token(config, "like")
    db = tmp_path / "d.sqlite"
    for path in tmp_path.glob("d.sqlite*"):
        if path != secret_path(db):
            path.unlink()
    with (
        running(ServeOptions(config, None)) as (_, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        posted = client.post("/me/feedback", data={"t": token})
        shown = client.get("/me/feedback", params={"t": token})
        undone = client.post("/me/undo", data={"t": token})
    for response in (posted, shown, undone):
        assert response.status_code == 503, response.text
        assert "no database" in response.text and "not valid" not in response.text
    assert not db.exists()


def test_links_from_before_a_new_secret_say_the_secret_changed(tmp_path: Path) -> None:
    config = _fetched(tmp_path)
    token = _feedback_token(config, "like")
    secret_path(tmp_path / "d.sqlite").unlink()  # lost: a new one is made on the next request
    with (
        running(ServeOptions(config, None)) as (_, port),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        posted = client.post("/me/feedback", data={"t": token})
        fresh = client.post("/me/feedback", data={"t": _feedback_token(config, "like")})
    assert posted.status_code == 403 and "signing secret changed" in posted.text, posted.text
    assert "Nothing was recorded" in posted.text
    assert fresh.status_code == 200 and "Recorded" in fresh.text


# --- 12: one render per change -------------------------------------------------------------------


def test_concurrent_readers_share_one_render_and_a_change_renders_again(tmp_path: Path) -> None:
    config = _fetched(tmp_path)
    cache = PageCache()
    clock = Clock(FIXED_NOW)
    with running(ServeOptions(config, None, clock=clock, cache=cache)) as (_, port):
        start = threading.Barrier(50)

        def read(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                start.wait(timeout=30)
                response = client.get("/me")
                return response.status_code, response.text

        with ThreadPoolExecutor(50) as pool:
            pages = list(pool.map(read, range(50)))
        assert {status for status, _ in pages} == {200}, [t for s, t in pages if s != 200][:1]
        assert len({text for _, text in pages}) == 1
        assert cache.renders == 1

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            assert client.get("/me").status_code == 200
            assert cache.renders == 1  # nothing changed
            liked = sign(
                signing_secret(load_settings(config), tmp_path / "d.sqlite"),
                "feedback",
                Ask("me", "arxiv:2401.01234", "like"),
                clock=clock,
            )
            assert client.post("/me/feedback", data={"t": liked}).status_code == 200
            assert client.get("/me").status_code == 200
            assert cache.renders == 2  # the database changed
            config.write_text(config.read_text().replace('"KV cache"]', '"KV cache", "quantiz*"]'))
            assert "Post-Training" in client.get("/me").text
            assert cache.renders == 3  # the config changed
            clock.now += timedelta(minutes=5)
            client.get("/me")
            assert cache.renders == 4  # time moved on: the window did too


def test_the_secret_made_by_many_first_requests_at_once_is_one_and_whole(tmp_path: Path) -> None:
    """The first requests to a new store create its secret at once: each reads a whole secret,
    the same one (a reader once saw the file before its content and answered 500)."""
    settings = load_settings(_fetched(tmp_path))
    for round_ in range(20):
        db = tmp_path / f"r{round_}.sqlite"
        start = threading.Barrier(16)

        def read(_: int, db: Path = db, start: threading.Barrier = start) -> str:
            start.wait(timeout=30)
            return signing_secret(settings, db)

        with ThreadPoolExecutor(16) as pool:
            secrets = set(pool.map(read, range(16)))
        assert len(secrets) == 1 and len(secrets.pop()) >= 32
        assert [p.name for p in tmp_path.glob(f"r{round_}.sqlite*")] == [f"r{round_}.sqlite.secret"]
