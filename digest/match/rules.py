"""Verdicts: DESIGN.md's profile rules applied to what the scan found, with set and integer work.

A paper matches a profile when a followed author wrote it, or when it passes the profile's
categories, holds no `exclude` term, and some keyword or some whole `all_of` group occurs in it.
Papers by followed authors ignore `exclude` and `categories`.

Worked example: a profile with keywords ``KV cache`` and ``quantiz*``, the group
``[diffusion, language model]``, exclude ``medical`` and categories ``cs.LG``. A cs.LG paper
whose title holds ``KV-caches`` and whose abstract holds ``quantized`` and ``diffusion``: the
scan found the keys of ``KV cache`` (title), ``quantiz*`` and ``diffusion`` (abstract); no
exclude key, the category passes, so the verdict is a match on keywords 0 and 1 (the group lacks
``language model``), score 10 × 2 + 1 (one term in the title) = 21. No `Reason` is built yet:
that happens only for the papers that make a digest (`reasons.py`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import NamedTuple, Protocol

from digest.match.authors import AuthorHit, Name, followed_names
from digest.match.hitscan import FieldName, ScanReading, Spans
from digest.match.rank import points
from digest.match.scan import Found, occurrences
from digest.match.terms import Term, TermKey, compile_term, usable
from digest.match.text import Words
from digest.models import FollowedAuthor, Paper, Profile, Reason, ReasonField, ReasonKind


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    """A profile with every term compiled once, ready to match many papers."""

    profile: Profile
    keywords: tuple[Term, ...]
    all_of: tuple[tuple[Term, ...], ...]
    exclude: tuple[Term, ...]
    authors: tuple[tuple[FollowedAuthor, Name], ...]
    categories: frozenset[str]
    # Lookup tables: keyword positions by term key, exclude keys, and the groups that can match.
    keyword_positions: Mapping[TermKey, tuple[int, ...]]
    keyword_keys: frozenset[TermKey]  # the keys of `keyword_positions`, as a set
    exclude_keys: frozenset[TermKey]
    groups: tuple[tuple[Term, ...], ...]

    def terms(self) -> Iterable[Term]:
        """Every usable term the profile has, in any role."""
        yield from usable(self.keywords)
        yield from usable(self.exclude)
        yield from chain.from_iterable(self.groups)


def compile_profile(profile: Profile) -> CompiledProfile:
    """Compile a profile's keywords, groups, excludes and authors."""
    keywords = _compiled(profile.keywords)
    return assemble_profile(
        profile,
        keywords,
        tuple(_compiled(group) for group in profile.all_of if group),
        _compiled(profile.exclude),
        tuple(followed_names(profile.authors)),
        _keyword_positions(keywords),
    )


def assemble_profile(
    profile: Profile,
    keywords: tuple[Term, ...],
    all_of: tuple[tuple[Term, ...], ...],
    exclude: tuple[Term, ...],
    authors: tuple[tuple[FollowedAuthor, Name], ...],
    positions: Mapping[TermKey, tuple[int, ...]],
) -> CompiledProfile:
    """A compiled profile from its compiled parts (`compile_profile`'s, or those a cache kept:
    `compile_cache`), its lookup tables derived from them."""
    return CompiledProfile(
        profile=profile,
        keywords=keywords,
        all_of=all_of,
        exclude=exclude,
        authors=authors,
        categories=wanted_categories(profile.categories),
        keyword_positions=positions,
        keyword_keys=frozenset(positions),
        exclude_keys=frozenset(t.key for t in usable(exclude)),
        groups=_possible_groups(all_of),
    )


def _compiled(raws: Iterable[str]) -> tuple[Term, ...]:
    """Each of `raws` compiled (`compile_term`), in order."""
    return tuple(map(compile_term, raws))


def _possible_groups(all_of: Iterable[tuple[Term, ...]]) -> tuple[tuple[Term, ...], ...]:
    """The groups that can match: one with a term that cannot match never matches as a whole."""
    return tuple(g for g in all_of if all(t.usable for t in g))


def _keyword_positions(keywords: Sequence[Term]) -> dict[TermKey, tuple[int, ...]]:
    """The positions of the usable keywords by term key (spellings that fold alike share one)."""
    positions: defaultdict[TermKey, list[int]] = defaultdict(list)
    for position, term in enumerate(keywords):
        if term.usable:
            positions[term.key].append(position)
    return {key: tuple(found) for key, found in positions.items()}


def wanted_categories(categories: Iterable[str]) -> frozenset[str]:
    """A profile's categories as `passes_categories` compares them: trimmed, lower case."""
    return frozenset(c.strip().lower() for c in categories if c.strip())


def passes_categories(paper: Paper, wanted: frozenset[str]) -> bool:
    """True when the profile names no category, the paper has none, or they share one.

    A profile category without a dot (`cs`) stands for its whole archive (`cs.LG`, `cs.CL`, …).
    """
    if not wanted or not paper.categories:
        return True
    for category in paper.categories:
        category = category.lower()
        if category in wanted or category.split(".")[0] in wanted:
            return True
    return False


Located = tuple[ReasonField, str, Spans]


class FieldText(Protocol):
    """A field as reasons need it: its text, and where in it a found term occurs."""

    @property
    def text(self) -> str:
        """The field as the paper gives it."""
        ...

    def spans(self, key: TermKey) -> Spans:
        """The character spans of the term's occurrences, in text order (it was found)."""
        ...


class ScannedField:
    """A field read and scanned now: spans are worked out from the reading when asked."""

    __slots__ = ("found", "words")

    def __init__(self, words: Words, found: Found) -> None:
        self.words = words
        self.found = found

    @property
    def text(self) -> str:
        """The field as the paper gives it."""
        return self.words.text

    def spans(self, key: TermKey) -> Spans:
        """The character spans of the term's occurrences, from the reading's offsets."""
        return self.words.char_spans(occurrences(self.found[key]))


class StoredField(NamedTuple):
    """A field whose scan was stored: its found terms by key, with their numbers in the scan
    (spans are read from it only when a reason needs them)."""

    text: str
    found: Mapping[TermKey, int]
    scan: ScanReading
    field: FieldName

    def spans(self, key: TermKey) -> Spans:
        """The character spans of the term's occurrences, as stored."""
        return self.scan.spans(self.field, self.found[key])


@dataclass(frozen=True, slots=True)
class PaperHits:
    """What the scan found in one paper: term occurrences per field, and its followed authors."""

    paper: Paper
    title: FieldText
    abstract: FieldText
    in_title: Collection[TermKey]  # the terms found in the title
    in_abstract: Collection[TermKey]
    authors: Mapping[int, list[AuthorHit]]  # profile number -> followed authors found
    found: frozenset[TermKey]  # every term in either field
    # Where each term was found, as reasons need it: filled as matches are built, so many
    # profiles with one term share the work.
    located: dict[TermKey, list[Located]] = field(default_factory=dict)
    # The reasons built so far, by kind, keyword as written and term.
    reasons: dict[tuple[ReasonKind, str, TermKey], tuple[Reason, ...]] = field(default_factory=dict)


class Verdict(NamedTuple):
    """One profile's match of one paper, before its reasons are built. A NamedTuple, not a
    frozen dataclass: a lab's day makes 56k of them a pass, at 0.45 µs each instead of 1.15."""

    profile: int
    score: float
    authors: tuple[AuthorHit, ...]  # the followed authors found, in listing order
    keywords: tuple[int, ...]  # positions of the matched keywords, in profile order
    groups: tuple[int, ...]  # positions (in `CompiledProfile.groups`) of whole groups


def verdict(
    hits: PaperHits,
    number: int,
    compiled: CompiledProfile,
    authors: Sequence[AuthorHit],
    keywords: Iterable[int],
    groups: Iterable[int],
) -> Verdict | None:
    """Profile `number`'s verdict on a scanned paper, given the followed authors, the positions
    of the keywords and the whole groups the scan found for it; None when it does not match."""
    followed = in_listing_order(authors)
    if not followed and not _eligible(hits, compiled):
        return None
    matched, whole = tuple(sorted(keywords)), tuple(sorted(groups))
    if not followed and not matched and not whole:
        return None
    return scored_verdict(hits.in_title, number, compiled, followed, matched, whole)


# Followed authors in the order the paper lists them, then the profile's spellings.
listing_order = attrgetter("position", "rank")


def in_listing_order(hits: Sequence[AuthorHit] | None) -> tuple[AuthorHit, ...]:
    """A pair's followed authors in `listing_order` (none for None)."""
    return tuple(sorted(hits, key=listing_order)) if hits else ()


def scored_verdict(
    in_title: Collection[TermKey],
    number: int,
    compiled: CompiledProfile,
    followed: tuple[AuthorHit, ...],
    matched: tuple[int, ...],
    whole: tuple[int, ...],
) -> Verdict:
    """The verdict of a pair known to match, with its followed authors (in listing order),
    matched keyword positions and whole groups (in order), given the terms the paper's title
    holds. Its score (`rank.points`): its followed authors, the distinct terms of the matched
    keywords and whole groups, and how many of those are in the title."""
    terms = [compiled.keywords[p] for p in matched]
    terms += chain.from_iterable(compiled.groups[i] for i in whole)
    title_terms = {t.raw for t in terms if t.key in in_title}
    score = points(bool(followed), len({t.raw for t in terms}), len(title_terms))
    return Verdict(number, score, followed, matched, whole)


def _eligible(hits: PaperHits, compiled: CompiledProfile) -> bool:
    """Keyword matches count only for papers in the profile's categories without excluded terms."""
    if not passes_categories(hits.paper, compiled.categories):
        return False
    return hits.found.isdisjoint(compiled.exclude_keys)
