"""Profile lint (`digest match --lint`): terms that cannot match, match nothing or too much,
and followed authors who wrote none of the papers.

Worked example: over the last 30 days' 3,000 papers, a keyword ``model`` found in 1,900 of
them warns "matches 1900 of 3000 papers (63%): too broad?"; a followed ``Jane Doe`` found in
none warns "wrote none of the 3000 papers (another spelling? add it to aliases)".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from digest.match.matcher import Matcher
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
    author_hits: Counter[str] = Counter()
    total = 0
    for paper in papers:
        hits = matcher.read(paper)
        total += 1
        term_hits.update(hits.found)
        author_hits.update({hit.author.name for hit in hits.authors.get(0, [])})
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
