"""One polite, resilient HTTP client for every source.

- A User-Agent naming the project, its version and the configured contact address.
- Connect and read timeouts on every request, and an overall deadline: a server that drips one
  byte a second (inside the read timeout) is cut off when the deadline passes.
- At most `max_response_mb` read per response, counted on the wire and again after decoding
  gzip/deflate, decoded in bounded pieces, so a compression bomb cannot inflate in memory.
- Per-host pacing: hosts in one group (arXiv's API and listing feeds) share one queue, one
  request at a time and at least `min_interval` seconds between request starts.
- Retries with exponential backoff and jitter (tenacity) on timeouts, connection errors, 429 and
  5xx, honouring `Retry-After`; a SourceError naming the URL after the last try.
- Conditional GET: `Validators` (ETag, Last-Modified) are sent back; a 304 is `not_modified`.

The transport, the sleep function and the monotonic clock are injected, so tests can point the
client at a local server (or an httpx.MockTransport) and check the pacing it produced. The
deadline-bound transport is in `digest.http_transport`, the bounded body decoding in
`digest.http_body`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import urlsplit

import httpx
import tenacity

from digest import __version__
from digest.errors import SourceDeadlineError, SourceError
from digest.http_body import ACCEPT_ENCODING as ACCEPT_ENCODING
from digest.http_body import TooLarge, Undecodable, read_body
from digest.http_transport import DEADLINE
from digest.http_transport import DeadlineTransport as DeadlineTransport

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True, slots=True)
class Validators:
    """What a server said about a response, to ask next time whether it changed."""

    etag: str = ""
    last_modified: str = ""

    def headers(self) -> dict[str, str]:
        """Conditional request headers for these validators."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Fetched:
    """A finished GET: the body, or `not_modified` after a 304."""

    url: str
    status: int
    content: bytes = b""
    validators: Validators = Validators()
    not_modified: bool = False
    # What a parser needs to read the body as the server meant it: where it came from after
    # redirects (the base of relative links), and the Content-Type (charset) and
    # Content-Location headers.
    final_url: str = ""
    content_type: str = ""
    content_location: str = ""
    # The server's rate-limit headers (`X-RateLimit-*`, lower case), for sources with a budget.
    rate_limit: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """Pacing for a group of hosts: at least `min_interval` seconds between request starts."""

    group: str
    min_interval: float


class _Retryable(Exception):
    """A failure worth another try; `retry_after` is the server's requested wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def user_agent(contact: str) -> str:
    """`digest/0.1.0 (research digest emailer; mailto:me@example.org)`."""
    who = f"; mailto:{contact}" if contact else ""
    return f"digest/{__version__} (research digest emailer{who})"


@dataclass
class _Lane:
    """One group of hosts' queue: a request at a time, and when the last one started."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    last_start: float | None = None


@dataclass(frozen=True, slots=True)
class _TimeLimit:
    """How long one request may take, and whether the caller's deadline set it."""

    seconds: float
    by_caller: bool


class PoliteClient:
    """GET with pacing, retries and conditional requests. Close it when done."""

    def __init__(
        self,
        *,
        contact: str = "",
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        policies: Mapping[str, HostPolicy] | None = None,  # by host name or URL prefix
        default_interval: float = 1.0,
        deadline: float = 120.0,
        max_response_mb: float = 50,
        attempts: int = 4,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = httpx.Client(
            headers={"User-Agent": user_agent(contact), "Accept-Encoding": ACCEPT_ENCODING},
            timeout=timeout or httpx.Timeout(30.0, connect=10.0),
            transport=transport or DeadlineTransport(),
            follow_redirects=True,
        )
        self._deadline = deadline
        self._max_mb = max_response_mb
        self._max_bytes = int(max_response_mb * 2**20)
        self._policies = dict(policies or {})
        self._default_interval = default_interval
        self._lanes: dict[str, _Lane] = {}
        self._lanes_lock = threading.Lock()
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self.requests = 0

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clock(self) -> float:
        """The client's monotonic clock (injected in tests), in seconds: what a `deadline`
        passed to `get` is measured on."""
        return self._monotonic()

    def _policy(self, url: str) -> HostPolicy:
        """The policy whose key (a host name, or a URL prefix) fits `url` most closely."""
        host = urlsplit(url).hostname or ""
        fitting = [key for key in self._policies if key == host or url.startswith(key)]
        if not fitting:
            return HostPolicy(host, self._default_interval)
        return self._policies[max(fitting, key=len)]

    def _lane(self, group: str) -> _Lane:
        """The pacing lane of a host group (made on first use)."""
        with self._lanes_lock:
            return self._lanes.setdefault(group, _Lane())

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        validators: Validators | None = None,
        accept: Collection[int] = (200,),
        deadline: float | None = None,
    ) -> Fetched:
        """GET `url`, paced and retried; SourceError once retrying cannot help.

        `accept` lists the statuses whose body the caller wants (e.g. arXiv's 400 error feed).
        `deadline` (on `clock()`) bounds everything, the pacing and the waits between tries
        (a Retry-After) included: SourceDeadlineError rather than waiting past it.
        """

        def wait(state: tenacity.RetryCallState) -> float:
            seconds = self._wait(state)
            last = state.attempt_number >= self._attempts  # no other try: tenacity stops
            if deadline is not None and not last and self._monotonic() + seconds > deadline:
                failure = state.outcome.exception() if state.outcome else None
                raise SourceDeadlineError(
                    f"GET {url}: {failure}; another try would wait {seconds:g} s, past the deadline"
                )
            return seconds

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            before_sleep=lambda state: log.info(
                "GET %s failed (%s); retrying", url, state.outcome and state.outcome.exception()
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._get_once(url, params, validators, accept, deadline)
        except _Retryable as exc:
            raise SourceError(f"GET {url}: {exc} (gave up after {self._attempts} tries)") from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds before the next try: the server's Retry-After, else backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        # Exponential backoff with jitter, so clients that failed together do not retry together.
        exponential = self._backoff * 2 ** (state.attempt_number - 1)
        return float(min(exponential, self._max_backoff) + random.uniform(0, self._backoff))

    def _get_once(
        self,
        url: str,
        params: Mapping[str, str | int] | None,
        validators: Validators | None,
        accept: Collection[int],
        deadline: float | None = None,
    ) -> Fetched:
        """One try: paced in the URL's lane, sent, read and interpreted."""
        policy = self._policy(url)
        lane = self._lane(policy.group)
        with lane.lock:  # one request at a time per group, paced from request start
            self._pace(url, lane, policy.min_interval, deadline)
            limit = self._time_limit(url, deadline)
            lane.last_start = self._monotonic()
            self.requests += 1
            headers = validators.headers() if validators else {}
            response, body = self._exchange(url, params, headers, accept, limit)
        return self._interpret(url, response, body, validators, accept)

    def _pace(self, url: str, lane: _Lane, min_interval: float, deadline: float | None) -> None:
        """Sleep until `min_interval` after the lane's last request start; SourceDeadlineError
        when that wait would pass `deadline`."""
        if lane.last_start is None:
            return
        wait = lane.last_start + min_interval - self._monotonic()
        if wait <= 0:
            return
        if deadline is not None and self._monotonic() + wait >= deadline:
            raise SourceDeadlineError(
                f"GET {url}: the pacing wait of {wait:g} s would pass the deadline"
            )
        self._sleep(wait)

    def _time_limit(self, url: str, deadline: float | None) -> _TimeLimit:
        """How long the request may take: the client's deadline, or less when the caller's
        `deadline` comes first; SourceDeadlineError when that has passed already."""
        if deadline is None:
            return _TimeLimit(self._deadline, by_caller=False)
        left = deadline - self._monotonic()
        if left <= 0:
            raise SourceDeadlineError(f"GET {url}: not sent, the deadline has passed")
        if left < self._deadline:
            return _TimeLimit(left, by_caller=True)
        return _TimeLimit(self._deadline, by_caller=False)

    def _exchange(
        self,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: dict[str, str],
        accept: Collection[int],
        limit: _TimeLimit,
    ) -> tuple[httpx.Response, bytes]:
        """The response, and its body when its status is accepted, within `limit`; a failure
        as SourceError, or _Retryable when another try may help."""
        try:
            with (
                DEADLINE.bound(limit.seconds),
                self._client.stream("GET", url, params=params, headers=headers) as response,
            ):
                body = (
                    read_body(response, self._max_bytes) if response.status_code in accept else b""
                )
        except httpx.InvalidURL as exc:  # not a network fault: another try cannot help
            raise SourceError(f"GET {url}: the request cannot be made: {exc}") from exc
        except httpx.TimeoutException as exc:
            self._timed_out(url, exc, limit.by_caller)
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed: {exc or type(exc).__name__}") from None
        except TooLarge as exc:
            raise SourceError(
                f"GET {url}: {exc} more than {self._max_mb:g} MB ([http] max_response_mb)"
            ) from exc
        except Undecodable as exc:
            raise SourceError(f"GET {url}: undecodable response: {exc}") from exc
        return response, body

    def _timed_out(self, url: str, exc: httpx.TimeoutException, by_caller: bool) -> NoReturn:
        """Raise what a timeout means: past the caller's deadline, past the client's (a server
        this slow will not be quicker on a second try), or a slow read worth another try."""
        if DEADLINE.clipped and by_caller:
            raise SourceDeadlineError(f"GET {url}: no complete answer before the deadline") from exc
        if DEADLINE.clipped:
            raise SourceError(
                f"GET {url}: no complete answer within {self._deadline:g} s "
                "([http] deadline_seconds)"
            ) from exc
        raise _Retryable("timed out") from None

    def _interpret(
        self,
        url: str,
        response: httpx.Response,
        body: bytes,
        validators: Validators | None,
        accept: Collection[int],
    ) -> Fetched:
        """The Fetched for a response: 304 not modified, a retryable status, or the body."""
        status = response.status_code
        if status == 304:
            return Fetched(url, status, validators=validators or Validators(), not_modified=True)
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())
            raise _Retryable(f"HTTP {status} {response.reason_phrase}", retry_after)
        if status not in accept:
            raise SourceError(f"GET {url}: HTTP {status} {response.reason_phrase}")
        new_validators = Validators(
            etag=response.headers.get("ETag", ""),
            last_modified=response.headers.get("Last-Modified", ""),
        )
        return Fetched(
            url,
            status,
            body,
            new_validators,
            final_url=str(response.url),
            content_type=response.headers.get("Content-Type", ""),
            content_location=response.headers.get("Content-Location", ""),
            rate_limit=_rate_limit(response.headers),
        )


def _rate_limit(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    """The `X-RateLimit-*` headers, their names in lower case."""
    return tuple(
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower().startswith("x-ratelimit-")
    )
