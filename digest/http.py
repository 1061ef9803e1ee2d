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
client at a local server (or an httpx.MockTransport) and check the pacing it produced.
"""

from __future__ import annotations

import email.utils
import logging
import random
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import tenacity

from digest import __version__
from digest.errors import SourceDeadlineError, SourceError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 300.0
# The encodings we ask for and decode ourselves, piece by bounded piece (httpx would inflate a
# whole 64 KB wire chunk at once: 64 MB of a gzip bomb in one allocation).
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 64 * 1024  # the most decoded bytes made from one step of the decompressor


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


class _TooLarge(Exception):
    """The response went past the size limit (on the wire or decoded)."""


class _Undecodable(Exception):
    """The body is in an encoding we did not ask for, or its compressed data is corrupt."""


class _Deadline(threading.local):
    """The running request's deadline (time.monotonic), per thread; None outside a request.

    Every socket operation waits at most until it, so even a byte-a-second server, each byte
    inside the read timeout, cannot keep a request open past it. `clipped` remembers that a wait
    was shortened for it, so a timeout is reported as the deadline and not retried.
    """

    at: float | None = None
    clipped: bool = False

    def clip(self, timeout: float | None) -> float | None:
        """`timeout`, shortened to what is left of the deadline; ReadTimeout once it passed."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            self.clipped = True
            raise httpcore.ReadTimeout("deadline passed")
        if timeout is None or left < timeout:
            self.clipped = True
            return left
        return timeout

    def check(self) -> None:
        """ReadTimeout when the deadline has passed."""
        if self.at is not None and time.monotonic() >= self.at:
            self.clipped = True
            raise httpx.ReadTimeout("deadline passed")


_DEADLINE = _Deadline()


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends at the running request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _DEADLINE.clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _DEADLINE.clip(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _DEADLINE.clip(timeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with every stream bound by the request deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _DEADLINE.clip(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, _DEADLINE.clip(timeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


# httpcore's exceptions as httpx raises them (httpx's own table, for the errors a pool raises).
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.RequestError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _as_httpx_error(exc: Exception, request: httpx.Request) -> Exception:
    """The httpx exception for an httpcore one (the exception itself when it is not httpcore's)."""
    for core, mapped in _HTTPX_ERRORS:
        if isinstance(exc, core):
            return mapped(str(exc), request=request)
    return exc


class _PoolStream(httpx.SyncByteStream):
    """A response body read from the pool, its errors raised as httpx's."""

    def __init__(self, stream: Iterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as exc:
            mapped = _as_httpx_error(exc, self._request)
            if mapped is exc:
                raise
            raise mapped from exc

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """httpx's transport seam over httpcore's connection pool with our network backend, whose
    sockets honour the running request's deadline.

    httpx.HTTPTransport takes no network backend, so this is the part of it we need (TLS and
    HTTP/1.1 over one pool with httpx's default limits), built from both libraries' public API.
    """

    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):  # pragma: no cover - sync only
            raise TypeError("DeadlineTransport sends synchronous requests only")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = self._pool.handle_request(core_request)
        except Exception as exc:
            mapped = _as_httpx_error(exc, request)
            if mapped is exc:
                raise
            raise mapped from exc
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PoolStream(response.stream, request),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _Inflater:
    """Decodes a response body (identity, gzip or deflate) in pieces of at most _PIECE bytes."""

    def __init__(self, encoding: str) -> None:
        names = [name.strip().lower() for name in encoding.split(",") if name.strip()]
        names = [name for name in names if name != "identity"]
        if len(names) > 1 or (names and names[0] not in ("gzip", "x-gzip", "deflate")):
            raise _Undecodable(f"unsupported Content-Encoding {encoding!r}")
        self._name = names[0] if names else ""
        # gzip: a gzip header (wbits 16 + 15); deflate: a zlib stream, or raw deflate as some
        # servers send it (the first bytes tell).
        wbits = 31 if self._name in ("gzip", "x-gzip") else 15
        self._zlib = zlib.decompressobj(wbits) if self._name else None
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next wire bytes."""
        if self._zlib is None:
            yield data
            return
        if not self._started and self._name == "deflate" and data and data[0] & 0x0F != 8:
            self._zlib = zlib.decompressobj(-15)  # raw deflate: no zlib header
        self._started = True
        while True:
            piece = self._zlib.decompress(data, _PIECE)
            data = self._zlib.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave output inside zlib even when all input is consumed.
            if self._zlib.eof or (not data and len(piece) < _PIECE):
                return

    def finish(self) -> bytes:
        """What the decoder still holds at the end of the body."""
        return self._zlib.flush() if self._zlib is not None else b""


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
        policy = self._policy(url)
        lane = self._lane(policy.group)
        with lane.lock:  # one request at a time per group, paced from request start
            if lane.last_start is not None:
                wait = lane.last_start + policy.min_interval - self._monotonic()
                if wait > 0:
                    if deadline is not None and self._monotonic() + wait >= deadline:
                        raise SourceDeadlineError(
                            f"GET {url}: the pacing wait of {wait:g} s would pass the deadline"
                        )
                    self._sleep(wait)
            limit, by_caller = self._deadline, False
            if deadline is not None:
                left = deadline - self._monotonic()
                if left <= 0:
                    raise SourceDeadlineError(f"GET {url}: not sent, the deadline has passed")
                if left < limit:
                    limit, by_caller = left, True
            lane.last_start = self._monotonic()
            self.requests += 1
            headers = validators.headers() if validators else {}
            _DEADLINE.at, _DEADLINE.clipped = time.monotonic() + limit, False
            try:
                with self._client.stream("GET", url, params=params, headers=headers) as response:
                    body = self._read(response) if response.status_code in accept else b""
            except httpx.InvalidURL as exc:  # not a network fault: another try cannot help
                raise SourceError(f"GET {url}: the request cannot be made: {exc}") from exc
            except httpx.TimeoutException as exc:
                if _DEADLINE.clipped and by_caller:
                    raise SourceDeadlineError(
                        f"GET {url}: no complete answer before the deadline"
                    ) from exc
                if _DEADLINE.clipped:  # a server this slow will not be quicker on a second try
                    raise SourceError(
                        f"GET {url}: no complete answer within {self._deadline:g} s "
                        "([http] deadline_seconds)"
                    ) from exc
                raise _Retryable("timed out") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"connection failed: {exc or type(exc).__name__}") from None
            except _TooLarge as exc:
                raise SourceError(
                    f"GET {url}: {exc} more than {self._max_mb:g} MB ([http] max_response_mb)"
                ) from exc
            except _Undecodable as exc:
                raise SourceError(f"GET {url}: undecodable response: {exc}") from exc
            finally:
                _DEADLINE.at = None
        return self._interpret(url, response, body, validators, accept)

    def _read(self, response: httpx.Response) -> bytes:
        """The decoded body, read in pieces and stopped at the size limit, counted on the wire
        (compressed) and decoded; _TooLarge past it, _Undecodable when it cannot be decoded."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _TooLarge(f"the server announced {int(declared) / 2**20:.1f} MB,")
        if response.is_stream_consumed:  # built in memory and decoded (httpx.MockTransport)
            if len(response.content) > self._max_bytes:
                raise _TooLarge("the response decodes to")
            return response.content
        inflater = _Inflater(response.headers.get("Content-Encoding", ""))
        body = bytearray()
        try:
            for raw in response.iter_raw():
                if response.num_bytes_downloaded > self._max_bytes:
                    raise _TooLarge("the response is")
                for piece in inflater.feed(raw):
                    body += piece
                    if len(body) > self._max_bytes:
                        raise _TooLarge("the response decodes to")
                _DEADLINE.check()  # the sockets honour it too; this covers any transport
            body += inflater.finish()
        except zlib.error as exc:
            encoding = response.headers.get("Content-Encoding")
            raise _Undecodable(f"bad {encoding} data: {exc}") from exc
        if len(body) > self._max_bytes:
            raise _TooLarge("the response decodes to")
        return bytes(body)

    def _interpret(
        self,
        url: str,
        response: httpx.Response,
        body: bytes,
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
        return Fetched(
            url,
            status,
            body,
            new_validators,
            final_url=str(response.url),
            content_type=response.headers.get("Content-Type", ""),
            content_location=response.headers.get("Content-Location", ""),
            rate_limit=tuple(
                (name.lower(), value)
                for name, value in response.headers.items()
                if name.lower().startswith("x-ratelimit-")
            ),
        )
