"""The polite HTTP client, over httpx.MockTransport: pacing, retries, conditional GET."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

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
    with client_for(lambda r: seen.append(r) or httpx.Response(200), fake) as client:
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
