"""One process at a time: the exclusive lock of a database file (`run`, `send`).

The lock belongs to the file, not to the name it was reached by. It is an flock on
`<file>.lock` beside the database's real path: symlinks (to the file or to a directory on the
way) and relative paths are resolved first, and a bind mount or another route to the same
directory reaches the same lock file. The one name resolving cannot unify is a second hard link;
`Store.open` refuses a database file that has one (`refuse_second_names`).

The lock is never taken on the database file itself: closing any descriptor of that file drops
every POSIX lock this process holds on it, sqlite's own included.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from digest.errors import LockedError, StoreError


def lock_path(db_path: Path) -> Path:
    """The lock file of the database at `db_path`, beside its real path."""
    real = db_path.resolve()
    return real.with_name(real.name + ".lock")


def refuse_second_names(db_path: Path) -> None:
    """StoreError when the database file has more than one hard link.

    SQLite keeps the write-ahead log and its index under the name a database was opened by, so
    two names are two journals for one file: two writers corrupt it, and no lock taken by name
    can see the other name. A symlink is fine (both resolve to one name).
    """
    try:
        links = os.stat(db_path).st_nlink
    except OSError:  # not there yet, or unreadable: opening it says so
        return
    if links > 1:
        raise StoreError(
            f"{db_path}: this database file has {links} names (hard links); SQLite keeps a "
            "journal per name, so using it by two names corrupts it: keep one name (find the "
            f"others with `find / -xdev -samefile {db_path}`, remove them) and use a symlink or "
            "--db to reach it from elsewhere"
        )


@contextlib.contextmanager
def exclusive_lock(db_path: Path, purpose: str) -> Iterator[None]:
    """Hold the exclusive lock of the database file at `db_path` (however it was named), or
    raise LockedError at once."""
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            real = db_path.resolve()
            named = db_path if real == db_path.absolute() else f"{db_path} (the file {real})"
            raise LockedError(
                f"{named}: {holder} is already using this database; refusing to start {purpose}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{purpose} (pid {os.getpid()})")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
