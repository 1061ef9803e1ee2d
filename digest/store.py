"""The SQLite store: papers (merged across sources), authors, fetch state, outbox and deliveries.

Built on sqlite-utils. The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a
database from version i to i + 1, so every database ever created can be brought up to date.
Times are stored as ISO 8601 strings in UTC, which sort correctly as text.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import functools
import inspect
import json
import os
import sqlite3
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import sqlite_utils

from digest.errors import LockedError, StoreError
from digest.http import Validators
from digest.models import Paper, SourceStatus, fold


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# The first schema.
_MIGRATE_1 = """
        CREATE TABLE papers (
            key TEXT PRIMARY KEY,
            arxiv_id TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 0,
            doi TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            authors TEXT NOT NULL DEFAULT '[]',
            authors_truncated INTEGER NOT NULL DEFAULT 0,
            categories TEXT NOT NULL DEFAULT '[]',
            published TEXT,
            url TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            sources TEXT NOT NULL DEFAULT '[]',
            listing_id TEXT NOT NULL DEFAULT '',
            extra TEXT NOT NULL DEFAULT '{}',
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX papers_first_seen ON papers(first_seen);
        CREATE TABLE paper_keys (
            alias TEXT PRIMARY KEY,
            paper_key TEXT NOT NULL REFERENCES papers(key)
        );
        CREATE TABLE authors (
            paper_key TEXT NOT NULL REFERENCES papers(key),
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            folded TEXT NOT NULL,
            PRIMARY KEY (paper_key, position)
        );
        CREATE INDEX authors_folded ON authors(folded);
        CREATE TABLE fetch_state (
            source TEXT PRIMARY KEY,
            last_attempt TEXT,
            last_success TEXT,
            failing_since TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            etag TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT '',
            cursor TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            profile TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            created_at TEXT NOT NULL,
            cutoff TEXT NOT NULL,
            recipients TEXT NOT NULL,
            subject TEXT NOT NULL,
            raw BLOB NOT NULL,
            paper_count INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            sent_at TEXT
        );
        CREATE INDEX outbox_profile_status ON outbox(profile, status);
        CREATE TABLE outbox_papers (
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            paper_key TEXT NOT NULL REFERENCES papers(key),
            PRIMARY KEY (outbox_id, paper_key)
        );
        CREATE INDEX outbox_papers_key ON outbox_papers(paper_key);
        CREATE TABLE deliveries (
            profile TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers(key),
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            delivered_at TEXT NOT NULL,
            PRIMARY KEY (profile, paper_key)
        );
"""

# Conditional-GET validators per source and URL (a source may read many URLs).
_MIGRATE_2 = """
        CREATE TABLE http_validators (
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            etag TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (source, url)
        );
"""

# When each profile's send job last ran to the end (sent, or nothing to send): what is due.
_MIGRATE_3 = """
        CREATE TABLE send_runs (
            profile TEXT PRIMARY KEY,
            last_run TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT ''
        );
"""

# The window rule (DESIGN.md): papers carry the sequence the store committed them in; each
# profile's window has an origin (its first digest's start) and a mark up to which papers that
# left it undelivered have been recorded as expired.
_MIGRATE_WINDOW = """
        ALTER TABLE papers ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        UPDATE papers SET seq = rowid;
        CREATE INDEX papers_seq ON papers(seq);
        CREATE TABLE windows (
            profile TEXT PRIMARY KEY,
            origin TEXT NOT NULL,
            expired_until TEXT NOT NULL
        );
        CREATE TABLE expired (
            profile TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers(key),
            expired_at TEXT NOT NULL,
            PRIMARY KEY (profile, paper_key)
        );
"""

# Per-recipient delivery state, and outbox statuses for digests held back (ambiguous: maybe
# delivered; partial: some recipients still to retry) or given up while bound (undeliverable).
# SQLite cannot widen a CHECK constraint in place: the outbox table is rebuilt (its columns
# named, so this does not depend on its position among the migrations; `migrate` runs it with
# foreign keys off, as SQLite's procedure for a table rebuild asks).
_MIGRATE_RECIPIENTS = """
        CREATE TABLE outbox_rebuilt (
            id INTEGER PRIMARY KEY,
            profile TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'ambiguous', 'partial', 'sent',
                                                   'failed', 'undeliverable')),
            created_at TEXT NOT NULL,
            cutoff TEXT NOT NULL,
            recipients TEXT NOT NULL,
            subject TEXT NOT NULL,
            raw BLOB NOT NULL,
            paper_count INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            sent_at TEXT
        );
        INSERT INTO outbox_rebuilt (id, profile, message_id, status, created_at, cutoff,
                                    recipients, subject, raw, paper_count, attempts,
                                    last_error, sent_at)
            SELECT id, profile, message_id, status, created_at, cutoff, recipients, subject,
                   raw, paper_count, attempts, last_error, sent_at FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_rebuilt RENAME TO outbox;
        CREATE INDEX outbox_profile_status ON outbox(profile, status);
        CREATE TABLE outbox_recipients (
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            address TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'ambiguous', 'sent', 'refused',
                                                   'abandoned')),
            attempts INTEGER NOT NULL DEFAULT 0,
            ambiguous_attempts INTEGER NOT NULL DEFAULT 0,
            last_reply TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (outbox_id, address)
        );
"""

# MIGRATIONS[i] takes a database from schema version i to i + 1. Never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    _MIGRATE_1,
    _MIGRATE_2,
    _MIGRATE_3,
    _MIGRATE_WINDOW,
    _MIGRATE_RECIPIENTS,
)
SCHEMA_VERSION = len(MIGRATIONS)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """A profile's window bookkeeping: where its first window began, and up to when papers
    that left the window undelivered have been recorded as expired."""

    origin: datetime
    expired_until: datetime


OutboxStatus = Literal["pending", "ambiguous", "partial", "sent", "failed", "undeliverable"]
RecipientStatus = Literal["pending", "ambiguous", "sent", "refused", "abandoned"]


def _sql_list(values: Iterable[str]) -> str:
    """Constant status names as an SQL list, `('a', 'b')` (never user input)."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


# Outbox rows whose papers are reserved: never planned into another digest. A failed row (no
# recipient has it, none may have) releases its papers; a sent row's are in `deliveries`.
RESERVED_STATUSES: tuple[OutboxStatus, ...] = ("pending", "ambiguous", "partial", "undeliverable")
_RESERVED = _sql_list(RESERVED_STATUSES)
# Outbox rows that still need work: retried, with the same bytes, at every send.
RETRY_STATUSES: tuple[OutboxStatus, ...] = ("pending", "ambiguous", "partial")
_RETRY = _sql_list(RETRY_STATUSES)
# Outbox rows whose papers are released: candidates again for the next digest, whatever their
# age (the window may have moved past them while the digest waited in the outbox).
RELEASED_STATUSES: tuple[OutboxStatus, ...] = ("failed",)
_RELEASED = _sql_list(RELEASED_STATUSES)
# Recipients still to try: never tried, refused for now (4xx), or the last try was ambiguous.
OPEN_RECIPIENT_STATUSES: tuple[RecipientStatus, ...] = ("pending", "ambiguous")
_OPEN = _sql_list(OPEN_RECIPIENT_STATUSES)


@dataclass(frozen=True, slots=True)
class RecipientState:
    """Where one recipient of an outbox row stands."""

    address: str
    status: RecipientStatus
    attempts: int = 0
    ambiguous_attempts: int = 0  # tries that ended in doubt: they may have it
    last_reply: str = ""


def outbox_status(recipients: Iterable[RecipientState], *, give_up: bool) -> OutboxStatus:
    """An outbox row's status from its recipients (`give_up`: no more tries for the open ones).

    A row that any recipient has, or may have, stays bound to its Message-ID: it ends as sent
    (someone has it) or undeliverable (someone may), never failed, so its papers are never put
    into another message. Only a row nobody has nor may have ends failed.
    """
    states = list(recipients)
    has = any(r.status == "sent" for r in states)
    maybe = any(r.ambiguous_attempts > 0 for r in states)
    if not give_up and any(r.status in OPEN_RECIPIENT_STATUSES for r in states):
        if any(r.status == "ambiguous" for r in states) or (maybe and not has):
            return "ambiguous"
        return "partial" if has else "pending"
    if has:
        return "sent"
    return "undeliverable" if maybe else "failed"


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What one batch of listings did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One rendered digest waiting for, or past, delivery."""

    id: int
    profile: str
    message_id: str
    status: OutboxStatus
    created_at: datetime
    cutoff: datetime
    recipients: tuple[str, ...]
    subject: str
    raw: bytes
    paper_count: int
    attempts: int
    last_error: str
    sent_at: datetime | None


def merge_papers(old: Paper, new: Paper) -> Paper:
    """Enrich the stored paper with a later record of the same paper; never lose information.

    A newer arXiv version replaces title, abstract, authors and categories. Otherwise later
    sources only fill what is missing (a complete author list replaces a truncated one) and add
    their signals (upvotes, code links) to `extra`.
    """
    if new.version > old.version:
        old = replace(
            old,
            title=new.title or old.title,
            abstract=new.abstract or old.abstract,
            authors=new.authors or old.authors,
            authors_truncated=new.authors_truncated if new.authors else old.authors_truncated,
            version=new.version,
        )
    better_authors = bool(new.authors) and (
        not old.authors or (old.authors_truncated and len(new.authors) > len(old.authors))
    )
    extra = dict(old.extra)
    extra.update({k: v for k, v in new.extra if v is not None})
    return replace(
        old,
        abstract=old.abstract or new.abstract,
        authors=new.authors if better_authors else old.authors,
        authors_truncated=new.authors_truncated if better_authors else old.authors_truncated,
        categories=tuple(dict.fromkeys(old.categories + new.categories)),
        published=old.published or new.published,
        url=old.url or new.url,
        arxiv_id=old.arxiv_id or new.arxiv_id,
        version=max(old.version, new.version),
        doi=old.doi or new.doi,
        listing_id=old.listing_id or new.listing_id,
        extra=tuple(sorted(extra.items())),
        sources=tuple(
            dict.fromkeys(old.sources + new.sources + ((new.source,) if new.source else ()))
        ),
    )


_DECODED_LIMIT = 10_000  # decoded papers a store keeps (a few days of new papers)
_BATCH = 500  # papers looked up together; also under SQLite's limit of bound parameters
_PAPER_COLUMNS = (
    *("key", "arxiv_id", "version", "doi", "title", "abstract", "authors", "authors_truncated"),
    *("categories", "published", "url", "source", "sources", "listing_id", "extra"),
    *("first_seen", "updated_at"),
)
# A new paper also gets the next commit sequence number (`seq`, appended to its row).
_INSERT_PAPER = "INSERT INTO papers ({}, seq) VALUES ({}, ?)".format(
    ", ".join(_PAPER_COLUMNS), ", ".join("?" * len(_PAPER_COLUMNS))
)
_UPDATE_PAPER = "UPDATE papers SET {} WHERE key = ?".format(
    ", ".join(f"{c} = ?" for c in _PAPER_COLUMNS if c not in ("key", "first_seen"))
)


def _batches(items: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    """`items` in lists of at most `size`, read lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class KnownPapers:
    """Stored papers by alias for one batch, kept current as the batch is written, so papers
    that meet inside a batch merge as they would one by one."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}  # alias -> paper key
        self._papers: dict[str, Paper] = {}  # paper key -> the paper as stored now

    def add(self, alias: str, paper: Paper) -> None:
        """Note a stored paper under `alias`."""
        self._keys[alias] = paper.key
        self._papers.setdefault(paper.key, paper)

    def get(self, alias: str) -> Paper | None:
        """The stored paper this alias names, if any."""
        key = self._keys.get(alias)
        return None if key is None else self._papers[key]

    def remember(self, stored: Paper, keys: tuple[str, ...]) -> None:
        """After a write: `stored` is the paper's current state; new aliases now name it (an
        alias already taken keeps its paper, as INSERT OR IGNORE does)."""
        self._papers[stored.key] = stored
        for alias in keys:
            self._keys.setdefault(alias, stored.key)


def _merged(
    paper: Paper, keys: tuple[str, ...], existing: Paper | None, now: datetime
) -> tuple[str, Paper]:
    """A listing as a new stored paper, or merged into the stored one: outcome and result."""
    sources = paper.sources or ((paper.source,) if paper.source else ())
    if existing is None:
        return "new", replace(paper, key=keys[0], first_seen=now, sources=sources)
    if sources != paper.sources:
        paper = replace(paper, sources=sources)
    merged = merge_papers(existing, paper)
    return ("unchanged", existing) if merged == existing else ("updated", merged)


class BatchWrites:
    """What a batch changes, as final states: a paper met twice in a batch is written once."""

    def __init__(self) -> None:
        self._new: dict[str, Paper] = {}
        self._updated: dict[str, Paper] = {}
        self._authors_before: dict[str, tuple[str, ...]] = {}
        self.aliases: list[tuple[str, str]] = []

    def note(self, stored: Paper, keys: tuple[str, ...], existing: Paper | None) -> None:
        """Record the state `stored` reached and the aliases it is known by."""
        self.aliases.extend((alias, stored.key) for alias in keys)
        if existing is None or stored.key in self._new:
            self._new[stored.key] = stored
        elif stored is not existing or stored.key in self._updated:
            self._authors_before.setdefault(stored.key, existing.authors)
            self._updated[stored.key] = stored

    @property
    def new(self) -> list[Paper]:
        """Papers the batch adds, in their final state."""
        return list(self._new.values())

    @property
    def updated(self) -> list[Paper]:
        """Stored papers the batch changes, in their final state."""
        return list(self._updated.values())

    def authors_changed(self, paper: Paper) -> bool:
        """True when an updated paper's authors differ from what was stored before the batch."""
        return paper.authors != self._authors_before[paper.key]


def _update_row(paper: Paper, now: datetime) -> list[Any]:
    row = _paper_row(paper, now)
    del row["key"], row["first_seen"]
    return [*row.values(), paper.key]


def _find_existing(paper: Paper, keys: tuple[str, ...], known: KnownPapers) -> Paper | None:
    """The stored paper `paper` is another listing of, found by its first known alias."""
    for alias in keys:
        found = known.get(alias)
        if found is None:
            continue
        # Same title but two different arXiv ids: two papers, not one.
        ids = (found.arxiv_id, paper.arxiv_id)
        if alias.startswith("title:") and all(ids) and ids[0] != ids[1]:
            return None
        return found
    return None


def _paper_row(paper: Paper, now: datetime) -> dict[str, Any]:
    return {
        "key": paper.key,
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "doi": paper.doi,
        "title": paper.title,
        "abstract": paper.abstract,
        "authors": json.dumps(list(paper.authors), ensure_ascii=False),
        "authors_truncated": int(paper.authors_truncated),
        "categories": json.dumps(list(paper.categories)),
        "published": paper.published.isoformat() if paper.published else None,
        "url": paper.url,
        "source": paper.source,
        "sources": json.dumps(list(paper.sources), ensure_ascii=False),
        "listing_id": paper.listing_id,
        "extra": json.dumps(dict(paper.extra), ensure_ascii=False, sort_keys=True),
        "first_seen": _iso(paper.first_seen or now),
        "updated_at": _iso(now),
    }


def _paper_from_row(row: sqlite3.Row | dict[str, Any]) -> Paper:
    return Paper(
        key=row["key"],
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        abstract=row["abstract"],
        categories=tuple(json.loads(row["categories"])),
        published=date.fromisoformat(row["published"]) if row["published"] else None,
        url=row["url"],
        source=row["source"],
        listing_id=row["listing_id"],
        arxiv_id=row["arxiv_id"],
        version=row["version"],
        doi=row["doi"],
        authors_truncated=bool(row["authors_truncated"]),
        extra=tuple(sorted(json.loads(row["extra"]).items())),
        sources=tuple(json.loads(row["sources"])),
        first_seen=_from_iso(row["first_seen"]),
    )


# What a damaged database raises while it is read: sqlite's own errors, and bad stored values
# (invalid UTF-8, broken JSON, unreadable dates: UnicodeDecodeError and JSONDecodeError are
# ValueErrors too).
_STORE_FAULTS = (sqlite3.Error, ValueError)
_RECOVER_HINT = "run `digest doctor` for how to recover"


def store_fault(path: Path | None, exc: BaseException) -> StoreError:
    """One line naming the database and what went wrong, from a low-level error."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if len(detail) > 160:  # sqlite quotes the undecodable text itself
        detail = detail[:157] + "..."
    return StoreError(f"{path or ':memory:'}: database error: {detail}; {_RECOVER_HINT}")


_T = TypeVar("_T")
_S = TypeVar("_S")


def _guarded(path: Path | None, items: Iterator[_T]) -> Iterator[_T]:
    """`items`, with errors raised while iterating translated like the call's own."""
    try:
        yield from items
    except _STORE_FAULTS as exc:
        raise store_fault(path, exc) from exc


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except _STORE_FAULTS as exc:
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


class _WindowRule:
    """The window rule for several profiles at once, from their sets read once: which of them
    a paper is a candidate for, by its key and first-seen stamp (ISO text, as stored)."""

    def __init__(self, starts: Mapping[str, str]) -> None:
        ordered = sorted(starts.items(), key=lambda item: item[1])
        self._starts = [start for _, start in ordered]
        # The profiles whose window has begun by the i-th start: a prefix of `ordered`.
        self._begun = [frozenset(name for name, _ in ordered[:i]) for i in range(len(ordered) + 1)]
        self.held: dict[str, set[str]] = {}  # key -> profiles that have it or are sending it
        self.released: dict[str, set[str]] = {}  # key -> profiles whose failed digest held it

    def wanted_by(self, key: str, first_seen: str) -> frozenset[str]:
        """The profiles this paper is a candidate for."""
        wanted = self._begun[bisect.bisect_right(self._starts, first_seen)]
        released, held = self.released.get(key), self.held.get(key)
        if released:
            wanted = wanted | released
        return wanted - held if held else wanted


@translate_store_errors
class Store:
    """The one object that reads and writes the database. Open with `Store.open(path)`."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path
        # Candidates already decoded, by key, with the `updated_at` they were read at: one pass
        # decodes each candidate once, and `run` plans each send minute in its own pass over
        # much the same new papers (decoding is most of a read).
        self._decoded: dict[str, tuple[str, Paper]] = {}

    def _paper(self, row: sqlite3.Row) -> Paper:
        """The Paper of a candidate row, decoded once while the row does not change."""
        known = self._decoded.get(row["key"])
        if known is not None and known[0] == row["updated_at"]:
            return known[1]
        if len(self._decoded) >= _DECODED_LIMIT:
            self._decoded.clear()
        paper = _paper_from_row(row)
        self._decoded[row["key"]] = (row["updated_at"], paper)
        return paper

    @classmethod
    def open(cls, path: Path | str | None, *, read_only: bool = False) -> Store:
        """Open (creating and migrating as needed) the database at `path`; None means memory.

        `read_only` opens an existing database as it is (sqlite `mode=ro`): nothing is created,
        migrated or written; a missing file is a StoreError saying how to make one.
        """
        if read_only and path is not None:
            return cls._open_read_only(Path(path))
        try:
            if path is None:
                db = sqlite_utils.Database(memory=True)
            else:
                path = Path(path)
                path.parent.mkdir(parents=True, exist_ok=True)
                # The scheduler runs jobs on a worker thread (one at a time).
                conn = sqlite3.connect(path, check_same_thread=False)
                db = sqlite_utils.Database(conn)
                db.enable_wal()
            db.conn.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA foreign_keys = ON")
            # 32 MB of page cache (the default is 2 MB): a year of papers keeps its indexes hot.
            db.execute("PRAGMA cache_size = -32000")
            store = cls(db, Path(path) if path is not None else None)
            store.migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open database: {exc}; {_RECOVER_HINT}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the database: {exc.strerror or exc}") from exc
        return store

    @classmethod
    def _open_read_only(cls, path: Path) -> Store:
        if not path.is_file():
            raise StoreError(
                f"{path}: no database yet; run `digest fetch` to create it (or pass --db)"
            )
        try:
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            store = cls(sqlite_utils.Database(conn), path)
            version = store.schema_version
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open database: {exc}; {_RECOVER_HINT}") from exc
        if version != SCHEMA_VERSION:
            store.close()
            newer = "upgrade digest" if version > SCHEMA_VERSION else "run `digest fetch` first"
            raise StoreError(
                f"{path}: database schema {version}, this digest reads {SCHEMA_VERSION}; {newer}"
            )
        return store

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

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
            try:
                yield
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        except sqlite3.DatabaseError as exc:
            raise store_fault(self.path, exc) from exc

    # --- papers -------------------------------------------------------------------------------

    def upsert_papers(self, papers: Iterable[Paper], now: datetime) -> UpsertCounts:
        """Merge a batch of listings into the store in one transaction."""
        with self.transaction():
            return self._merge_all(papers, now, only_existing=False)

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

    def _merge_all(
        self, papers: Iterable[Paper], now: datetime, *, only_existing: bool
    ) -> UpsertCounts:
        counts = {"new": 0, "updated": 0, "unchanged": 0}
        for batch in _batches(papers, _BATCH):
            keyed = [(paper, paper.identity_keys) for paper in batch]  # fingerprints hash once
            known = self._known_papers({alias for _, keys in keyed for alias in keys})
            writes = BatchWrites()
            for paper, keys in keyed:
                if not keys:
                    counts["unchanged"] += 1  # nothing to identify it by: no title, id or DOI
                    continue
                existing = _find_existing(paper, keys, known)
                if existing is None and only_existing:
                    continue
                outcome, stored = _merged(paper, keys, existing, now)
                counts[outcome] += 1
                known.remember(stored, keys)
                writes.note(stored, keys, existing)
            self._write(writes, now)
        return UpsertCounts(counts["new"], counts["updated"], counts["unchanged"])

    def _known_papers(self, aliases: set[str]) -> KnownPapers:
        """The stored papers known by any of `aliases`, fetched in a few queries, not one each."""
        known = KnownPapers()
        ordered = sorted(aliases)
        for start in range(0, len(ordered), _BATCH):
            chunk = ordered[start : start + _BATCH]
            rows = self.db.conn.execute(
                "SELECT k.alias AS alias, p.* FROM paper_keys k JOIN papers p"
                f" ON p.key = k.paper_key WHERE k.alias IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                known.add(row["alias"], _paper_from_row(row))
        return known

    def validators(self, source: str) -> dict[str, Validators]:
        """The conditional-GET validators remembered for each URL of `source`."""
        rows = self.db.execute(
            "SELECT url, etag, last_modified FROM http_validators WHERE source = ?", [source]
        )
        return {row[0]: Validators(row[1], row[2]) for row in rows}

    def _save_validators(self, source: str, validators: Mapping[str, Validators]) -> None:
        self.db.conn.executemany(
            "INSERT INTO http_validators (source, url, etag, last_modified)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (source, url) DO UPDATE SET"
            " etag = excluded.etag, last_modified = excluded.last_modified",
            [(source, url, v.etag, v.last_modified) for url, v in validators.items()],
        )

    def _write(self, writes: BatchWrites, now: datetime) -> None:
        """Write a batch's final states in a few statements (the caller's transaction)."""
        for paper in (*writes.new, *writes.updated):
            self._decoded.pop(paper.key, None)
        conn = self.db.conn
        # Writers hold the write lock (BEGIN IMMEDIATE), so numbers follow the commit order.
        last_seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM papers").fetchone()[0])
        conn.executemany(
            _INSERT_PAPER,
            [
                [*_paper_row(p, now).values(), last_seq + i]
                for i, p in enumerate(writes.new, start=1)
            ],
        )
        conn.executemany(_UPDATE_PAPER, [_update_row(p, now) for p in writes.updated])
        conn.executemany(
            "INSERT OR IGNORE INTO paper_keys (alias, paper_key) VALUES (?, ?)", writes.aliases
        )
        replaced = [p for p in writes.updated if writes.authors_changed(p)]
        conn.executemany("DELETE FROM authors WHERE paper_key = ?", [[p.key] for p in replaced])
        conn.executemany(
            "INSERT INTO authors (paper_key, position, name, folded) VALUES (?, ?, ?, ?)",
            [
                (p.key, i, name, fold(name))
                for p in (*writes.new, *replaced)
                for i, name in enumerate(p.authors)
            ],
        )

    def get_paper(self, key_or_alias: str) -> Paper | None:
        """The stored paper known by this key or alias (`arxiv:…`, `doi:…`, `title:…`)."""
        row = self.db.execute(
            "SELECT p.* FROM papers p LEFT JOIN paper_keys k ON k.paper_key = p.key "
            "WHERE p.key = ? OR k.alias = ? LIMIT 1",
            [key_or_alias, key_or_alias],
        ).fetchone()
        return _paper_from_row(row) if row else None

    def count_papers(self) -> int:
        """How many distinct papers are stored."""
        return int(self.db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def papers_seen_since(self, since: datetime) -> Iterator[Paper]:
        """Papers first stored at or after `since`, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM papers WHERE first_seen >= ? ORDER BY first_seen, key", [_iso(since)]
        )
        return (_paper_from_row(row) for row in rows)

    def candidates(self, profile: str, since: datetime) -> Iterator[Paper]:
        """The window rule for one profile: `candidates_for({profile: since})`'s papers."""
        return (paper for paper, _ in self.candidates_for({profile: since}))

    def candidates_for(
        self, windows: Mapping[str, datetime]
    ) -> Iterator[tuple[Paper, frozenset[str]]]:
        """The window rule for several profiles in one query: each paper that is a candidate
        for any of them, decoded once, with the names of the profiles it is a candidate for, in
        the order the store committed them. `windows` maps each profile to its window start.

        A paper is a candidate for a profile when it was first stored at or after that
        profile's start, or is held by one of its failed outbox rows (`RELEASED_STATUSES`: a
        candidate again whatever its age), and the profile has not received it: not delivered
        to it, not recorded as expired for it, not held by one of its outbox rows still on its
        way (`RESERVED_STATUSES`). Each profile's sets are read once, for these papers only,
        and apply to it alone.
        """
        if not windows:
            return
        starts = {name: _iso(since) for name, since in windows.items()}
        names = list(starts)
        due = ", ".join("?" * len(names))
        scope = f"""
            WITH released(profile, key) AS (
                SELECT o.profile, op.paper_key FROM outbox_papers op
                JOIN outbox o ON o.id = op.outbox_id
                WHERE o.status IN {_RELEASED} AND o.profile IN ({due})),
            scope(key) AS (SELECT key FROM papers WHERE first_seen >= ?
                           UNION SELECT key FROM released)
        """
        arguments = [*names, min(starts.values())]
        rule = _WindowRule(starts)
        for profile, key in self.db.execute(
            scope
            + f"""
            SELECT profile, paper_key FROM deliveries
            WHERE profile IN ({due}) AND paper_key IN scope
            UNION ALL
            SELECT profile, paper_key FROM expired
            WHERE profile IN ({due}) AND paper_key IN scope
            UNION ALL
            SELECT o.profile, op.paper_key FROM outbox_papers op
            JOIN outbox o ON o.id = op.outbox_id
            WHERE o.status IN {_RESERVED} AND o.profile IN ({due})
            """,
            [*arguments, *names, *names, *names],
        ):
            rule.held.setdefault(key, set()).add(profile)
        for profile, key in self.db.execute(scope + "SELECT profile, key FROM released", arguments):
            rule.released.setdefault(key, set()).add(profile)
        rows = self.db.execute(
            scope + "SELECT p.* FROM papers p WHERE p.key IN scope ORDER BY p.seq, p.key",
            arguments,
        )
        for row in rows:
            wanted = rule.wanted_by(row["key"], row["first_seen"])
            if wanted:
                yield self._paper(row), wanted

    def leaving_window(self, profile: str, start: datetime, end: datetime) -> Iterator[Paper]:
        """Papers first stored in [`start`, `end`) that `profile` has not received and that are
        not held by its outbox: those leaving its window undelivered, if it wants them."""
        rows = self.db.execute(
            f"""
            SELECT p.* FROM papers p
            WHERE p.first_seen >= :start AND p.first_seen < :end
              AND NOT EXISTS (SELECT 1 FROM deliveries d
                              WHERE d.profile = :profile AND d.paper_key = p.key)
              AND NOT EXISTS (SELECT 1 FROM expired e
                              WHERE e.profile = :profile AND e.paper_key = p.key)
              AND NOT EXISTS (SELECT 1 FROM outbox_papers op JOIN outbox o ON o.id = op.outbox_id
                              WHERE o.profile = :profile AND o.status IN {_RESERVED}
                                AND op.paper_key = p.key)
            ORDER BY p.seq, p.key
            """,
            {"start": _iso(start), "end": _iso(end), "profile": profile},
        )
        return (_paper_from_row(row) for row in rows)

    def window(self, profile: str) -> Window | None:
        """The profile's window bookkeeping, once its first digest was planned for sending."""
        row = self.db.execute(
            "SELECT origin, expired_until FROM windows WHERE profile = ?", [profile]
        ).fetchone()
        if row is None:
            return None
        return Window(_from_iso(row[0]) or EPOCH, _from_iso(row[1]) or EPOCH)

    def record_expired(
        self, profile: str, keys: Iterable[str], *, origin: datetime, until: datetime, now: datetime
    ) -> None:
        """Record papers that left the profile's window undelivered, and that every paper first
        stored before `until` has been looked at (`origin`: where the profile's first window
        began; kept once set)."""
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO expired (profile, paper_key, expired_at) VALUES (?, ?, ?)",
                [(profile, key, _iso(now)) for key in keys],
            )
            self.db.execute(
                "INSERT INTO windows (profile, origin, expired_until) VALUES (?, ?, ?)"
                " ON CONFLICT (profile) DO UPDATE SET"
                " expired_until = max(expired_until, excluded.expired_until)",
                [profile, _iso(origin), _iso(until)],
            )

    def expired_counts(self) -> dict[str, int]:
        """How many papers expired undelivered, per profile."""
        rows = self.db.execute(
            "SELECT profile, count(*) FROM expired GROUP BY profile ORDER BY profile"
        )
        return {row[0]: int(row[1]) for row in rows}

    def delivered_keys(self, profile: str) -> set[str]:
        """Keys of every paper delivered to `profile`."""
        rows = self.db.execute("SELECT paper_key FROM deliveries WHERE profile = ?", [profile])
        return {row[0] for row in rows}

    # --- fetch state --------------------------------------------------------------------------

    def record_fetch(self, source: str, now: datetime, error: str = "") -> None:
        """Record one fetch attempt of `source`: a success, or the error it ended with."""
        with self.transaction():
            self._record_fetch(source, now, error)

    def _record_fetch(self, source: str, now: datetime, error: str) -> None:
        state = self.fetch_state(source)
        failing_since = None if not error else (state.failing_since if state else None) or now
        self.db.execute(
            "INSERT INTO fetch_state (source, last_attempt, last_success, failing_since,"
            " last_error) VALUES (:source, :attempt, :success, :failing, :error)"
            " ON CONFLICT (source) DO UPDATE SET last_attempt = :attempt,"
            " last_success = :success, failing_since = :failing, last_error = :error",
            {
                "source": source,
                "attempt": _iso(now),
                "success": _iso(now) if not error else _opt_iso(state, "last_success"),
                "failing": _iso(failing_since) if failing_since else None,
                "error": error,
            },
        )

    def fetch_state(self, source: str) -> SourceStatus | None:
        """The last recorded fetch outcome of `source`."""
        row = self.db.execute("SELECT * FROM fetch_state WHERE source = ?", [source]).fetchone()
        return _status_from_row(row) if row else None

    def failing_sources(self) -> tuple[SourceStatus, ...]:
        """Sources whose last fetch failed, for the digest footer."""
        rows = self.db.execute("SELECT * FROM fetch_state WHERE last_error != '' ORDER BY source")
        return tuple(_status_from_row(row) for row in rows)

    # --- outbox and deliveries ---------------------------------------------------------------

    def add_outbox(
        self,
        *,
        profile: str,
        message_id: str,
        recipients: tuple[str, ...],
        subject: str,
        raw: bytes,
        paper_keys: tuple[str, ...],
        cutoff: datetime,
        now: datetime,
    ) -> int:
        """Queue a rendered digest; its papers are reserved until it is sent or fails."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO outbox (profile, message_id, status, created_at, cutoff, recipients,"
                " subject, raw, paper_count) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                [
                    profile,
                    message_id,
                    _iso(now),
                    _iso(cutoff),
                    json.dumps(list(recipients)),
                    subject,
                    raw,
                    len(paper_keys),
                ],
            )
            outbox_id = int(cursor.lastrowid or 0)
            self.db.conn.executemany(
                "INSERT INTO outbox_papers (outbox_id, paper_key) VALUES (?, ?)",
                [(outbox_id, key) for key in paper_keys],
            )
            self._add_recipients(outbox_id, recipients)
        return outbox_id

    def _add_recipients(self, outbox_id: int, recipients: Iterable[str]) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO outbox_recipients (outbox_id, address, status)"
            " VALUES (?, ?, 'pending')",
            [(outbox_id, address) for address in recipients],
        )

    def outbox_recipients(self, outbox_id: int) -> list[RecipientState]:
        """Where each recipient of an outbox row stands, in the row's recipient order.

        A row queued before recipients were tracked gets its rows now: still to try while the
        row is open; for a finished row, what its status says (sent to all, or to none).
        """
        entry = self.outbox_entry(outbox_id)
        rows = self._recipient_rows(outbox_id)
        if not rows:
            known: dict[str, RecipientStatus] = {"sent": "sent", "failed": "abandoned"}
            with self.transaction():
                self._add_recipients(outbox_id, entry.recipients)
                self.db.execute(
                    "UPDATE outbox_recipients SET status = ? WHERE outbox_id = ?",
                    [known.get(entry.status, "pending"), outbox_id],
                )
            rows = self._recipient_rows(outbox_id)
        order = {address: n for n, address in enumerate(entry.recipients)}
        return sorted(rows, key=lambda r: order.get(r.address, len(order)))

    def _recipient_rows(self, outbox_id: int) -> list[RecipientState]:
        rows = self.db.execute(
            "SELECT address, status, attempts, ambiguous_attempts, last_reply"
            " FROM outbox_recipients WHERE outbox_id = ?",
            [outbox_id],
        ).fetchall()
        return [RecipientState(*row) for row in rows]

    def record_attempt(
        self,
        outbox_id: int,
        now: datetime,
        *,
        tried: Mapping[str, tuple[RecipientStatus, str]],
        error: str,
        give_up: bool = False,
    ) -> OutboxEntry:
        """Record one delivery attempt of an outbox row, atomically, and return the row.

        `tried` is what happened to each recipient tried (status, server reply); `error` the
        attempt's error ('' when the server accepted the message). `give_up` ends the row:
        its open recipients are abandoned. The row's status follows from its recipients
        (`outbox_status`); once any recipient has the message, its papers are delivered.
        """
        with self.transaction():
            for address, (outcome, reply) in tried.items():
                self.db.execute(
                    "UPDATE outbox_recipients SET status = ?, attempts = attempts + 1,"
                    " ambiguous_attempts = ambiguous_attempts + ?, last_reply = ?"
                    " WHERE outbox_id = ? AND address = ?",
                    [outcome, int(outcome == "ambiguous"), reply, outbox_id, address],
                )
            if give_up:
                self.db.execute(
                    "UPDATE outbox_recipients SET status = 'abandoned'"
                    f" WHERE outbox_id = ? AND status IN {_OPEN}",
                    [outbox_id],
                )
            status = outbox_status(self._recipient_rows(outbox_id), give_up=give_up)
            delivered = any(outcome == "sent" for outcome, _ in tried.values())
            self.db.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1,"
                " last_error = CASE WHEN ? != '' THEN ? ELSE last_error END,"
                " sent_at = CASE WHEN ? THEN coalesce(sent_at, ?) ELSE sent_at END"
                " WHERE id = ?",
                [status, error, error, int(delivered), _iso(now), outbox_id],
            )
            if delivered:
                self.db.execute(
                    "INSERT OR IGNORE INTO deliveries (profile, paper_key, outbox_id, delivered_at)"
                    " SELECT o.profile, op.paper_key, o.id, ? FROM outbox_papers op"
                    " JOIN outbox o ON o.id = op.outbox_id WHERE o.id = ?",
                    [_iso(now), outbox_id],
                )
        return self.outbox_entry(outbox_id)

    def outbox(self, profile: str | None = None, status: str | None = None) -> list[OutboxEntry]:
        """Outbox rows, oldest first, optionally of one profile and/or status."""
        sql = (
            "SELECT * FROM outbox"
            " WHERE (:p IS NULL OR profile = :p) AND (:s IS NULL OR status = :s)"
        )
        rows = self.db.execute(sql + " ORDER BY id", {"p": profile, "s": status}).fetchall()
        return [_outbox_from_row(row) for row in rows]

    def outbox_to_retry(self, profile: str) -> list[OutboxEntry]:
        """The profile's outbox rows that still need work (RETRY_STATUSES), oldest first."""
        rows = self.db.execute(
            f"SELECT * FROM outbox WHERE profile = ? AND status IN {_RETRY} ORDER BY id",
            [profile],
        ).fetchall()
        return [_outbox_from_row(row) for row in rows]

    def outbox_entry(self, outbox_id: int) -> OutboxEntry:
        """One outbox row by id."""
        row = self.db.execute("SELECT * FROM outbox WHERE id = ?", [outbox_id]).fetchone()
        if row is None:
            raise StoreError(f"{self.path or ':memory:'}: no outbox row {outbox_id}")
        return _outbox_from_row(row)

    def record_send_run(self, profile: str, now: datetime, outcome: str) -> None:
        """Remember that the profile's send job completed (`outcome`: sent, or why not)."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO send_runs (profile, last_run, outcome) VALUES (?, ?, ?)"
                " ON CONFLICT (profile) DO UPDATE SET last_run = excluded.last_run,"
                " outcome = excluded.outcome",
                [profile, _iso(now), outcome],
            )

    def last_send_run(self, profile: str) -> datetime | None:
        """When the profile's send job last completed, if ever."""
        row = self.db.execute(
            "SELECT last_run FROM send_runs WHERE profile = ?", [profile]
        ).fetchone()
        return _from_iso(row[0]) if row else None

    def integrity_ok(self) -> bool:
        """True when `PRAGMA integrity_check` reports ok."""
        return bool(self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    def quick_check(self) -> str:
        """`ok`, or the first problems `PRAGMA quick_check` finds (the b-tree structure, not
        whether stored values decode), or the error that stopped it."""
        try:
            rows = self.db.execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return "; ".join(str(row[0]) for row in rows) or "ok"

    def check_readable(self) -> None:
        """Read and decode every row of every table (StoreError at the first that fails): the
        damage quick_check cannot see, such as a flipped byte inside a stored value."""
        for row in self.db.execute("SELECT * FROM papers"):
            _paper_from_row(row)
        for row in self.db.execute("SELECT * FROM outbox"):
            _outbox_from_row(row)
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
                f"not writing to it: {_RECOVER_HINT}"
            )


def _opt_iso(state: SourceStatus | None, attribute: str) -> str | None:
    value = getattr(state, attribute) if state else None
    return _iso(value) if value else None


def _status_from_row(row: sqlite3.Row) -> SourceStatus:
    return SourceStatus(
        name=row["source"],
        last_success=_from_iso(row["last_success"]),
        last_error=row["last_error"],
        failing_since=_from_iso(row["failing_since"]),
    )


def _outbox_from_row(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(
        id=row["id"],
        profile=row["profile"],
        message_id=row["message_id"],
        status=row["status"],
        created_at=_from_iso(row["created_at"]) or datetime.min,
        cutoff=_from_iso(row["cutoff"]) or datetime.min,
        recipients=tuple(json.loads(row["recipients"])),
        subject=row["subject"],
        raw=bytes(row["raw"]),
        paper_count=row["paper_count"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        sent_at=_from_iso(row["sent_at"]),
    )


@contextlib.contextmanager
def exclusive_lock(db_path: Path, purpose: str) -> Iterator[None]:
    """Hold an exclusive lock beside the database, or raise LockedError at once."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockedError(
                f"{db_path}: {holder} is already using this database; refusing to start {purpose}"
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
