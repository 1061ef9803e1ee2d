"""Papers: merging listings into the store (the rules are `digest.store.merge`'s) and reading
stored papers back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from digest.models import Paper, fold
from digest.store.base import StoreBase, select_in, translate_store_errors
from digest.store.merge import (
    BatchWrites,
    KnownPapers,
    Outcome,
    UpsertCounts,
    batches,
    find_existing,
    merged,
)
from digest.store.rows import (
    INSERT_PAPER,
    UPDATE_PAPER,
    insert_row,
    iso,
    paper_from_row,
    papers_from_cursor,
    update_row,
)

_BATCH = 500  # papers looked up together; also under SQLite's limit of bound parameters


@translate_store_errors
class PaperStore(StoreBase):
    """Storing and reading papers (part of `Store`)."""

    def upsert_papers(self, papers: Iterable[Paper], now: datetime) -> UpsertCounts:
        """Merge a batch of listings into the store in one transaction."""
        with self.transaction():
            return self._merge_all(papers, now, only_existing=False)

    def _merge_all(
        self, papers: Iterable[Paper], now: datetime, *, only_existing: bool
    ) -> UpsertCounts:
        counts: dict[Outcome, int] = {"new": 0, "updated": 0, "unchanged": 0}
        for batch in batches(papers, _BATCH):
            self._merge_batch(batch, now, counts, only_existing=only_existing)
        return UpsertCounts(counts["new"], counts["updated"], counts["unchanged"])

    def _merge_batch(
        self, batch: list[Paper], now: datetime, counts: dict[Outcome, int], *, only_existing: bool
    ) -> None:
        """Merge one batch of listings, looked up together, counting each one's outcome; then
        write what the batch changed. `only_existing`: listings of unknown papers are skipped."""
        keyed = [(paper, paper.identity_keys) for paper in batch]  # fingerprints hash once
        known = self._known_papers(keyed)
        writes = BatchWrites()
        for paper, keys in keyed:
            if not keys:
                counts["unchanged"] += 1  # nothing to identify it by: no title, id or DOI
                continue
            existing = find_existing(paper, keys, known)
            if existing is None and only_existing:
                continue
            outcome, stored = merged(paper, keys, existing, now)
            counts[outcome] += 1
            known.remember(stored, keys)
            writes.note(stored, keys, existing)
        self._write(writes, now)

    def _known_papers(self, keyed: list[tuple[Paper, tuple[str, ...]]]) -> KnownPapers:
        """The stored papers known by any alias of the listings, fetched in a few queries, not
        one each."""
        known = KnownPapers()
        sql = (
            "SELECT k.alias AS alias, p.* FROM paper_keys k JOIN papers p"
            " ON p.key = k.paper_key WHERE k.alias IN ({marks})"
        )
        aliases = {alias for _, keys in keyed for alias in keys}
        for row in select_in(self.db.conn, sql, aliases):
            known.add(row["alias"], paper_from_row(row))
        return known

    def _write(self, writes: BatchWrites, now: datetime) -> None:
        """Write a batch's final states in a few statements (the caller's transaction)."""
        self._paper_writes += 1
        conn = self.db.conn
        # Writers hold the write lock (BEGIN IMMEDIATE), so numbers follow the commit order.
        last_seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM papers").fetchone()[0])
        conn.executemany(
            INSERT_PAPER,
            [insert_row(p, now, last_seq + i) for i, p in enumerate(writes.new, start=1)],
        )
        conn.executemany(UPDATE_PAPER, [update_row(p, now) for p in writes.updated])
        conn.executemany(
            "INSERT OR IGNORE INTO paper_keys (alias, paper_key) VALUES (?, ?)", writes.aliases
        )
        self._write_authors(writes)

    def _write_authors(self, writes: BatchWrites) -> None:
        """The author rows of the batch's new papers, and of updated ones whose authors changed
        (their old rows deleted first)."""
        replaced = [p for p in writes.updated if writes.authors_changed(p)]
        conn = self.db.conn
        conn.executemany("DELETE FROM authors WHERE paper_key = ?", [[p.key] for p in replaced])
        conn.executemany(
            "INSERT INTO authors (paper_key, position, name, folded) VALUES (?, ?, ?, ?)",
            _author_rows((*writes.new, *replaced)),
        )

    def get_paper(self, key_or_alias: str) -> Paper | None:
        """The stored paper known by this key or alias (`arxiv:…`, `doi:…`, `title:…`)."""
        row = self.db.execute(
            "SELECT p.* FROM papers p LEFT JOIN paper_keys k ON k.paper_key = p.key "
            "WHERE p.key = ? OR k.alias = ? LIMIT 1",
            [key_or_alias, key_or_alias],
        ).fetchone()
        return paper_from_row(row) if row else None

    def paper_number(self, key: str) -> int | None:
        """The stored paper's number (`seq`: given once, when it is first stored, never
        changed or reused), which short feedback links carry; None for a paper not stored."""
        row = self.db.execute("SELECT seq FROM papers WHERE key = ?", [key]).fetchone()
        return int(row[0]) if row and int(row[0]) > 0 else None

    def numbered_paper(self, number: int) -> Paper | None:
        """The stored paper with this number (`paper_number`), if any."""
        row = self.db.execute("SELECT * FROM papers WHERE seq = ? LIMIT 2", [number]).fetchall()
        return paper_from_row(row[0]) if len(row) == 1 else None

    def count_papers(self) -> int:
        """How many distinct papers are stored."""
        return int(self.db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def count_seen_after(self, when: datetime) -> int:
        """How many papers were first stored after `when`."""
        row = self.db.execute(
            "SELECT count(*) FROM papers WHERE first_seen > ?", [iso(when)]
        ).fetchone()
        return int(row[0])

    def papers_seen_since(self, since: datetime) -> Iterator[Paper]:
        """Papers first stored at or after `since`, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM papers WHERE first_seen >= ? ORDER BY first_seen, key", [iso(since)]
        )
        return papers_from_cursor(rows)


def _author_rows(papers: Iterable[Paper]) -> list[tuple[str, int, str, str]]:
    """The `authors` rows of `papers`: key, position, name as written, folded name."""
    return [
        (paper.key, position, name, fold(name))
        for paper in papers
        for position, name in enumerate(paper.authors)
    ]
