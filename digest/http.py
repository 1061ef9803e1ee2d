"""One polite, resilient HTTP client for every source.

- A User-Agent naming the project, its version and the configured contact address.
- Connect and read timeouts on every request.
- Per-host pacing: hosts in one group (arXiv's API and listing feeds) share one queue, one
  request at a time and at least `min_interval` seconds between request starts.
- Retries with exponential backoff and jitter (tenacity) on timeouts, connection errors, 429 and
  5xx, honouring `Retry-After`; a SourceError naming the URL after the last try.
- Conditional GET: `Validators` (ETag, Last-Modified) are sent back; a 304 is `not_modified`.

The transport, the sleep function and the monotonic clock are injected, so tests can point the
client at a local server (or an httpx.MockTransport) and check the pacing it produced.
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
from urllib.parse import urlsplit

import httpx
import tenacity

from digest import __version__
from digest.errors import SourceError

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
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_start: float | None = None


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
        attempts: int = 4,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = httpx.Client(
            headers={"User-Agent": user_agent(contact)},
            timeout=timeout or httpx.Timeout(30.0, connect=10.0),
            transport=transport,
            follow_redirects=True,
        )
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

    def _policy(self, url: str) -> HostPolicy:
        """The policy whose key (a host name, or a URL prefix) fits `url` most closely."""
        host = urlsplit(url).hostname or ""
        fitting = [key for key in self._policies if key == host or url.startswith(key)]
        if not fitting:
            return HostPolicy(host, self._default_interval)
        return self._policies[max(fitting, key=len)]

    def _lane(self, group: str) -> _Lane:
        with self._lanes_lock:
            return self._lanes.setdefault(group, _Lane())

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        validators: Validators | None = None,
        accept: Collection[int] = (200,),
    ) -> Fetched:
        """GET `url`, paced and retried; SourceError once retrying cannot help.

        `accept` lists the statuses whose body the caller wants (e.g. arXiv's 400 error feed).
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=self._wait,
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
                    return self._get_once(url, params, validators, accept)
        except _Retryable as exc:
            raise SourceError(f"GET {url}: {exc} (gave up after {self._attempts} tries)") from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

    def _wait(self, state: tenacity.RetryCallState) -> float:
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
    ) -> Fetched:
        policy = self._policy(url)
        lane = self._lane(policy.group)
        with lane.lock:  # one request at a time per group, paced from request start
            if lane.last_start is not None:
                wait = lane.last_start + policy.min_interval - self._monotonic()
                if wait > 0:
                    self._sleep(wait)
            lane.last_start = self._monotonic()
            self.requests += 1
            headers = validators.headers() if validators else {}
            try:
                response = self._client.get(url, params=params, headers=headers)
            except httpx.TimeoutException:
                raise _Retryable("timed out") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"connection failed: {exc or type(exc).__name__}") from None
        return self._interpret(url, response, validators, accept)

    def _interpret(
        self,
        url: str,
        response: httpx.Response,
        validators: Validators | None,
        accept: Collection[int],
    ) -> Fetched:
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
        return Fetched(url, status, response.content, new_validators)
