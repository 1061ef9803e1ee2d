"""Profile lint (`digest match --lint`): terms that cannot match, match nothing or too much,
terms whose every hit the profile's own filters drop, and followed authors who wrote none of
the papers.

Worked example: over the last 30 days' 3,000 papers, a keyword ``model`` found in 1,900 of
them warns "matches 1900 of 3000 papers (63%): too broad?"; a followed ``Jane Doe`` found in
none warns "wrote none of the 3000 papers (another spelling? add it to aliases)". A keyword
``flaky test*`` found only in cs.SE papers, in a profile whose categories are ``cs.LG``, warns
"matched 2 of the 3000 papers, but every one is dropped: 2 by categories (cs.LG)".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal

from digest.match.matcher import Matcher
from digest.match.rules import passes_categories, wanted_categories
from digest.match.terms import TermKey, compile_term
from digest.models import Paper, Profile

LintKind = Literal["keyword", "all_of", "exclude", "author"]


@dataclass(frozen=True, slots=True)
class LintWarning:
    """Something in a profile that probably does not do what its author wants."""

    profile: str
    kind: LintKind
    term: str
    problem: str


@dataclass(slots=True)
class _Tally:
    """What the papers showed of a profile's terms and followed authors."""

    total: int = 0  # papers read
    terms: Counter[TermKey] = field(default_factory=Counter)  # papers holding each term
    kept: Counter[TermKey] = field(default_factory=Counter)  # ... that the filters let through
    dropped: dict[TermKey, Counter[str]] = field(default_factory=dict)  # the others, by filter
    authors: Counter[str] = field(default_factory=Counter)  # papers by each followed author

    def add(self, found: frozenset[TermKey], authors: set[str], drops: str) -> None:
        """Count one paper: the terms found in it, its followed authors, and the filter that
        drops it from topic matches ('' if none)."""
        self.total += 1
        self.terms.update(found)
        self.authors.update(authors)
        if not drops:
            self.kept.update(found)
            return
        for key in found:
            self.dropped.setdefault(key, Counter())[drops] += 1

    def all_dropped(self, key: TermKey) -> bool:
        """True when the term was found, but only in papers a filter drops."""
        return bool(self.terms[key]) and not self.kept[key]


def lint_profile(
    profile: Profile, papers: Iterable[Paper], *, broad_share: float = 0.25
) -> list[LintWarning]:
    """Warn about terms that cannot match, match nothing, or match more than `broad_share` of
    `papers`, and followed authors who wrote none of them."""
    tally = _tally(profile, papers)
    warnings: list[LintWarning] = []
    for kind, raw in _profile_terms(profile):
        problem = _term_problem(profile, kind, raw, tally, broad_share)
        if problem:
            warnings.append(LintWarning(profile.name, kind, raw, problem))
    return warnings + _author_warnings(profile, tally)


def _tally(profile: Profile, papers: Iterable[Paper]) -> _Tally:
    """Read every paper once for the profile and count what its terms and authors found."""
    matcher = Matcher([profile])
    wanted = wanted_categories(profile.categories)
    excludes = [(raw, compile_term(raw).key) for raw in profile.exclude]
    tally = _Tally()
    for paper in papers:
        hits = matcher.read(paper)
        authors = {hit.author.name for hit in hits.authors.get(0, [])}
        tally.add(hits.found, authors, _dropped_by(paper, hits.found, wanted, excludes))
    return tally


def _profile_terms(profile: Profile) -> list[tuple[LintKind, str]]:
    """Every term of the profile with its role: keywords, excludes, then `all_of` terms."""
    roles: tuple[tuple[LintKind, Iterable[str]], ...] = (
        ("keyword", profile.keywords),
        ("exclude", profile.exclude),
        ("all_of", chain.from_iterable(profile.all_of)),
    )
    return [(kind, term) for kind, terms in roles for term in terms]


def _term_problem(
    profile: Profile, kind: LintKind, raw: str, tally: _Tally, broad_share: float
) -> str:
    """What is wrong with one term of the profile ('' if nothing)."""
    term = compile_term(raw)
    if not term.usable:
        return "cannot match anything"
    hits = tally.terms[term.key]
    problem = _coverage_problem(hits, tally.total, broad_share)
    if problem or kind == "exclude" or not tally.all_dropped(term.key):
        return problem
    return _filtered_problem(hits, tally.total, tally.dropped[term.key], profile)


def _author_warnings(profile: Profile, tally: _Tally) -> list[LintWarning]:
    """The followed authors who wrote none of the papers (none when there were no papers)."""
    if not tally.total:
        return []
    problem = f"wrote none of the {tally.total} papers (another spelling? add it to aliases)"
    return [
        LintWarning(profile.name, "author", author.name, problem)
        for author in profile.authors
        if not tally.authors[author.name]
    ]


def _coverage_problem(hits: int, total: int, broad_share: float) -> str:
    """`matched none` or `too broad?` ('' when the term's share of the papers is reasonable)."""
    if not total:
        return ""
    if hits == 0:
        return f"matched none of the {total} papers"
    if hits / total > broad_share:
        return f"matches {hits} of {total} papers ({hits / total:.0%}): too broad?"
    return ""


def _dropped_by(
    paper: Paper,
    found: Iterable[TermKey],
    wanted: frozenset[str],
    excludes: list[tuple[str, TermKey]],
) -> str:
    """The filter that keeps `paper` out of a topic match ('' if none): its categories, else
    the first exclude term found in it."""
    if not passes_categories(paper, wanted):
        return "categories"
    present = set(found)
    return next((f"exclude {raw!r}" for raw, key in excludes if key in present), "")


def _filtered_problem(hits: int, total: int, drops: Counter[str], profile: Profile) -> str:
    """`matched 3 of the 5 papers, but every one is dropped: 2 by categories (cs.LG), 1 by
    exclude 'medical imaging'` (categories first, then excludes in the profile's order)."""
    order = ["categories", *(f"exclude {raw!r}" for raw in profile.exclude)]
    labels = {"categories": f"categories ({', '.join(profile.categories)})"}
    parts = [f"{drops[name]} by {labels.get(name, name)}" for name in order if drops[name]]
    return f"matched {hits} of the {total} papers, but every one is dropped: " + ", ".join(parts)
