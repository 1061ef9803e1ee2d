"""The HTTP transport under PoliteClient: httpcore's connection pool over a socket backend whose
every wait ends at the running request's deadline.

A read timeout bounds each wait for the next bytes; the deadline bounds the whole request, so a
server that drips one byte a second (each byte inside the read timeout) is still cut off.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import httpcore
import httpx


class RequestDeadline(threading.local):
    """The running request's deadline (time.monotonic), per thread; None outside a request.

    Every socket operation waits at most until it, so even a byte-a-second server, each byte
    inside the read timeout, cannot keep a request open past it. `clipped` remembers that a wait
    was shortened for it, so a timeout is reported as the deadline and not retried.
    """

    at: float | None = None
    clipped: bool = False

    @contextmanager
    def bound(self, seconds: float) -> Iterator[None]:
        """Set the deadline `seconds` from now for the body of the with-block."""
        self.at, self.clipped = time.monotonic() + seconds, False
        try:
            yield
        finally:
            self.at = None

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


DEADLINE = RequestDeadline()


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends at the running request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, DEADLINE.clip(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, DEADLINE.clip(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, DEADLINE.clip(timeout))
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
            host, port, DEADLINE.clip(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, DEADLINE.clip(timeout), socket_options)
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


def _raise_as_httpx(exc: Exception, request: httpx.Request) -> NoReturn:
    """Raise `exc` as httpx raises it: httpcore's errors mapped, any other one unchanged."""
    mapped = _as_httpx_error(exc, request)
    if mapped is exc:
        raise exc
    raise mapped from exc


class _PoolStream(httpx.SyncByteStream):
    """A response body read from the pool, its errors raised as httpx's."""

    def __init__(self, stream: Iterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as exc:
            _raise_as_httpx(exc, self._request)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _core_request(request: httpx.Request) -> httpcore.Request:
    """httpcore's form of an httpx request."""
    if not isinstance(request.stream, httpx.SyncByteStream):  # pragma: no cover - sync only
        raise TypeError("DeadlineTransport sends synchronous requests only")
    return httpcore.Request(
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
        """Send `request` over the pool; the response streams its body from the socket."""
        core_request = _core_request(request)
        try:
            response = self._pool.handle_request(core_request)
        except Exception as exc:
            _raise_as_httpx(exc, request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PoolStream(response.stream, request),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
