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
from dataclasses import dataclass
from typing import Literal

from digest.match.matcher import Matcher
from digest.match.rules import passes_categories
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


def lint_profile(
    profile: Profile, papers: Iterable[Paper], *, broad_share: float = 0.25
) -> list[LintWarning]:
    """Warn about terms that cannot match, match nothing, or match more than `broad_share` of
    `papers`, and followed authors who wrote none of them."""
    matcher = Matcher([profile])
    term_hits: Counter[TermKey] = Counter()
    kept: Counter[TermKey] = Counter()  # hits in papers the profile's filters let through
    dropped: dict[TermKey, Counter[str]] = {}  # the other hits, by the filter that drops them
    author_hits: Counter[str] = Counter()
    wanted = frozenset(c.strip().lower() for c in profile.categories if c.strip())
    excludes = [(raw, compile_term(raw).key) for raw in profile.exclude]
    total = 0
    for paper in papers:
        hits = matcher.read(paper)
        total += 1
        term_hits.update(hits.found)
        author_hits.update({hit.author.name for hit in hits.authors.get(0, [])})
        drops = _dropped_by(paper, hits.found, wanted, excludes)
        for key in hits.found:
            if drops:
                dropped.setdefault(key, Counter())[drops] += 1
            else:
                kept[key] += 1
    warnings: list[LintWarning] = []
    terms: list[tuple[LintKind, str]] = [("keyword", t) for t in profile.keywords]
    terms += [("exclude", t) for t in profile.exclude]
    terms += [("all_of", t) for group in profile.all_of for t in group]
    for kind, raw in terms:
        term = compile_term(raw)
        if not term.usable:
            warnings.append(LintWarning(profile.name, kind, raw, "cannot match anything"))
            continue
        problem = _coverage_problem(term_hits[term.key], total, broad_share)
        if not problem and kind != "exclude" and term_hits[term.key] and not kept[term.key]:
            problem = _filtered_problem(term_hits[term.key], total, dropped[term.key], profile)
        if problem:
            warnings.append(LintWarning(profile.name, kind, raw, problem))
    for author in profile.authors:
        if total and not author_hits[author.name]:
            problem = f"wrote none of the {total} papers (another spelling? add it to aliases)"
            warnings.append(LintWarning(profile.name, "author", author.name, problem))
    return warnings


def _coverage_problem(hits: int, total: int, broad_share: float) -> str:
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
    parts = []
    for name in order:
        if drops[name]:
            label = (
                f"categories ({', '.join(profile.categories)})" if name == "categories" else name
            )
            parts.append(f"{drops[name]} by {label}")
    return f"matched {hits} of the {total} papers, but every one is dropped: " + ", ".join(parts)
