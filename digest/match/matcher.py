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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

from digest.match.authors import AuthorIndex
from digest.match.rank import rank, rank_key
from digest.match.reasons import build_match
from digest.match.rules import CompiledProfile, PaperHits, Verdict, compile_profile, verdict
from digest.match.scan import Scanner
from digest.match.terms import TermKey
from digest.match.text import Words
from digest.models import Match, Paper, Profile


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (as it was before, afterwards).

    Compiling builds hundreds of thousands of small tuples that all live on; each collection
    on the way walks all of them again. A lab's 1,000 profiles (52k terms, 177k spellings)
    compiled in 4.4-5.3 s with it running and 2.4 s paused; 100 profiles 0.8-1.1 s -> 0.4 s.
    Nothing compiled forms a cycle, so nothing is left for the collector."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Matcher:
    """Any number of profiles compiled into one automaton and one author index.

    Built once per run; each paper is read and scanned once for all profiles, and only the
    profiles one of its terms or authors concerns are looked at.
    """

    def __init__(self, profiles: Sequence[Profile]) -> None:
        with collection_paused():
            self._compile(profiles)

    def _compile(self, profiles: Sequence[Profile]) -> None:
        self.compiled = tuple(compile_profile(p) for p in profiles)
        self.profiles = tuple(profiles)
        self.scanner = Scanner(t for c in self.compiled for t in c.terms())
        self.numbers = {p.name: n for n, p in enumerate(self.profiles)}
        # For every term the scanner knows: the profiles that have it as a keyword, and the
        # groups (by a run-wide number) it belongs to. A term that is only excluded, or a group
        # found in part, never makes a match. Total over the scanner's keys, so a paper's found
        # terms are looked up with C-level `map` and `chain` instead of a Python loop per term
        # and profile (a lab's day: 1.7 s of verdicts, most of it that loop).
        keyword_at: dict[TermKey, list[int]] = {key: [] for key in self.scanner.keys}
        group_at: dict[TermKey, list[int]] = {key: [] for key in self.scanner.keys}
        self._groups: list[tuple[int, int, int]] = []  # (profile, group index, distinct terms)
        for number, compiled in enumerate(self.compiled):
            for key in compiled.keyword_positions:
                keyword_at[key].append(number)
            for index, group in enumerate(compiled.groups):
                keys = {t.key for t in group}
                for key in keys:
                    group_at[key].append(len(self._groups))
                self._groups.append((number, index, len(keys)))
        self._keyword_at = {key: tuple(numbers) for key, numbers in keyword_at.items()}
        self._group_at = {key: tuple(groups) for key, groups in group_at.items()}
        self._authors = AuthorIndex([c.authors for c in self.compiled])

    def read(self, paper: Paper) -> PaperHits:
        """Scan one paper's title, abstract and authors against every profile at once."""
        title, abstract = Words(paper.title), Words(paper.abstract)
        scan = self.scanner.scan
        in_title, in_abstract = scan(title), scan(abstract)
        return PaperHits(
            paper,
            title,
            abstract,
            in_title,
            in_abstract,
            self._authors.hits(paper.authors),
            frozenset((*in_title, *in_abstract)),
        )

    def verdicts(self, hits: PaperHits, only: int | None = None) -> Iterator[Verdict]:
        """The verdicts of the profiles a found keyword, whole group or author concerns (or of
        profile `only`), in profile order."""
        found, authors = hits.found, hits.authors
        numbers = set(chain.from_iterable(map(self._keyword_at.__getitem__, found)))
        # A group is whole when every one of its distinct terms was found.
        seen = Counter(chain.from_iterable(map(self._group_at.__getitem__, found)))
        groups: dict[int, list[int]] = {}
        for group, count in seen.items():
            number, index, size = self._groups[group]
            if count == size:
                groups.setdefault(number, []).append(index)
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
        papers are read again at the end. (Keeping each kept verdict's reading instead held up
        to 216 readings per profile: 697 MB for a year × 100 profiles in the bench.) Without
        `keep` every match is returned, so it is built at once."""
        kept: list[list[tuple[RankKey, Verdict | Match, Paper | None]]] = [
            [] for _ in self.profiles
        ]
        totals = [0] * len(self.profiles)
        compiled = self.compiled
        for paper in papers:
            hits = self.read(paper)
            for found in self.verdicts(hits):
                number = found.profile
                totals[number] += 1
                bucket = kept[number]
                if keep is None:
                    match = build_match(hits, compiled[number], found)
                    bucket.append((rank_key(found.score, paper), match, None))
                    continue
                bucket.append((rank_key(found.score, paper), found, paper))
                if len(bucket) >= 4 * keep + 16:  # trim now and then
                    bucket.sort(key=_first)
                    del bucket[keep:]
        # Reasons for the kept verdicts: each paper read again once, for every profile that
        # kept it, and let go at once (holding all readings peaked at +156 MB for 100 × 50).
        built: list[list[Match | None]] = []
        wanted: dict[int, tuple[Paper, list[tuple[int, int, Verdict]]]] = {}
        for number, bucket in enumerate(kept):
            bucket.sort(key=_first)
            top = bucket[:keep]
            built.append([item if isinstance(item, Match) else None for _, item, _p in top])
            for position, (_, item, source) in enumerate(top):
                if isinstance(item, Verdict) and source is not None:
                    wanted.setdefault(id(source), (source, []))[1].append((number, position, item))
        for source, verdicts in wanted.values():
            hits = self.read(source)
            for number, position, kept_verdict in verdicts:
                built[number][position] = build_match(hits, compiled[number], kept_verdict)
        result: dict[str, Best] = {}
        for number, matches in enumerate(built):
            done = tuple(m for m in matches if m is not None)
            result[self.profiles[number].name] = Best(done, totals[number])
        return result


RankKey = tuple[float, int, int, str]


def _first(item: tuple[RankKey, Verdict | Match, Paper | None]) -> RankKey:
    return item[0]


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


__all__ = ["Best", "CompiledProfile", "Matcher", "best_matches", "match_profiles"]
