"""Keeping stored hits current: the term book of the configured profiles, the papers to scan,
and each planning pass's scans.

`HitKeeper` is made once per app (it lives in the `PassMemory`). It reads the store's term book
and appends the terms the profiles have that it lacks (`book`). After a fetch, and before a
send plans, `refresh` scans the papers of the profiles' windows whose stored scan is missing,
made from other text, or short of the book: a paper scanned before the book grew is scanned for
the new terms only (a small automaton of them), and its scan extended. Each row also holds
the paper's author keys (`digest.match.authors.author_keys`), so that a pass reads only the
author names somebody follows. A planning pass asks
`scans_for` its candidates: the stored scans that fit (same text, covering every term the pass
needs), with any that do not made now in memory the same way, so a read-only pass (`digest
preview`, `digest match`) gives the same verdicts without writing.

Worked example: 100 profiles, a store whose papers were all scanned for the book's 9,000 terms.
One profile adds ``state space model``: `book` appends it as term 9,000; `refresh` finds every
paper of the window covering 9,000 terms, scans each for that one term (an automaton of its
spellings), and writes the extended scans, covering 9,001. Nothing else is read again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from digest.match.authors import KEYS_START, author_keys
from digest.match.hitscan import HitScanner, ScanReading, StoredScan, encode, extended
from digest.match.matcher import collection_paused
from digest.match.rules import CompiledProfile, compile_profile
from digest.match.termbook import (
    TermBook,
    boundaries_from_text,
    forms_from_text,
)
from digest.match.terms import Form, Term, TermKey, term_forms
from digest.models import Paper, Profile
from digest.plan.spelling import term_rows
from digest.store import Store
from digest.store.hits import HitRow, StoredHits, TermRow, ToScan
from digest.store.merge import batches

log = logging.getLogger(__name__)

_WRITE_BATCH = 1_000  # scans written per transaction while refreshing


def text_hash(paper: Paper) -> str:
    """A hash of the text a scan reads (title and abstract): a stored scan is used only for
    the text it was made from."""
    text = f"{paper.title}\x1f{paper.abstract}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=12).hexdigest()


def profile_terms(profiles: Iterable[Profile]) -> list[TermKey]:
    """Every usable term key of the profiles (keywords, groups, excludes), first use first."""
    return compiled_terms(map(compile_profile, profiles))


def compiled_terms(compiled: Iterable[CompiledProfile]) -> list[TermKey]:
    """`profile_terms` of profiles compiled already (`compile_cache.compile_profiles`)."""
    keys: dict[TermKey, None] = {}
    for profile in compiled:
        for term in profile.terms():
            keys.setdefault(term.key)
    return list(keys)


def _keys_of(rows: Iterable[TermRow]) -> tuple[TermKey, ...]:
    """The keys of stored term rows. Their boundaries are read once per distinct text: a
    lab's 52k terms have 1,328 (0.26 -> 0.03 s)."""
    cuts_of: dict[str, tuple[int, ...]] = {}
    keys = []
    for letters, prefix, cuts, _ in rows:
        boundaries = cuts_of.get(cuts)
        if boundaries is None:
            boundaries = cuts_of[cuts] = boundaries_from_text(cuts)
        keys.append(TermKey(letters, prefix, boundaries))
    return tuple(keys)


class HitKeeper:
    """The configured profiles' terms against the store's term book, and the scanners that
    cover slices of it (kept while the book does not change)."""

    def __init__(
        self, profiles: Sequence[Profile], compiled: Sequence[CompiledProfile] | None = None
    ) -> None:
        """The keeper of `profiles` (`compiled`, when they are compiled already)."""
        self.terms = profile_terms(profiles) if compiled is None else compiled_terms(compiled)
        self._scanners: dict[tuple[int, int], HitScanner] = {}
        self._book = TermBook()
        self._book_store: Store | None = None  # the store `_book` was read from
        self._covering: tuple[TermBook, TermBook] | None = None  # a book, with the terms
        self._stored_forms: dict[TermKey, str] = {}  # as the store keeps them

    def book(self, store: Store, *, write: bool, also: Iterable[TermKey] = ()) -> TermBook:
        """The store's term book with the profiles' new terms (and `also`) appended; with
        `write`, the store's book grows too (a writer's refresh), else only this copy does."""
        stored = self._stored_book(store)
        book = self._with_profiles(stored).with_terms(also)
        if write and len(book) > len(stored):
            # Spelled (lemminflect) once for good: later processes read the spellings. Kept
            # here as the store keeps them, text, read only when a scanner is made.
            added = book.keys[len(stored) :]
            rows = term_rows(added)
            store.add_terms(rows)
            self._learn(added, rows)
            self._book, self._book_store = book, store
        return book

    def _with_profiles(self, stored: TermBook) -> TermBook:
        """`stored` with the profiles' terms it lacks appended, worked out once per stored
        book: a pass asks for every batch, and a lab's 52k terms take 26 ms to look up."""
        made = self._covering
        if made is None or made[0] is not stored:
            made = self._covering = (stored, stored.with_terms(self.terms))
        return made[1]

    def _stored_book(self, store: Store) -> TermBook:
        """The store's book, read again only when it has more terms than last read (it only
        grows, so its length says whether it changed)."""
        if store is not self._book_store or store.count_terms() != len(self._book):
            with collection_paused():  # a lab's 52k terms: no cycle among them
                rows = store.term_rows()
                keys = _keys_of(rows)
                self._learn(keys, rows)
                self._book, self._book_store = TermBook(keys), store
        return self._book

    def _learn(self, keys: Sequence[TermKey], rows: Sequence[TermRow]) -> None:
        """Keep the stored spellings of these terms, as text: read only if a scanner is made."""
        self._stored_forms.update(zip(keys, (row[3] for row in rows), strict=True))

    def _spell(self, term: Term) -> tuple[Form, ...]:
        """A term's spellings as the store keeps them (worked out for a term it lacks)."""
        text = self._stored_forms.get(term.key)
        return forms_from_text(text) if text is not None else term_forms(term)

    def scanner(self, book: TermBook, start: int = 0) -> HitScanner:
        """A scanner of the book's terms numbered `start` and up (made once per book)."""
        made = self._scanners.get((len(book), start))
        if made is None or made.book is not book:
            made = self._scanners[len(book), start] = HitScanner(book, start, self._spell)
        return made

    def scan(self, book: TermBook, paper: Paper, stored: StoredHits | None) -> ScanReading:
        """The paper's scan covering the whole book: its stored scan (read lazily), extended
        by the terms it lacks, when it was made from this text; else a new one."""
        if stored is None or stored.text_hash != text_hash(paper) or stored.covered > len(book):
            return self.scanner(book).scan(paper)
        if stored.covered == len(book):
            return StoredScan(stored.blob, stored.names)
        newer = self.scanner(book, stored.covered).scan(paper)
        return StoredScan(extended(stored.blob, newer), stored.names)

    def refresh(self, store: Store, since: datetime) -> int:
        """Scan and store every paper first stored at or after `since` whose stored scan does
        not cover the book for its current text, or whose stored author keys are missing or of
        another layout (its scan kept when it is current); how many rows were written."""
        book = self.book(store, write=True)
        written = 0
        to_scan = store.papers_to_scan(since, len(book), KEYS_START)
        for batch in batches(to_scan, _WRITE_BATCH):
            written += store.write_hits(self._row(book, item) for item in batch)
        if written:
            log.info("stored hits: %d paper(s) brought up to %d term(s)", written, len(book))
        return written

    def _row(self, book: TermBook, item: ToScan) -> HitRow:
        """The paper's row: its scan covering the book (the stored one kept or extended when
        it is of the same text) and its author keys."""
        stored, hashed = item.stored, text_hash(item.paper)
        if stored is None or stored.text_hash != hashed or stored.covered > len(book):
            blob = encode(self.scanner(book).scan(item.paper))
        elif stored.covered == len(book):  # only its author keys were missing
            blob = stored.blob
        else:  # the same text, scanned before the book grew: the new terms alone
            blob = extended(stored.blob, self.scanner(book, stored.covered).scan(item.paper))
        if stored is not None and stored.names is not None and stored.names.startswith(KEYS_START):
            # A row of this update of the paper (the same authors): its keys kept, not made
            # again for every paper of the window when a keyword is added.
            names = stored.names
        else:
            names = author_keys(item.paper.authors)
        return HitRow(item.paper.key, item.stamp, hashed, len(book), blob, names)

    def scanned(
        self, store: Store, batches: Iterable[Sequence[Paper]]
    ) -> Iterator[tuple[Sequence[Paper], list[ScanReading], TermBook]]:
        """Each batch of papers with its scans and the book they cover (`scans_for`), as
        `Matcher.best_stored` reads them."""
        for batch in batches:
            book, scans = self.scans_for(store, batch)
            yield batch, scans, book

    def scans_for(
        self, store: Store, papers: Sequence[Paper], also: Iterable[TermKey] = ()
    ) -> tuple[TermBook, list[ScanReading]]:
        """The book a pass reads (with the terms `also`) and each paper's scan covering it, in
        order: the stored scan where it fits, else one made now (not written: a pass reads)."""
        book = self.book(store, write=False, also=also)
        stored = store.stored_hits(paper.key for paper in papers)
        with collection_paused():  # a batch's scans: many small objects, no cycle among them
            return book, [self.scan(book, paper, stored.get(paper.key)) for paper in papers]
