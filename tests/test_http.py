"""The polite HTTP client, over httpx.MockTransport: pacing, retries, conditional GET."""

from __future__ import annotations

import gzip
import itertools
import re
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from digest.errors import SourceError
from digest.http import HostPolicy, PoliteClient, Validators, parse_retry_after, user_agent

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], fake: FakeTime, **options: object
) -> PoliteClient:
    return PoliteClient(
        contact="me@example.org",
        transport=httpx.MockTransport(handler),
        sleep=fake.sleep,
        monotonic=fake.monotonic,
        wall_clock=lambda: NOW,
        **options,  # type: ignore[arg-type]
    )


def test_user_agent_names_project_version_and_contact() -> None:
    seen: list[httpx.Request] = []
    fake = FakeTime()

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with client_for(answer, fake) as client:
        client.get("https://a.example/x")
    assert seen[0].headers["User-Agent"] == user_agent("me@example.org")
    assert seen[0].headers["User-Agent"].startswith("digest/0.1.0 (")
    assert "mailto:me@example.org" in seen[0].headers["User-Agent"]


def test_hosts_in_one_group_share_pacing() -> None:
    starts: list[tuple[str, float]] = []
    fake = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        starts.append((request.url.host, fake.now))
        return httpx.Response(200, content=b"ok")

    policies = {
        "rss.arxiv.org": HostPolicy("arxiv", 3.0),
        "export.arxiv.org": HostPolicy("arxiv", 3.0),
    }
    with client_for(handler, fake, policies=policies, default_interval=0.0) as client:
        client.get("https://rss.arxiv.org/rss/cs.LG")
        client.get("https://export.arxiv.org/api/query")
        client.get("https://other.example/")
        client.get("https://rss.arxiv.org/rss/cs.CL")
    arxiv_times = [t for host, t in starts if "arxiv" in host]
    gaps = [b - a for a, b in itertools.pairwise(arxiv_times)]
    assert gaps == [3.0, 3.0]
    assert client.requests == 4


def test_429_honours_retry_after_then_succeeds() -> None:
    replies = [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, content=b"x")]
    fake = FakeTime()
    with client_for(lambda r: replies.pop(0), fake, default_interval=0.0) as client:
        got = client.get("https://a.example/x")
    assert got.content == b"x" and fake.sleeps == [7.0]


@pytest.mark.parametrize("failure", ["503", "timeout", "connect"])
def test_transient_failures_back_off_exponentially_then_give_up(failure: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if failure == "connect":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503)

    fake = FakeTime()
    client = client_for(handler, fake, default_interval=0.0, attempts=4, backoff=1.0)
    with pytest.raises(SourceError, match=r"GET https://a.example/x: .*gave up after 4 tries"):
        client.get("https://a.example/x")
    assert client.requests == 4 and len(fake.sleeps) == 3
    # Exponential with jitter: each wait at least the base doubling, at most base + jitter.
    for attempt, wait in enumerate(fake.sleeps):
        assert 2**attempt <= wait <= 2**attempt + 1.0


def test_client_errors_are_not_retried() -> None:
    fake = FakeTime()
    client = client_for(lambda r: httpx.Response(404), fake, default_interval=0.0)
    with pytest.raises(SourceError, match="HTTP 404 Not Found"):
        client.get("https://a.example/missing")
    assert client.requests == 1


def test_accepted_error_status_returns_the_body() -> None:
    fake = FakeTime()
    client = client_for(lambda r: httpx.Response(400, content=b"<feed/>"), fake)
    assert client.get("https://a.example/api", accept=(200, 400)).content == b"<feed/>"


def test_conditional_get_sends_validators_and_reports_304() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("If-None-Match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(
            200, content=b"body", headers={"ETag": '"v1"', "Last-Modified": "Sun, 22 Nov 2026"}
        )

    fake = FakeTime()
    with client_for(handler, fake, default_interval=0.0) as client:
        first = client.get("https://a.example/feed")
        second = client.get("https://a.example/feed", validators=first.validators)
    assert first.validators == Validators('"v1"', "Sun, 22 Nov 2026")
    assert not first.not_modified and second.not_modified and second.content == b""
    assert seen[1].headers["If-Modified-Since"] == "Sun, 22 Nov 2026"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("100000", 300.0),
        ("Sun, 22 Nov 2026 06:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 05:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# --- limits, against a real server on 127.0.0.1 ---------------------------------------------------

Reply = Callable[[socket.socket, threading.Event], None]


@contextmanager
def raw_server(reply: Reply) -> Iterator[str]:
    """A socket server on 127.0.0.1 that reads each request's head and lets `reply` write
    whatever bytes it likes (slowly, endlessly, compressed); every thread is joined at the end."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            with suppress(OSError):
                reply(conn, stop)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=handle, args=(conn,))
            worker.start()
            workers.append(worker)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    finally:
        stop.set()
        thread.join()
        for worker in workers:
            worker.join()
        listener.close()


def drip(conn: socket.socket, stop: threading.Event, data: bytes, every: float = 0.05) -> None:
    """Send `data` one byte at a time, `every` seconds apart, until done or stopped."""
    for byte in data:
        if stop.wait(every):
            return
        conn.sendall(bytes([byte]))


def drip_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n")
    drip(conn, stop, b"x" * 200)


def drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(conn, stop, b"X-Slow: " + b"y" * 200 + b"\r\n")
    conn.sendall(b"Content-Length: 2\r\n\r\nok")


@pytest.mark.parametrize("reply", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_dripping_server_is_cut_off_at_the_deadline_and_not_retried(reply: Reply) -> None:
    # Each byte comes well within the read timeout: only an overall deadline ends the request.
    client = PoliteClient(
        timeout=httpx.Timeout(5.0), deadline=0.5, attempts=3, backoff=0.0, default_interval=0.0
    )
    with raw_server(reply) as url, client, pytest.raises(SourceError) as caught:
        client.get(url)
    assert re.fullmatch(rf"GET {url}: .*0\.5 s .*deadline_seconds\)", str(caught.value))
    assert client.requests == 1


def gzip_of_zeros(megabytes: int) -> bytes:
    """A gzip stream of `megabytes` MiB of zero bytes: about a thousandth of that on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(2**20)
    return b"".join([*(compressor.compress(block) for _ in range(megabytes)), compressor.flush()])


def send_body(body: bytes, encoding: str = "", length: bool = True) -> Reply:
    def reply(conn: socket.socket, stop: threading.Event) -> None:
        head = "HTTP/1.1 200 OK\r\n"
        head += f"Content-Encoding: {encoding}\r\n" if encoding else ""
        head += f"Content-Length: {len(body)}\r\n" if length else "Connection: close\r\n"
        conn.sendall(head.encode() + b"\r\n" + body)

    return reply


@pytest.mark.parametrize(
    "reply",
    [
        send_body(gzip_of_zeros(50), "gzip"),
        send_body(zlib.compress(bytes(50 * 2**20), 9), "deflate"),
        send_body(bytes(3 * 2**20)),
        send_body(bytes(3 * 2**20), length=False),
    ],
    ids=["gzip-bomb", "deflate-bomb", "plain-with-length", "plain-until-close"],
)
def test_a_response_beyond_max_response_mb_fails_clearly(reply: Reply) -> None:
    client = PoliteClient(max_response_mb=1, default_interval=0.0, attempts=1)
    with raw_server(reply) as url, client, pytest.raises(SourceError) as caught:
        client.get(url)
    expected = rf"GET {url}: .* more than 1 MB \(\[http\] max_response_mb\)"
    assert re.fullmatch(expected, str(caught.value))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
def test_a_compressed_response_within_the_limit_is_decoded(encoding: str) -> None:
    text = b"".join(b"<p>paper %d</p>\n" % n for n in range(50_000))  # ~0.8 MB
    body = {
        "gzip": gzip.compress(text),
        "deflate": zlib.compress(text),
        "identity": text,
    }[encoding]
    client = PoliteClient(max_response_mb=1, default_interval=0.0, attempts=1)
    with raw_server(send_body(body, encoding)) as url, client:
        assert client.get(url).content == text


RSS_PROBE = """
import sys
from digest.errors import SourceError
from digest.http import PoliteClient
with PoliteClient(default_interval=0.0, attempts=1) as client:
    try:
        client.get(sys.argv[1])
    except SourceError as exc:
        print(exc, file=sys.stderr)
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child forked
# from a big pytest process would report the parent's size (299 MB late in the suite).
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def test_a_one_gib_gzip_bomb_keeps_peak_memory_low() -> None:
    """A process reading a 1 GiB bomb (1 MB on the wire) under the default 50 MB limit."""
    bomb = gzip_of_zeros(1024)
    with raw_server(send_body(bomb, "gzip")) as url:
        probe = subprocess.run(
            [sys.executable, "-c", RSS_PROBE, url],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parent.parent,
        )
    assert "more than 50 MB" in probe.stderr, probe.stderr
    peak_mb = int(probe.stdout) / 1024  # VmHWM is in KiB
    print(f"peak RSS reading a 1 GiB gzip bomb: {peak_mb:.0f} MB")
    assert peak_mb < 200


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (send_body(b"\x1f\x8b\x08\x00not really gzip", "gzip"), "bad gzip data"),
        (send_body(b"compressed?", "br"), "unsupported Content-Encoding 'br'"),
    ],
    ids=["corrupt-gzip", "not-asked-for-brotli"],
)
def test_an_undecodable_response_fails_clearly(reply: Reply, problem: str) -> None:
    client = PoliteClient(default_interval=0.0, attempts=1)
    with raw_server(reply) as url, client, pytest.raises(SourceError) as caught:
        client.get(url)
    assert str(caught.value).startswith(f"GET {url}: undecodable response: {problem}")
