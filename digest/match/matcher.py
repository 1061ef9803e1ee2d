"""The matcher: every profile of a run compiled into one scanner and one author index.

Per paper: read its title and abstract once (`text.Words`), scan both once for every term of
every profile (`scan.Scanner`), look its authors up by last name (`authors.AuthorIndex`), then
give a verdict (`rules.verdict`) only for the profiles a found term or author concerns. Reasons
are built (`reasons.build_match`) only for what is returned: with `best_matches(keep=N)`, only
for each profile's best N.

Worked example: 100 profiles over 2,000 papers. Each paper costs two reads, two automaton
scans and a few dictionary lookups for its authors, whatever the number of profiles; a paper
whose words begin no term of anyone's costs nothing more. One that holds ``KV cache`` gets a
verdict from the three profiles that have that term.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from digest.match.algebra import Decided, VerdictAlgebra, distinct_pairs
from digest.match.authors import AuthorHit, AuthorIndex
from digest.match.hitscan import ScanReading
from digest.match.rank import rank, rank_key
from digest.match.reasons import build_match
from digest.match.rules import (
    CompiledProfile,
    PaperHits,
    ScannedField,
    StoredField,
    Verdict,
    compile_profile,
    in_listing_order,
    scored_verdict,
    verdict,
)
from digest.match.scan import Scanner
from digest.match.termbook import TermBook
from digest.match.terms import TermKey
from digest.match.text import Words
from digest.models import Match, Paper, Profile

if TYPE_CHECKING:
    import numpy as np

FollowedBy = Mapping[int, list[AuthorHit]]  # a paper's followed authors, by profile number


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (as it was before, afterwards).

    Compiling builds hundreds of thousands of small tuples that all live on; each collection
    on the way would walk all of them again (about 2× faster on bench/match-day, see
    bench/README.md). Nothing compiled forms a cycle, so nothing is left for the collector."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze_long_lived() -> None:
    """Move every object alive now into the collector's permanent generation (`gc.freeze`),
    for a process that holds what it built for the rest of its life (`digest run`: settings,
    store, compiled profiles, the matcher's indexes).

    A full collection walks every tracked object: a lab's compiled state is ~370k of them,
    and a full collection that fell inside a pass took 0.77 s of a 1.9 s pass (bench's day,
    `gc.callbacks`); with the state frozen, the same pass took 1.06 s. Frozen objects are still
    freed when their last reference goes; only a cycle among them is never collected, which
    is why a short-lived command, or a test process, never freezes."""
    gc.freeze()


class Matcher:
    """Any number of profiles compiled into one automaton and one author index.

    Built once per run; each paper is read and scanned once for all profiles, and only the
    profiles one of its terms or authors concerns are looked at.
    """

    def __init__(
        self, profiles: Sequence[Profile], compiled: Sequence[CompiledProfile] | None = None
    ) -> None:
        """The matcher of `profiles`, compiled now unless given `compiled` (the same profiles,
        in order: `compile_cache.compile_profiles` loads them from the store)."""
        with collection_paused():
            self._compile(profiles, compiled)

    def _compile(
        self, profiles: Sequence[Profile], compiled: Sequence[CompiledProfile] | None
    ) -> None:
        if compiled is None:
            compiled = [compile_profile(p) for p in profiles]
        self.compiled = tuple(compiled)
        self.profiles = tuple(profiles)
        if [c.profile for c in self.compiled] != list(self.profiles):
            raise ValueError("compiled profiles given for other profiles")
        self.scanner = Scanner(t for c in self.compiled for t in c.terms())
        self.numbers = {p.name: n for n, p in enumerate(self.profiles)}
        # For every term the scanner knows: the profiles that have it as a keyword, and the
        # groups (by a run-wide number) it belongs to. A term that is only excluded, or a group
        # found in part, never makes a match. Total over the scanner's keys, so a paper's found
        # terms are looked up with C-level `map` and `chain`, not a Python loop per term and
        # profile.
        self._keyword_at = _keyword_index(self.compiled, self.scanner.keys)
        self._group_at, self._groups = _group_index(self.compiled, self.scanner.keys)
        self._authors = AuthorIndex([c.authors for c in self.compiled])
        self._algebra: VerdictAlgebra | None = None
        self._tables_for: _BookTables | None = None

    def read(self, paper: Paper) -> PaperHits:
        """Scan one paper's title, abstract and authors against every profile at once."""
        title, abstract = Words(paper.title), Words(paper.abstract)
        scan = self.scanner.scan
        in_title, in_abstract = scan(title), scan(abstract)
        return PaperHits(
            paper,
            ScannedField(title, in_title),
            ScannedField(abstract, in_abstract),
            in_title,
            in_abstract,
            self._authors.hits(paper.authors),
            frozenset((*in_title, *in_abstract)),
        )

    def read_stored(
        self,
        paper: Paper,
        scan: ScanReading,
        book: TermBook,
        authors: Mapping[int, list[AuthorHit]] | None = None,
    ) -> PaperHits:
        """The paper's hits from its stored scan (`hitscan`), which must cover every term of
        this matcher (`TermBook.covers`): no text is read. Terms of the book no profile here
        has (dropped since, or another pass's) are left out. `authors`: the paper's followed
        authors, when they were looked up already."""
        in_title = self._known(scan.title, book)
        in_abstract = self._known(scan.abstract, book)
        return PaperHits(
            paper,
            StoredField(paper.title, in_title, scan, "title"),
            StoredField(paper.abstract, in_abstract, scan, "abstract"),
            in_title,
            in_abstract,
            self._authors.hits(paper.authors, scan.author_keys) if authors is None else authors,
            frozenset((*in_title, *in_abstract)),
        )

    def _known(self, numbers: Iterable[int], book: TermBook) -> dict[TermKey, int]:
        """A stored field's terms by key (with their book numbers), only those this matcher
        knows."""
        known = self._known_in(book)
        return {key: number for number in numbers if (key := known[number]) is not None}

    def _known_in(self, book: TermBook) -> list[TermKey | None]:
        """Book number -> its key where this matcher knows the term, else None (`_tables`)."""
        return self._tables(book).known

    def _columns_in(self, book: TermBook) -> np.ndarray:
        """Book number -> the term's column in the verdict algebra, -1 where this matcher
        does not know it (`_tables`)."""
        return self._tables(book).columns

    def _tables(self, book: TermBook) -> _BookTables:
        """This matcher's tables of a term book, made once per book (a pass reads every paper
        against the same one): a list index a stored term, not a tuple index and a set lookup
        (year: 0.63 -> 0.38 s over 50k papers, cProfile)."""
        import numpy as np

        made = self._tables_for
        if made is None or made.book is not book:
            columns = self.algebra.columns
            known = [k if k in columns else None for k in book.keys]
            table = np.array([-1 if k is None else columns[k] for k in known], dtype=np.int64)
            made = self._tables_for = _BookTables(book, known, table)
        return made

    def match_stored(self, paper: Paper, scan: ScanReading, book: TermBook) -> dict[str, Match]:
        """`match` from the paper's stored scan: the same verdicts and reasons, no text read."""
        hits = self.read_stored(paper, scan, book)
        return self._matches(hits, list(self.verdicts(hits)))

    def match_stored_all(
        self, papers: Sequence[Paper], scans: Sequence[ScanReading], book: TermBook
    ) -> list[dict[str, Match]]:
        """`match_stored` for a batch of papers, their verdicts decided together (`decide`).

        The cyclic collector is paused for the batch: its readings, verdicts and matches are
        tens of thousands of small objects, none in a cycle, and a collection now and then on
        the way walks the compiled profiles too (kw, 10k papers × 100 profiles: 1.77 -> 1.2 s
        a warm pass)."""
        with collection_paused():
            authors, decided = self._decided_stored(papers, scans, book)
            return [
                self._matches(self.read_stored(paper, scan, book, followed), found) if found else {}
                for paper, scan, followed, found in zip(
                    papers, scans, authors, decided, strict=True
                )
            ]

    def _decided_stored(
        self, papers: Sequence[Paper], scans: Sequence[ScanReading], book: TermBook
    ) -> tuple[list[FollowedBy], list[list[Verdict]]]:
        """A batch's followed authors, paper by paper, and its verdicts decided together from
        the stored scans: the terms taken from the scans as book numbers, turned into the
        algebra's columns by one table (`_columns_in`); a pair with a whole group is scored
        from its paper's title terms alone. No `PaperHits` is read to decide (only for the
        matches' reasons, afterwards): a year's pass, 50k papers, 5.06 -> 3.96 s warm."""
        if not papers:
            return [], []
        import numpy as np

        authors: list[FollowedBy] = [
            self._authors.hits(paper.authors, scan.author_keys)
            for paper, scan in zip(papers, scans, strict=True)
        ]
        columns = self._columns_in(book)
        width = self.algebra.size[0]  # every column is below it
        title_rows, title_columns = _known_entries(_entries(s.title for s in scans), columns)
        rows, found = _known_entries(_entries(s.abstract for s in scans), columns)
        pairs = distinct_pairs(
            np.concatenate((title_rows, rows)), np.concatenate((title_columns, found)), width
        )
        decided = self.algebra.decide(pairs, (title_rows, title_columns), papers, _entries(authors))
        known = self._known_in(book)

        def title_terms(row: int) -> set[TermKey]:
            return {key for n in scans[row].title if (key := known[n]) is not None}

        return authors, self._verdicts_of(authors, title_terms, decided)

    def _matches(self, hits: PaperHits, verdicts: Iterable[Verdict]) -> dict[str, Match]:
        """Each verdict's match, by profile name."""
        return {
            self.profiles[v.profile].name: build_match(hits, self.compiled[v.profile], v)
            for v in verdicts
        }

    def verdicts(self, hits: PaperHits, only: int | None = None) -> Iterator[Verdict]:
        """The verdicts of the profiles a found keyword, whole group or author concerns (or of
        profile `only`), in profile order."""
        found, authors = hits.found, hits.authors
        numbers = set(chain.from_iterable(map(self._keyword_at.__getitem__, found)))
        groups = self._whole_groups(found)
        numbers.update(authors, groups)
        if only is not None:
            numbers &= {only}
        for number in sorted(numbers):
            compiled = self.compiled[number]
            positions = compiled.keyword_positions
            result = verdict(
                hits,
                number,
                compiled,
                authors.get(number, ()),
                [p for key in found & compiled.keyword_keys for p in positions[key]],
                groups.get(number, ()),
            )
            if result is not None:
                yield result

    @property
    def algebra(self) -> VerdictAlgebra:
        """The profiles as sparse matrices (`algebra`), made on first use."""
        if self._algebra is None:
            # Its entries are some 100k tuples, none in a cycle: a collection on the way walks
            # the compiled profiles too (a lab's 1,000 profiles: 0.37 -> 0.14 s).
            with collection_paused():
                self._algebra = VerdictAlgebra(self.compiled, sorted(self.scanner.keys))
        return self._algebra

    def decide(self, readings: Sequence[PaperHits]) -> list[list[Verdict]]:
        """Every profile's verdict on each of a batch of read papers, in profile order: what
        `verdicts` gives paper by paper, as sparse-matrix work for all of them at once."""
        algebra = self.algebra
        columns = algebra.columns
        found = _entries((columns[key] for key in hits.found) for hits in readings)
        in_title = _entries((columns[key] for key in hits.in_title) for hits in readings)
        authors = [hits.authors for hits in readings]
        decided = algebra.decide(found, in_title, [h.paper for h in readings], _entries(authors))
        return self._verdicts_of(authors, lambda row: readings[row].in_title, decided)

    def _verdicts_of(
        self,
        authors: Sequence[FollowedBy],
        title_terms: Callable[[int], Collection[TermKey]],
        decided: Decided,
    ) -> list[list[Verdict]]:
        """The `Verdict`s of the pairs the algebra decided, by paper, in profile order, given
        each paper's followed authors and the terms of its title (asked only for a pair with
        a whole group, which the rules score: a group's terms may repeat a keyword's)."""
        whole = _whole_by_pair(decided)
        verdicts: list[list[Verdict]] = [[] for _ in authors]
        titles: dict[int, Collection[TermKey]] = {}
        positions = decided.keyword_positions.tolist()
        pairs = zip(
            decided.papers.tolist(),
            decided.profiles.tolist(),
            decided.scores.tolist(),
            decided.by_rules.tolist(),
            decided.keyword_starts.tolist(),
            decided.keyword_ends.tolist(),
            strict=True,
        )
        for row, number, score, exact, start, end in pairs:
            keywords = tuple(positions[start:end])
            followed = in_listing_order(authors[row].get(number))
            if exact:
                in_title = titles.get(row)
                if in_title is None:
                    in_title = titles[row] = title_terms(row)
                groups = tuple(sorted(whole[row, number]))
                found = scored_verdict(
                    in_title, number, self.compiled[number], followed, keywords, groups
                )
            else:
                found = Verdict(number, score, followed, keywords, ())
            verdicts[row].append(found)
        return verdicts

    def _whole_groups(self, found: frozenset[TermKey]) -> dict[int, list[int]]:
        """Profile number -> the indexes of its groups whose every distinct term was found."""
        seen = Counter(chain.from_iterable(map(self._group_at.__getitem__, found)))
        whole: dict[int, list[int]] = {}
        for group, count in seen.items():
            number, index, size = self._groups[group]
            if count == size:
                whole.setdefault(number, []).append(index)
        return whole

    def match(self, paper: Paper) -> dict[str, Match]:
        """Each matching profile's match of `paper`, by profile name."""
        hits = self.read(paper)
        return {
            self.profiles[v.profile].name: build_match(hits, self.compiled[v.profile], v)
            for v in self.verdicts(hits)
        }

    def match_all(self, papers: Iterable[Paper]) -> dict[str, list[Match]]:
        """Every profile's ranked matches among `papers`, each paper read once for all."""
        return {name: list(best.matches) for name, best in self.best(papers).items()}

    def ranked(self, name: str, papers: Iterable[Paper]) -> tuple[Match, ...]:
        """Profile `name`'s ranked matches among `papers` (each paper read for it alone: to
        plan many profiles, read once with `match_all` or `best`)."""
        number = self.numbers[name]
        compiled = self.compiled[number]
        found: list[Match] = []
        for paper in papers:
            hits = self.read(paper)
            found.extend(build_match(hits, compiled, v) for v in self.verdicts(hits, number))
        return rank(found)

    def best(self, papers: Iterable[Paper], keep: int | None = None) -> dict[str, Best]:
        """Each profile's `keep` best matches (all without `keep`) and its count of all matches.

        With `keep`, verdicts are ranked as they come and trimmed now and then, so memory does
        not grow with the papers, and reasons are built only for the matches returned: their
        papers are read again at the end (keeping each kept verdict's reading instead would
        hold hundreds of readings per profile). Without `keep` every match is returned, so it
        is built at once."""
        self.scanner.prepare()  # every paper is read and scanned: the automaton is needed now
        if keep is None:
            built, totals = self._every_match(papers)
        else:
            built, totals = self._best_kept(papers, keep)
        return self._bests(built, totals)

    def _bests(self, built: list[list[Match]], totals: list[int]) -> dict[str, Best]:
        """Each profile's `Best`, by name, from its ranked matches and count, by number."""
        return {
            profile.name: Best(tuple(built[number]), totals[number])
            for number, profile in enumerate(self.profiles)
        }

    def _every_match(self, papers: Iterable[Paper]) -> tuple[list[list[Match]], list[int]]:
        """Every profile's matches among `papers`, ranked, and their counts."""
        buckets: list[list[tuple[RankKey, Match]]] = [[] for _ in self.profiles]
        compiled = self.compiled
        for paper in papers:
            hits = self.read(paper)
            for found in self.verdicts(hits):
                number = found.profile
                match = build_match(hits, compiled[number], found)
                buckets[number].append((rank_key(found.score, paper), match))
        return list(map(_ranked, buckets)), list(map(len, buckets))

    def _best_kept(self, papers: Iterable[Paper], keep: int) -> tuple[list[list[Match]], list[int]]:
        """Every profile's `keep` best matches among `papers`, ranked, and its count of all."""
        tally: _KeptTally[Paper] = _KeptTally(len(self.profiles), keep)
        for paper in papers:
            tally.add(paper, paper, self.verdicts(self.read(paper)))
        return tally.built(self.read, self.compiled), tally.totals

    def best_stored(self, batches: Iterable[StoredBatch], keep: int) -> dict[str, Best]:
        """`best(papers, keep)` from stored scans, a batch at a time (papers, their scans and
        the book they cover: `HitKeeper.scans_for`): verdicts decided together per batch, and
        reasons built only for each profile's `keep` best, from their scans (read again at the
        end, as `best` reads the kept papers again: no text is read)."""
        tally: _KeptTally[_StoredPaper] = _KeptTally(len(self.profiles), keep)
        # The collector paused for the whole pass, the batches' reading included (as in
        # `match_stored_all`; a year's pass makes no cycle, `tests/test_match_all.py`): 50k
        # papers × 100 profiles, 5.8 -> 4.8 s against a pause per batch.
        with collection_paused():
            for papers, scans, book in batches:
                authors, decided = self._decided_stored(papers, scans, book)
                for paper, scan, followed, found in zip(
                    papers, scans, authors, decided, strict=True
                ):
                    if found:
                        tally.add(paper, _StoredPaper(paper, scan, book, followed), found)

        def read(source: _StoredPaper) -> PaperHits:
            return self.read_stored(source.paper, source.scan, source.book, source.authors)

        return self._bests(tally.built(read, self.compiled), tally.totals)


class _BookTables(NamedTuple):
    """A term book's numbers as a matcher reads them: each one's key, where the matcher knows
    the term (else None), and its column in the verdict algebra (else -1)."""

    book: TermBook
    known: list[TermKey | None]
    columns: np.ndarray


class _StoredPaper(NamedTuple):
    """A paper kept by `best_stored`, with what reads it again: its scan, the book and its
    followed authors (a year names more people than `AuthorIndex` keeps answers for: looked
    up again at the end, the kept papers' authors took 0.36 s of a 50k pass, cProfile)."""

    paper: Paper
    scan: ScanReading
    book: TermBook
    authors: FollowedBy


StoredBatch = tuple[Sequence[Paper], Sequence[ScanReading], TermBook]


Source = TypeVar("Source")  # where a kept verdict's paper is read again


class _KeptTally(Generic[Source]):
    """Each profile's best `keep` verdicts so far, with their sort keys and where each paper
    is read again (the `Paper` itself, or a `_StoredPaper`), and its count of all."""

    def __init__(self, profiles: int, keep: int) -> None:
        self.keep = keep
        self.kept: list[list[Kept[Source]]] = [[] for _ in range(profiles)]
        self.totals = [0] * profiles
        self._limit = 4 * keep + 16  # trim now and then, not at every verdict

    def add(self, paper: Paper, source: Source, verdicts: Iterable[Verdict]) -> None:
        """Count and keep the verdicts of one paper, read again from `source` if kept."""
        for found in verdicts:
            number = found.profile
            self.totals[number] += 1
            bucket = self.kept[number]
            bucket.append((rank_key(found.score, paper), found, source))
            if len(bucket) >= self._limit:
                bucket.sort(key=_first)
                del bucket[self.keep :]

    def built(
        self, read: Callable[[Source], PaperHits], compiled: Sequence[CompiledProfile]
    ) -> list[list[Match]]:
        """The matches of each profile's `keep` best verdicts: each paper is read again once,
        for every profile that kept it, and let go at once (not all readings held together)."""
        tops = [sorted(bucket, key=_first)[: self.keep] for bucket in self.kept]
        built: dict[tuple[int, int], Match] = {}
        for source, verdicts in _by_paper(tops).values():
            hits = read(source)
            for number, position, found in verdicts:
                built[number, position] = build_match(hits, compiled[number], found)
        return [
            [built[number, position] for position in range(len(top))]
            for number, top in enumerate(tops)
        ]


def _whole_by_pair(decided: Decided) -> dict[tuple[int, int], list[int]]:
    """(paper, profile) -> the positions of the profile's whole groups in the paper."""
    whole: dict[tuple[int, int], list[int]] = {}
    for row, number, position in zip(*(a.tolist() for a in decided.groups), strict=True):
        whole.setdefault((row, number), []).append(position)
    return whole


def _known_entries(entries: tuple[Any, Any], columns: np.ndarray) -> tuple[Any, Any]:
    """Entries of book numbers as algebra columns, those the table does not know dropped."""
    rows, numbers = entries
    found = columns[numbers]
    known = found >= 0
    return rows[known], found[known]


def _entries(rows: Iterable[Iterable[int]]) -> tuple[Any, Any]:
    """Row indexes and values of ragged rows, as two numpy arrays."""
    import numpy as np

    sizes: list[int] = []
    values: list[int] = []
    for row in rows:
        before = len(values)
        values.extend(row)
        sizes.append(len(values) - before)
    return np.repeat(np.arange(len(sizes)), sizes), np.array(values, dtype=np.int64)


RankKey = tuple[float, int, int, str]
Kept = tuple[RankKey, Verdict, Source]  # a kept verdict, its sort key and its paper's source


def _first(item: Kept[Any] | tuple[RankKey, Match]) -> RankKey:
    """Sort key: the rank key an entry starts with."""
    return item[0]


def _ranked(bucket: list[tuple[RankKey, Match]]) -> list[Match]:
    """A profile's matches, best first (a stable sort: ties keep the papers' order)."""
    return [match for _, match in sorted(bucket, key=_first)]


def _by_paper(
    tops: list[list[Kept[Source]]],
) -> dict[int, tuple[Source, list[tuple[int, int, Verdict]]]]:
    """The kept verdicts by paper (its source's `id`): (profile number, position in its
    list, verdict)."""
    wanted: dict[int, tuple[Source, list[tuple[int, int, Verdict]]]] = {}
    for number, top in enumerate(tops):
        for position, (_, found, source) in enumerate(top):
            wanted.setdefault(id(source), (source, []))[1].append((number, position, found))
    return wanted


def _keyword_index(
    compiled: Sequence[CompiledProfile], keys: Iterable[TermKey]
) -> dict[TermKey, tuple[int, ...]]:
    """Term -> the numbers of the profiles that have it as a keyword (every key of `keys`)."""
    keyword_at: dict[TermKey, list[int]] = {key: [] for key in keys}
    for number, profile in enumerate(compiled):
        for key in profile.keyword_positions:
            keyword_at[key].append(number)
    return _frozen(keyword_at)


class _Group(NamedTuple):
    """An `all_of` group of some profile, by its run-wide number."""

    profile: int  # the profile's number
    position: int  # where it stands in the profile's `CompiledProfile.groups`
    size: int  # its distinct terms: all of them found makes it whole


def _group_index(
    compiled: Sequence[CompiledProfile], keys: Iterable[TermKey]
) -> tuple[dict[TermKey, tuple[int, ...]], list[_Group]]:
    """Term -> the run-wide numbers of the groups it belongs to (every key of `keys`), and
    the groups by number."""
    group_at: dict[TermKey, list[int]] = {key: [] for key in keys}
    groups: list[_Group] = []
    for number, profile in enumerate(compiled):
        for index, group in enumerate(profile.groups):
            distinct = {t.key for t in group}
            for key in distinct:
                group_at[key].append(len(groups))
            groups.append(_Group(number, index, len(distinct)))
    return _frozen(group_at), groups


def _frozen(index: dict[TermKey, list[int]]) -> dict[TermKey, tuple[int, ...]]:
    """An index with its lists of numbers as tuples."""
    return {key: tuple(numbers) for key, numbers in index.items()}


@dataclass(frozen=True, slots=True)
class Best:
    """A profile's best matches, ranked, and how many papers it matched in all."""

    matches: tuple[Match, ...]
    total: int


def best_matches(
    papers: Iterable[Paper], profiles: Sequence[Profile], keep: int | None = None
) -> dict[str, Best]:
    """Each profile's `keep` best matches (all without `keep`) and its count of all matches.
    With `keep`, memory does not grow with the papers: what a digest of `keep` items needs
    from a year of them."""
    return Matcher(profiles).best(papers, keep)


def match_profiles(
    papers: Iterable[Paper], profiles: Sequence[Profile]
) -> dict[str, tuple[Match, ...]]:
    """Every profile's ranked matches. Papers stream through one scanner built for all
    profiles, so memory holds only the matches."""
    return {name: best.matches for name, best in best_matches(papers, profiles).items()}


__all__ = [
    "Best",
    "CompiledProfile",
    "Matcher",
    "best_matches",
    "freeze_long_lived",
    "match_profiles",
]
