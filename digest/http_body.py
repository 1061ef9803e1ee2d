"""Reading a response body within a size limit, decoding gzip/deflate ourselves.

The limit is counted on the wire (compressed) and again after decoding, and the decoder makes at
most `_PIECE` bytes per step, so a compression bomb cannot inflate in memory: httpx would
inflate a whole 64 KB wire chunk at once, 64 MB of a gzip bomb in one allocation.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

from digest.http_transport import DEADLINE

# The encodings we ask for and decode ourselves, piece by bounded piece.
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 64 * 1024  # the most decoded bytes made from one step of the decompressor
# zlib's window bits per content coding: a gzip header (16 + 15), or a zlib stream (deflate).
_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
_RAW_DEFLATE = -15  # raw deflate, no zlib header, as some servers send "deflate"


class TooLarge(Exception):
    """The response went past the size limit (on the wire or decoded)."""


class Undecodable(Exception):
    """The body is in an encoding we did not ask for, or its compressed data is corrupt."""


def _coding(encoding: str) -> str:
    """The one compression a Content-Encoding header names ("" for none); Undecodable for any
    other coding, or more than one."""
    names = [name.strip().lower() for name in encoding.split(",")]
    names = [name for name in names if name and name != "identity"]
    if len(names) > 1 or (names and names[0] not in _WBITS):
        raise Undecodable(f"unsupported Content-Encoding {encoding!r}")
    return names[0] if names else ""


class Inflater:
    """Decodes a response body (identity, gzip or deflate) in pieces of at most _PIECE bytes."""

    def __init__(self, encoding: str) -> None:
        self._name = _coding(encoding)
        self._zlib = zlib.decompressobj(_WBITS[self._name]) if self._name else None
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next wire bytes."""
        if self._zlib is None:
            yield data
            return
        if not self._started:
            self._start(data)
        yield from self._inflate(data)

    def _start(self, data: bytes) -> None:
        """Look at the first wire bytes: a "deflate" body without a zlib header is raw deflate."""
        self._started = True
        if self._name == "deflate" and data and data[0] & 0x0F != 8:
            self._zlib = zlib.decompressobj(_RAW_DEFLATE)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        """Decode `data` one bounded piece at a time."""
        decoder = self._zlib
        assert decoder is not None
        while True:
            piece = decoder.decompress(data, _PIECE)
            data = decoder.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave output inside zlib even when all input is consumed.
            if decoder.eof or (not data and len(piece) < _PIECE):
                return

    def finish(self) -> bytes:
        """What the decoder still holds at the end of the body."""
        return self._zlib.flush() if self._zlib is not None else b""


def _check_size(size: int, max_bytes: int) -> None:
    """TooLarge when a decoded body of `size` bytes is past the limit."""
    if size > max_bytes:
        raise TooLarge("the response decodes to")


def read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body, read in pieces and stopped at `max_bytes`, counted on the wire
    (compressed) and decoded; TooLarge past it, Undecodable when it cannot be decoded."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"the server announced {int(declared) / 2**20:.1f} MB,")
    if response.is_stream_consumed:  # built in memory and decoded (httpx.MockTransport)
        _check_size(len(response.content), max_bytes)
        return response.content
    inflater = Inflater(response.headers.get("Content-Encoding", ""))
    try:
        body = _read_stream(response, inflater, max_bytes)
    except zlib.error as exc:
        encoding = response.headers.get("Content-Encoding")
        raise Undecodable(f"bad {encoding} data: {exc}") from exc
    _check_size(len(body), max_bytes)
    return bytes(body)


def _read_stream(response: httpx.Response, inflater: Inflater, max_bytes: int) -> bytearray:
    """The body as it arrives, decoded; TooLarge as soon as either count passes `max_bytes`."""
    body = bytearray()
    for raw in response.iter_raw():
        if response.num_bytes_downloaded > max_bytes:
            raise TooLarge("the response is")
        for piece in inflater.feed(raw):
            body += piece
            if len(body) > max_bytes:
                raise TooLarge("the response decodes to")
        DEADLINE.check()  # the sockets honour it too; this covers any transport
    body += inflater.finish()
    return body
