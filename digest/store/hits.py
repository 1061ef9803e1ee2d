"""Stored hits: the term book and each paper's ingest-time scan (`digest.match.hitscan`).

Two tables. `match_terms` numbers every term the instance's profiles have had (`number`, from
0, never reused; `digest.match.termbook`). `paper_hits` holds one row a paper: the scan's bytes,
a hash of the text it read (`text_hash`: a reader uses a scan only for the text it was made
from), the paper's `updated_at` when it was scanned (`stamp`: a paper updated since is scanned
again), how many of the book's terms the scan covers (`covered`: a term added later is scanned
over the papers that need it, on its own) and the paper's author keys (`names`,
`digest.match.authors.author_keys`; NULL in rows stored before schema 13, until the next
refresh adds them).

The store keeps bytes and numbers; what they mean is `digest.match`'s (the store does not
import it).

Example::

    store.add_terms([("kvcache", False, "2", "kvcache:2;kvcaches:2")])  # term 0
    store.write_hits([HitRow("arxiv:2401.00001", stamp, text_hash, 1, blob, names)])
    store.stored_hits(["arxiv:2401.00001"])
    # {"arxiv:2401.00001": StoredHits(text_hash, 1, blob, names)}
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import NamedTuple

from digest.models import Paper
from digest.store.base import StoreBase, select_in, translate_store_errors
from digest.store.rows import authors_from_text, iso

# A term as stored: its letters, whether it is a prefix, its word boundaries as text ("2,5"),
# its spellings as text (`digest.match.termbook.forms_text`).
TermRow = tuple[str, bool, str, str]


class StoredHits(NamedTuple):
    """A paper's stored scan: the hash of the text it read, how many book terms it covers, its
    bytes, and the paper's author keys (None when stored before they were)."""

    text_hash: str
    covered: int
    blob: bytes
    names: bytes | None = None


class ToScan(NamedTuple):
    """A paper whose stored scan is missing, stale or short of the book: what to scan."""

    paper: Paper  # its key, title, abstract and authors only: what a scan reads
    stamp: str  # the paper's updated_at: the new scan's stamp
    stored: StoredHits | None  # a current scan that covers less than the book, to extend
    seq: int  # where the paper stands in store order


class HitRow(NamedTuple):
    """One paper's scan to store."""

    paper_key: str
    stamp: str
    text_hash: str
    covered: int
    blob: bytes
    names: bytes  # the paper's author keys


@translate_store_errors
class HitStore(StoreBase):
    """The term book and stored hits (part of `Store`)."""

    def term_rows(self) -> list[TermRow]:
        """The term book, in number order."""
        rows = self.db.execute(
            "SELECT letters, prefix, boundaries, forms FROM match_terms ORDER BY number"
        )
        return [(str(row[0]), bool(row[1]), str(row[2]), str(row[3])) for row in rows]

    def count_terms(self) -> int:
        """How many terms the book holds."""
        return int(self.db.execute("SELECT count(*) FROM match_terms").fetchone()[0])

    def add_terms(self, terms: Sequence[TermRow]) -> None:
        """Append terms to the book, numbered after the last (the caller sends only new ones)."""
        with self.transaction():
            start = self.db.execute("SELECT count(*) FROM match_terms").fetchone()[0]
            self.db.conn.executemany(
                "INSERT INTO match_terms (number, letters, prefix, boundaries, forms)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (start + n, letters, int(prefix), cuts, forms)
                    for n, (letters, prefix, cuts, forms) in enumerate(terms)
                ],
            )

    def stored_hits(self, keys: Iterable[str]) -> dict[str, StoredHits]:
        """The stored scans of these papers (the reader checks each one's `text_hash`)."""
        rows = select_in(
            self.db.conn,
            "SELECT paper_key, text_hash, covered, hits, names FROM paper_hits"
            " WHERE paper_key IN ({marks})",
            keys,
        )
        return {str(row[0]): _stored(row[1], row[2], row[3], row[4]) for row in rows}

    def papers_to_scan(
        self, since: datetime, size: int, names_start: bytes, limit: int = 1_000
    ) -> Iterator[ToScan]:
        """The papers first stored at or after `since` whose stored scan is missing, stale
        (the paper was updated since) or covers fewer than `size` book terms, or whose author
        keys are missing or do not start with `names_start` (another layout's), in store order.

        Read `limit` at a time, each page after the last one's sequence, so the caller may
        write scans between pages (no cursor stays open over the rows it changes)."""
        after = -1
        while True:
            page = self._scan_page(since, size, names_start, after, limit)
            yield from page
            if len(page) < limit:
                return
            after = page[-1].seq

    def _scan_page(
        self, since: datetime, size: int, names_start: bytes, after: int, limit: int
    ) -> list[ToScan]:
        rows = self.db.execute(
            "SELECT p.key, p.title, p.abstract, p.authors, p.updated_at, p.seq,"
            " h.stamp AS hit_stamp, h.text_hash AS hit_hash,"
            " h.covered AS hit_covered, h.hits AS hit_blob, h.names AS hit_names"
            " FROM papers p LEFT JOIN paper_hits h ON h.paper_key = p.key"
            " WHERE p.first_seen >= ? AND p.seq > ? AND (h.paper_key IS NULL"
            " OR h.stamp != p.updated_at OR h.covered < ? OR h.names IS NULL"
            " OR substr(h.names, 1, ?) != ?) ORDER BY p.seq LIMIT ?",
            [iso(since), after, size, len(names_start), names_start, limit],
        )
        return [_to_scan(row) for row in rows]

    def write_hits(self, rows: Iterable[HitRow]) -> int:
        """Store papers' scans (replacing what they had), in one transaction; how many."""
        written = list(rows)
        with self.transaction():
            self.db.conn.executemany(
                "INSERT INTO paper_hits (paper_key, stamp, text_hash, covered, hits, names)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (paper_key) DO UPDATE SET"
                " stamp = excluded.stamp, text_hash = excluded.text_hash,"
                " covered = excluded.covered, hits = excluded.hits, names = excluded.names",
                written,
            )
        return len(written)

    def count_hit_rows(self) -> int:
        """How many papers have a stored scan (current or not)."""
        return int(self.db.execute("SELECT count(*) FROM paper_hits").fetchone()[0])


def _to_scan(row: sqlite3.Row) -> ToScan:
    """A row of `papers_to_scan`: the paper's text and authors (all a scan reads), and its
    stored scan if it is of this update."""
    stored = None
    if row["hit_stamp"] == row["updated_at"]:
        stored = _stored(row["hit_hash"], row["hit_covered"], row["hit_blob"], row["hit_names"])
    paper = Paper(
        str(row["key"]),
        str(row["title"]),
        authors=authors_from_text(row["authors"]),
        abstract=str(row["abstract"]),
    )
    return ToScan(paper, str(row["updated_at"]), stored, int(row["seq"]))


def _stored(text_hash: str, covered: int, blob: bytes, names: bytes | None) -> StoredHits:
    """A `paper_hits` row's scan, its author keys None where the row has none."""
    return StoredHits(
        str(text_hash), int(str(covered)), bytes(blob), None if names is None else bytes(names)
    )
