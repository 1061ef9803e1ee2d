"""`Store`: the one object that reads and writes the database, made of the store's parts
(papers, the window rule, the outbox, fetch state), with opening, migrating and checking it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import sqlite_utils

from digest.errors import StoreError
from digest.http import Validators
from digest.models import Paper
from digest.store.base import (
    RECOVER_HINT,
    STORE_FAULTS,
    disk_full,
    open_fault,
    translate_store_errors,
)
from digest.store.compiled_rows import CompiledStore
from digest.store.feed_rows import FeedStore
from digest.store.feedback_rows import FeedbackStore
from digest.store.fetch_state import FetchStateStore
from digest.store.hits import HitStore
from digest.store.lock import refuse_second_names
from digest.store.merge import UpsertCounts
from digest.store.openalex_rows import OpenAlexStore
from digest.store.outbox import OutboxStore, outbox_from_row
from digest.store.papers import PaperStore
from digest.store.rows import paper_from_row
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION
from digest.store.suggest_rows import SuggestStore
from digest.store.window import WindowStore


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    """Close a connection that failed while opening (its own error is the one to report)."""
    if conn is not None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


def _connect(path: Path | None) -> sqlite3.Connection | None:
    """A connection to the database file, its directory made first; None for memory."""
    if path is None:
        return None
    refuse_second_names(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The scheduler runs jobs on a worker thread (one at a time).
    return sqlite3.connect(path, check_same_thread=False)


def _configured(conn: sqlite3.Connection | None) -> sqlite_utils.Database:
    """The database on `conn` (WAL), or in memory without one, with the store's settings."""
    if conn is None:
        db = sqlite_utils.Database(memory=True)
    else:
        db = sqlite_utils.Database(conn)
        db.enable_wal()
    db.conn.row_factory = sqlite3.Row
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("PRAGMA foreign_keys = ON")
    # 32 MB of page cache (the default is 2 MB): a year of papers keeps its indexes hot.
    db.execute("PRAGMA cache_size = -32000")
    return db


def _creation_fault(path: Path | None, exc: OSError) -> StoreError:
    """One line for a database file that cannot be created: a full disk, or the OS's reason."""
    if disk_full(path, exc):
        return open_fault(path, exc)
    return StoreError(f"{path}: cannot create the database: {exc.strerror or exc}")


def _schema_mismatch(path: Path, version: int) -> StoreError:
    """One line for a database at another schema than this digest reads, saying what to do."""
    newer = "upgrade digest" if version > SCHEMA_VERSION else "run `digest fetch` first"
    return StoreError(
        f"{path}: database schema {version}, this digest reads {SCHEMA_VERSION}; {newer}"
    )


def _backup_target_problem(source: Path, target: Path, *, force: bool) -> str:
    """Why `target` cannot take a backup of the database at `source` ('' when it can)."""
    if target.is_dir():  # never the database's own file
        return f"{target} is a directory; give the backup's file name"
    if target.exists():
        if target.resolve() == source.resolve():
            return f"{target} is the database itself; back it up to another file"
        if not force:
            return f"{target} exists; not overwriting it (--force replaces it)"
    if not target.parent.is_dir():
        return f"{target.parent} does not exist; create it first"
    return ""


def _write_copy(conn: sqlite3.Connection, partial: Path) -> None:
    """Copy the database on `conn` to the new file `partial` in one step (one snapshot), as a
    self-contained file (no WAL), checked and synced to disk."""
    with contextlib.closing(sqlite3.connect(partial)) as copy:
        conn.backup(copy)  # pages=-1: all of it in one step, one snapshot
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        problem = copy.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"the copy fails its check: {problem}")
    with open(partial, "rb") as written:
        os.fsync(written.fileno())


def _backup_fault(target: Path, exc: BaseException) -> StoreError:
    """One line for a backup that could not be written: a full disk, or what failed."""
    if disk_full(target, exc):
        return StoreError(f"{target}: the disk is full; no backup written")
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return StoreError(f"{target}: cannot write the backup: {detail}")


@translate_store_errors
class Store(
    PaperStore,
    WindowStore,
    OutboxStore,
    FetchStateStore,
    FeedbackStore,
    OpenAlexStore,
    SuggestStore,
    HitStore,
    FeedStore,
    CompiledStore,
):
    """The one object that reads and writes the database. Open with `Store.open(path)`.

    Every public method (and what its generators yield) raises StoreError naming the database
    instead of sqlite3 or decode errors (`translate_store_errors`, on each part).
    """

    @classmethod
    def open(
        cls, path: Path | str | None, *, read_only: bool = False, any_schema: bool = False
    ) -> Store:
        """Open (creating and migrating as needed) the database at `path`; None means memory.

        `read_only` opens an existing database as it is (sqlite `mode=ro`): nothing is created,
        migrated or written; a missing file is a StoreError saying how to make one. It must be
        at this digest's schema unless `any_schema` (`doctor` inspects any database).
        """
        if read_only and path is not None:
            return cls._open_read_only(Path(path), any_schema=any_schema)
        where = Path(path) if path is not None else None
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(where)
            store = cls(_configured(conn), where)
            store.migrate()
        except OSError as exc:
            _close_quietly(conn)
            raise _creation_fault(where, exc) from exc
        except STORE_FAULTS as exc:
            # sqlite's errors, and a damaged schema whose own text is not UTF-8 (sqlite quotes
            # it in its message, which Python then cannot decode: a UnicodeDecodeError).
            _close_quietly(conn)
            raise open_fault(where, exc) from exc
        return store

    @classmethod
    def _open_read_only(cls, path: Path, *, any_schema: bool) -> Store:
        if not path.is_file():
            raise StoreError(
                f"{path}: no database yet; run `digest fetch` to create it (or pass --db)"
            )
        refuse_second_names(path)
        conn: sqlite3.Connection | None = None
        try:
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            store = cls(sqlite_utils.Database(conn), path)
            store.read_only = True
            version = store.schema_version
        except STORE_FAULTS as exc:
            _close_quietly(conn)
            raise open_fault(path, exc) from exc
        if version != SCHEMA_VERSION and not any_schema:
            store.close()
            raise _schema_mismatch(path, version)
        return store

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    @property
    def data_version(self) -> int:
        """SQLite's `PRAGMA data_version`: on one open connection it changes whenever another
        connection commits a change to the database (what `digest serve` keys its pages on)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Apply every migration the database has not seen yet, each in its own transaction."""
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema {current} is newer than this digest "
                f"({SCHEMA_VERSION}); upgrade digest"
            )
        if current == SCHEMA_VERSION:
            return
        # A migration may rebuild a table (SQLite's way to change a constraint), which SQLite
        # asks to do with foreign keys off; they are checked before each migration commits.
        self.db.execute("PRAGMA foreign_keys = OFF")
        try:
            for version in range(current, SCHEMA_VERSION):
                self._migrate_to(version + 1)
        finally:
            self.db.execute("PRAGMA foreign_keys = ON")

    def _migrate_to(self, version: int) -> None:
        # One script, one transaction: the schema change and its version number together.
        script = f"BEGIN IMMEDIATE;\n{MIGRATIONS[version - 1]}\nPRAGMA user_version = {version};"
        conn = self.db.conn
        try:
            conn.executescript(script)
            broken = conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken is not None:
                raise sqlite3.IntegrityError(f"migration {version} broke {tuple(broken)}")
            conn.commit()
        except sqlite3.DatabaseError:
            if conn.in_transaction:
                conn.rollback()
            raise

    def ingest(
        self,
        source: str,
        papers: Iterable[Paper],
        updates: Iterable[Paper],
        validators: Mapping[str, Validators],
        now: datetime,
    ) -> UpsertCounts:
        """Store one source's successful fetch atomically: papers, updates, validators and the
        fetch state are all written, or none of them."""
        with self.transaction():
            added = self._merge_all(papers, now, only_existing=False)
            changed = self._merge_all(updates, now, only_existing=True)
            self._save_validators(source, validators)
            self._record_fetch(source, now, "")
        return UpsertCounts(
            added.new, added.updated + changed.updated, added.unchanged + changed.unchanged
        )

    def backup(self, target: Path, *, force: bool = False) -> int:
        """Copy the database, as one consistent moment of it, to the new file `target`, with
        SQLite's online backup API; returns the copy's size in bytes.

        Safe while another process writes: the copy is read in one step inside one read
        transaction (a WAL reader: writers go on meanwhile), and includes what the WAL holds,
        which a copy of the file alone misses. The copy is a single file (rollback journal, no
        `-wal`), checked, and renamed into place, so `target` is never a partial copy.
        `target` must not exist unless `force`; its directory must.
        """
        if self.path is None:
            raise StoreError("an in-memory database has nothing to back up")
        problem = _backup_target_problem(self.path, target, force=force)
        if problem:
            raise StoreError(problem)
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            _write_copy(self.db.conn, partial)
            os.replace(partial, target)
        except (OSError, *STORE_FAULTS) as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise _backup_fault(target, exc) from exc
        return target.stat().st_size

    def integrity_ok(self) -> bool:
        """True when `PRAGMA integrity_check` reports ok."""
        return bool(self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    def quick_check(self) -> str:
        """`ok`, or the first problems `PRAGMA quick_check` finds (the b-tree structure, not
        whether stored values decode), or the error that stopped it."""
        try:
            rows = self.db.execute("PRAGMA quick_check(5)").fetchall()
        except STORE_FAULTS as exc:  # a damaged schema's message may not even decode
            return str(exc)
        return "; ".join(str(row[0]) for row in rows) or "ok"

    def check_readable(self) -> None:
        """Read and decode every row of every table (StoreError at the first that fails): the
        damage quick_check cannot see, such as a flipped byte inside a stored value."""
        for row in self.db.execute("SELECT * FROM papers"):
            paper_from_row(row)
        for row in self.db.execute("SELECT * FROM outbox"):
            outbox_from_row(row)
        for table in self.db.table_names():
            for _ in self.db.execute(f"SELECT * FROM [{table}]"):
                pass

    def require_intact(self) -> None:
        """StoreError unless the database passes its quick check: commands that write (fetch,
        send, run) call this once at their start, so a damaged file is not made worse."""
        problem = self.quick_check()
        if problem != "ok":
            raise StoreError(
                f"{self.path}: the database fails its integrity check ({problem[:120]}); "
                f"not writing to it: {RECOVER_HINT}"
            )
