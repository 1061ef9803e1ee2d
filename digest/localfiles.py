"""Reading a file the user named (a library export, a listing), bounded and never blocking.

Only regular files are read: a named pipe would block `open` until a writer came (a FIFO as a
library hung `digest match` forever), a character device such as /dev/zero never ends, and a
directory or socket is not a file at all. The size bound is checked before reading and again
while reading, so a file that grows in between is not read past it; the file is opened with
O_NONBLOCK, so even a path swapped for a FIFO after the check cannot block.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_CHUNK = 1024 * 1024
_KINDS = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISSOCK, "is a socket"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
)


class UnreadableFile(Exception):
    """A file was not read; the message says why, without the path (callers add it)."""


def size_text(count: int) -> str:
    """A byte count as people say it: whole megabytes as `20 MB`, else `1,000 bytes`."""
    mib = 1024 * 1024
    if count >= mib and count % mib == 0:
        return f"{count // mib} MB"
    return f"{count:,} bytes"


def _kind(mode: int) -> str:
    for test, text in _KINDS:
        if test(mode):
            return f"{text}, not a regular file"
    return "is not a regular file"


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them.

    UnreadableFile, saying why, for a missing file, one that is not a regular file, one larger
    than `max_bytes` (before or while reading) or any other OSError."""
    too_big = f"larger than {size_text(max_bytes)}, not read"
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            raise UnreadableFile(_kind(status.st_mode))
        if status.st_size > max_bytes:
            raise UnreadableFile(too_big)
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile("file not found") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    try:
        opened = os.fstat(descriptor)  # what was opened, should the path have changed since
        if not stat.S_ISREG(opened.st_mode):
            raise UnreadableFile(_kind(opened.st_mode))
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(descriptor, min(_CHUNK, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(descriptor)
    if size > max_bytes:
        raise UnreadableFile(too_big)
    return b"".join(chunks)
