"""What planning passes keep between them: one object, owned by the app, with one rule each.

A `PassMemory` holds everything a planning pass may reuse from the pass before:

- `verdicts`: the configured profiles' matcher and each paper's verdicts, by paper content
  (`VerdictMemo`);
- `hits`: the term book and scanners of stored hits (`digest.plan.hits.HitKeeper`): a pass
  decides from each candidate's stored scan (`verdicts_of`), reading no paper text;
- `decoded`: the candidates decoded from their rows (`DecodedPapers`), valid while the store's
  papers are unchanged: a pass over them reads their keys, not their rows;
- `suggest`: the libraries, background sample and vocabulary the suggestions share
  (`digest.suggest.memory.SuggestMemory`), each keyed by what it was made from.

Nothing else in the planning path keeps state between passes: the store holds no decoded
papers and `digest.suggest` no module-level dictionaries. `App` makes one memory for its life
(`app.build_app`): a one-shot command plans once, and `digest run`, which plans every send
minute over much the same new papers, reuses it between ticks (measured by
`python -m bench.pass_memory`; figures in bench/README.md, "The pass memory").

Example::

    memory = PassMemory(settings.profile_records())
    known = memory.papers_of(store)      # checks the store's papers version first
    for paper, wanted_by in store.candidates_for(starts, known):
        verdicts = memory.verdicts.for_profiles(profiles)(paper)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from digest.match import CompiledProfile, Matcher
from digest.match.compile_cache import CompiledRows, compile_profiles
from digest.match.hitscan import ScanReading
from digest.match.matcher import collection_paused
from digest.match.termbook import TermBook
from digest.models import Match, Paper, Profile
from digest.plan.hits import HitKeeper, profile_terms
from digest.plan.stored import BATCH
from digest.store import Store
from digest.store.merge import batches
from digest.store.window import Listed

if TYPE_CHECKING:
    from digest.suggest.memory import SuggestMemory

# How a pass matches a paper against the profiles it plans: every matching profile's match.
Verdicts = Callable[[Paper], dict[str, Match]]


class VerdictMemo:
    """The configured profiles' matcher, and each paper's verdicts for all of them, kept by the
    paper's content (a paper's verdicts change only with its text, authors and categories);
    at most `limit` papers, then it starts afresh."""

    def __init__(
        self,
        profiles: Sequence[Profile],
        limit: int = 20_000,
        compiled: Sequence[CompiledProfile] | None = None,
    ) -> None:
        """The memo of `profiles` (`compiled`, when they are compiled already)."""
        self.matcher = Matcher(profiles, compiled)
        self.limit = limit  # a few days of new papers
        self.known: dict[tuple[object, ...], dict[str, Match]] = {}
        # The same verdicts by the paper object (its `id`, the paper kept beside them so the
        # id stays its own): the day's send groups plan over the same decoded papers
        # (`DecodedPapers`), and each group looked up 4,000 content keys again (16.5 ms a
        # group, 0.5 s of a morning's 32).
        self.by_object: dict[int, tuple[Paper, dict[str, Match]]] = {}

    def for_profiles(self, profiles: Sequence[Profile]) -> Verdicts:
        """How a pass over `profiles` matches a paper: every matching profile's match, by name.
        A profile edited since the memo was made (not among its profiles) gets a matcher for
        this pass alone."""
        if not all(profile in self.matcher.profiles for profile in profiles):
            return Matcher(profiles).match
        return self.verdicts

    def verdicts(self, paper: Paper) -> dict[str, Match]:
        """The paper's verdicts for every configured profile, matched once per content."""
        return self._remembered(paper, self.matcher.match)

    def _remembered(
        self, paper: Paper, match: Callable[[Paper], dict[str, Match]]
    ) -> dict[str, Match]:
        """The paper's verdicts as `match` gives them, once per content."""
        content = _content(paper)
        known = self.known.get(content)
        if known is None:
            if len(self.known) >= self.limit:
                self.known.clear()
            known = self.known[content] = match(paper)
        return known

    def from_scans(
        self,
        profiles: Sequence[Profile],
        papers: Sequence[Paper],
        scans_of: Callable[[Sequence[Paper]], tuple[TermBook, Sequence[ScanReading]]],
    ) -> Verdicts:
        """How a pass over `profiles` matches `papers` from their scans (`scans_of`, asked only
        for the papers the memo does not know: same content, configured profiles): their
        verdicts decided now, in one batch (`Matcher.match_stored_all`). The same verdicts as
        `for_profiles`; a paper not among `papers` is read and scanned when asked."""
        configured = all(profile in self.matcher.profiles for profile in profiles)
        matcher = self.matcher if configured else Matcher(profiles)
        known = self.known if configured else {}
        # A pass over more papers than the memo holds keeps them by object for itself only.
        given = self.by_object if configured and len(papers) <= self.limit else {}
        unseen = [paper for paper in papers if _given(given, paper) is None]
        if given and len(given) + len(unseen) > self.limit:
            given.clear()  # counted by the papers it would gain, not those it holds
            unseen = list(papers)
        contents = [_content(paper) for paper in unseen]
        fresh = _decide_new(matcher, unseen, contents, known, scans_of)
        for paper, content in zip(unseen, contents, strict=True):
            found = fresh.get(content)
            if found is None:
                found = known.get(content)
            if found is not None:
                given[id(paper)] = (paper, found)
        if configured:
            if len(self.known) + len(fresh) > self.limit:
                self.known.clear()
            self.known.update(fresh)

        def match(paper: Paper) -> dict[str, Match]:
            found = _given(given, paper)
            if found is not None:
                return found
            key = _content(paper)
            found = fresh.get(key)
            if found is None:
                found = known.get(key)
            return found if found is not None else matcher.match(paper)

        return match


def _given(
    given: Mapping[int, tuple[Paper, dict[str, Match]]], paper: Paper
) -> dict[str, Match] | None:
    """The verdicts kept for this very paper object (not another with its id), or None."""
    same = given.get(id(paper))
    return same[1] if same is not None and same[0] is paper else None


Content = tuple[object, ...]  # what a paper's verdicts depend on (`_content`)


def _decide_new(
    matcher: Matcher,
    papers: Sequence[Paper],
    contents: Sequence[Content],
    known: Mapping[Content, dict[str, Match]],
    scans_of: Callable[[Sequence[Paper]], tuple[TermBook, Sequence[ScanReading]]],
) -> dict[Content, dict[str, Match]]:
    """The matches of the papers (of these `contents`) `known` lacks, by content, decided a
    batch at a time (`digest.plan.stored.BATCH`) from their scans (asked for those only)."""
    new = dict(zip(contents, papers, strict=True))
    for content in known.keys() & new.keys():
        del new[content]
    decided: dict[Content, dict[str, Match]] = {}
    with collection_paused():  # as `digest.plan.stored` does: no cycle, all matches held
        for batch in batches(list(new.items()), BATCH):
            book, scans = scans_of([paper for _, paper in batch])
            found = matcher.match_stored_all([paper for _, paper in batch], scans, book)
            decided.update(zip((content for content, _ in batch), found, strict=True))
    return decided


def _content(paper: Paper) -> Content:
    """What a paper's verdicts depend on."""
    return (paper.key, paper.title, paper.abstract, paper.authors, paper.categories)


class DecodedPapers:
    """Candidate rows decoded to Papers, by key, for as long as the store's papers do not
    change (`Store.papers_version`); at most `limit` papers, then it starts afresh.

    Reading and decoding whole rows is most of a candidate read; a pass reads each candidate
    once for all profiles, and the next pass over an unchanged store (the day's next send
    group, `run`'s next minute) reads the candidates' keys only.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit  # a few days of new papers
        self.version: tuple[int, int] | None = None
        self.known: dict[str, Paper] = {}
        # The latest window listing kept, with the earliest start it lists from.
        self._listing: tuple[str, Sequence[Listed]] | None = None

    def valid_for(self, version: tuple[int, int]) -> None:
        """Forget every paper, and the listing, if the store's papers changed since."""
        if version != self.version:
            self.known.clear()
            self._listing = None
            self.version = version

    def get(self, key: str) -> Paper | None:
        """The Paper of `key` decoded while the store's papers did not change (`valid_for`
        empties the memory when they do, so the key alone identifies a row), or None."""
        return self.known.get(key)

    def known_of(self, keys: Iterable[str]) -> dict[str, Paper]:
        """`get` for many keys: the papers known, by key (one call a send group, not one for
        each of its 4,000 candidates)."""
        known = self.known
        return {key: paper for key in keys if (paper := known.get(key)) is not None}

    def keep(self, paper: Paper) -> None:
        """Keep a paper just decoded from its row."""
        if len(self.known) >= self.limit:
            self.known.clear()
        self.known[paper.key] = paper

    def listing(self, earliest: str) -> Sequence[Listed] | None:
        """The papers first stored at or after `earliest`, from the listing kept if it lists
        from then or before (a send group whose windows start later: the same listing, its
        older papers left out), else None."""
        if self._listing is None or self._listing[0] > earliest:
            return None
        start, listed = self._listing
        if start == earliest:
            return listed
        return [paper for paper in listed if paper.first_seen >= earliest]

    def keep_listing(self, earliest: str, listed: Sequence[Listed]) -> None:
        """Keep the listing of the papers first stored since `earliest`, if it has at most
        `limit` papers (the papers decoded are kept as far)."""
        self._listing = (earliest, listed) if len(listed) <= self.limit else None


class PassMemory:
    """What one app's planning passes share (see the module docstring)."""

    def __init__(
        self, profiles: Sequence[Profile], cache: CompiledRows | None = None, *, keep: bool = True
    ) -> None:
        """The memory of the configured `profiles`, compiled once for the app's life: loaded
        from `cache` where it holds them (`compile_cache`); with `keep`, a writable store also
        keeps what was compiled."""
        self.profiles = tuple(profiles)
        self.compiled = compile_profiles(self.profiles, cache, write=keep and cache is not None)
        self.decoded = DecodedPapers()
        self.hits = HitKeeper(self.profiles, self.compiled)
        self._verdicts: VerdictMemo | None = None
        self._suggest: SuggestMemory | None = None

    @property
    def verdicts(self) -> VerdictMemo:
        """The verdict memo of the configured profiles, made on first use."""
        if self._verdicts is None:
            self._verdicts = VerdictMemo(self.profiles, compiled=self.compiled)
        return self._verdicts

    def prepare(self, store: Store) -> None:
        """Build now what every pass uses and would otherwise build on first use: the verdict
        memo's matcher and its algebra, and the store's term book (`digest run`, before it
        freezes what it holds for good)."""
        self.verdicts.matcher.algebra  # noqa: B018 - built on first use
        self.hits.book(store, write=False)  # read now; a pass's refresh writes what it adds

    @property
    def suggest(self) -> SuggestMemory:
        """What suggestions share between passes, made on first use (digest.suggest is only
        imported by a pass that suggests: scikit-learn is slow to load)."""
        if self._suggest is None:
            from digest.suggest.memory import SuggestMemory

            self._suggest = SuggestMemory()
        return self._suggest

    def verdicts_of(
        self, store: Store, profiles: Sequence[Profile], papers: Sequence[Paper]
    ) -> Verdicts:
        """How a pass over `profiles` matches `papers`: from their stored scans (made now for
        any that lack one), the terms of `profiles` covered even if they are not configured."""

        def scans_of(new: Sequence[Paper]) -> tuple[TermBook, Sequence[ScanReading]]:
            return self.hits.scans_for(store, new, profile_terms(profiles))

        return self.verdicts.from_scans(profiles, papers, scans_of)

    def papers_of(self, store: Store) -> DecodedPapers:
        """The papers this pass need not read from `store` again (`decoded`), checked against
        the store's papers version now (nothing writes papers during a pass)."""
        self.decoded.valid_for(store.papers_version())
        return self.decoded
