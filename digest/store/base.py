"""What every part of the store shares: the connection, transactions, and the translation of
sqlite and decode errors into one-line StoreErrors naming the database."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import sqlite3
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from digest.errors import StoreError


def sql_list(values: Iterable[str]) -> str:
    """Constant status names as an SQL list, `('a', 'b')` (never user input)."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


# What a damaged database raises while it is read: sqlite's own errors, and bad stored values
# (invalid UTF-8, broken JSON, unreadable dates: UnicodeDecodeError and JSONDecodeError are
# ValueErrors too).
STORE_FAULTS = (sqlite3.Error, ValueError)
RECOVER_HINT = "run `digest doctor` for how to recover"


# Values bound in one `IN (...)` query: well under SQLite's limit of bound parameters.
IN_BATCH = 500


def select_in(conn: sqlite3.Connection, sql: str, values: Iterable[str]) -> Iterator[sqlite3.Row]:
    """The rows of `sql`, whose `IN ({marks})` takes `values` (each once), a batch at a time:
    a few queries for any number of values, none per value."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), IN_BATCH):
        chunk = ordered[start : start + IN_BATCH]
        yield from conn.execute(sql.format(marks=", ".join("?" * len(chunk))), chunk)


def store_fault(path: Path | None, exc: BaseException) -> StoreError:
    """One line naming the database and what went wrong, from a low-level error."""
    if disk_full(path, exc):
        return StoreError(f"{path or ':memory:'}: {DISK_FULL}")
    return StoreError(f"{path or ':memory:'}: database error: {_detail(exc)}; {RECOVER_HINT}")


def _detail(exc: BaseException) -> str:
    """The low-level error on one line, cut to a readable length."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if len(detail) > 160:  # sqlite quotes the undecodable text itself
        detail = detail[:157] + "..."
    return detail


def open_fault(path: Path | str | None, exc: BaseException) -> StoreError:
    """One line for a database that cannot be opened (or migrated), from a low-level error."""
    if disk_full(Path(path) if path is not None else None, exc):
        return StoreError(f"{path}: cannot open database: {DISK_FULL}")
    return StoreError(f"{path}: cannot open database: {_detail(exc)}; {RECOVER_HINT}")


DISK_FULL = (
    "the disk is full (no space left for the database); the write was rolled back: "
    "free some space and run the command again"
)
_SQLITE_FULL = 13  # sqlite3's result codes (the low byte of an extended code)
_SQLITE_IOERR = 10
_LOW_SPACE = 1 << 20  # bytes: below this, an I/O error while writing is a full disk


def disk_full(path: Path | None, exc: BaseException) -> bool:
    """True when `exc` means there is no space left: SQLITE_FULL ("database or disk is full"),
    ENOSPC, or an sqlite I/O error where the database's file system has no space left (SQLite
    reports a failed write of its WAL index as "disk I/O error", whatever the reason)."""
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    if not isinstance(exc, sqlite3.Error):
        return False
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == _SQLITE_FULL or "database or disk is full" in str(exc):
        return True
    if code == _SQLITE_IOERR or "disk I/O error" in str(exc):
        return path is not None and _space_left(path) < _LOW_SPACE
    return False


def _space_left(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path`."""
    for place in (path, *path.parents):
        try:
            stats = os.statvfs(place)
        except OSError:
            continue
        return int(stats.f_bavail) * int(stats.f_frsize)
    return _LOW_SPACE  # unknown: do not claim a full disk


_T = TypeVar("_T")
_S = TypeVar("_S")


def _guarded(path: Path | None, items: Iterator[_T]) -> Iterator[_T]:
    """`items`, with errors raised while iterating translated like the call's own."""
    try:
        yield from items
    except STORE_FAULTS as exc:
        raise store_fault(path, exc) from exc


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: StoreBase, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except STORE_FAULTS as exc:
            raise store_fault(self.path, exc) from exc
        # Generators and cursors fail while they are read, after the call returned.
        if isinstance(result, types.GeneratorType | sqlite3.Cursor):
            return _guarded(self.path, result)
        return result

    return wrapper


def translate_store_errors(cls: type[_S]) -> type[_S]:
    """Class decorator: every public method and property of `cls` (and what its generators
    yield) raises StoreError naming the database instead of sqlite3 or decode errors, the
    low-level error kept as the cause. Context managers translate their own errors."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(member, property) and member.fget is not None:
            setattr(cls, name, property(_translating(member.fget), member.fset, member.fdel))
        elif inspect.isfunction(member):
            setattr(cls, name, _translating(member))
    return cls


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back after a failure; the failure is the error to report, not a failed rollback."""
    with contextlib.suppress(sqlite3.Error):
        conn.rollback()


@translate_store_errors
class StoreBase:
    """The connection and path every part of the store works on (`Store` combines the parts)."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path
        self.read_only = False  # opened with `read_only` (sqlite `mode=ro`): nothing is written
        # Paper writes through this store, so `papers_version` changes with each (SQLite's
        # data_version only counts other connections' commits).
        self._paper_writes = 0

    def papers_version(self) -> tuple[int, int]:
        """A value that changes whenever the stored papers may have changed: another
        connection committed (SQLite's `data_version`) or this store wrote papers. What a
        planning pass checks before it reuses papers decoded by the pass before."""
        data_version = self.db.conn.execute("PRAGMA data_version").fetchone()[0]
        return (int(data_version), self._paper_writes)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work: all of it is committed, or none of it.

        The transaction is opened explicitly: sqlite-utils' `execute` commits each write at once
        when no transaction is open, so Python's implicit transactions would not hold. Nested
        calls join the outer transaction.
        """
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except STORE_FAULTS as exc:  # a damaged schema's message may not even decode
            raise store_fault(self.path, exc) from exc
        try:
            yield
        except sqlite3.DatabaseError as exc:
            _rollback(conn)
            raise store_fault(self.path, exc) from exc
        except BaseException:
            _rollback(conn)
            raise
        try:
            conn.commit()
        except STORE_FAULTS as exc:
            raise store_fault(self.path, exc) from exc
