"""The naive matching baseline every match figure is compared with.

A Python loop of one compiled regular expression per keyword per paper: case-insensitive, `\\b`
word boundaries, spaces and hyphens (and slashes) interchangeable between words, an optional
plural `s`/`es`, and a trailing `*` read as `\\w*`; followed authors by lower-case substring of the
joined author list. Like the real matcher it evaluates every keyword on the title and the abstract
separately (the digest shows which term matched where), and the excludes and categories only
decide eligibility. It is a speed yardstick, not a correct matcher: it misses name variants,
accents and closed compounds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from digest.models import Paper, Profile

_TERM_WORD = re.compile(r"\w+")


def term_pattern(term: str) -> re.Pattern[str]:
    """A case-insensitive regex for one term.

    `KV cache` → `\\bKV[\\s\\-/]?cache(?:s|es)?\\b`; `quantiz*` → `\\bquantiz\\w*`.
    """
    text = term.strip()
    prefix = text.endswith("*")
    words = _TERM_WORD.findall(text.rstrip("*"))
    if not words:
        return re.compile("(?!)")  # nothing left to match: never matches
    body = r"[\s\-/]?".join(re.escape(w) for w in words)
    pattern = rf"\b{body}\w*" if prefix else rf"\b{body}(?:s|es)?\b"
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class NaiveProfile:
    """A profile compiled for the baseline: one regex per term, folded author names."""

    name: str
    keywords: tuple[re.Pattern[str], ...]
    all_of: tuple[tuple[re.Pattern[str], ...], ...]
    exclude: tuple[re.Pattern[str], ...]
    authors: tuple[str, ...]
    categories: frozenset[str]


def compile_naive(profile: Profile) -> NaiveProfile:
    """Compile every keyword, group term and exclude of `profile` to its own regex."""
    return NaiveProfile(
        name=profile.name,
        keywords=tuple(term_pattern(k) for k in profile.keywords),
        all_of=tuple(tuple(term_pattern(t) for t in group) for group in profile.all_of),
        exclude=tuple(term_pattern(t) for t in profile.exclude),
        authors=tuple(n.lower() for a in profile.authors for n in a.names),
        categories=frozenset(profile.categories),
    )


def _hits(pattern: re.Pattern[str], paper: Paper) -> int:
    """How many fields (title, abstract) the pattern occurs in."""
    return (pattern.search(paper.title) is not None) + (pattern.search(paper.abstract) is not None)


def naive_match(paper: Paper, profile: NaiveProfile) -> bool:
    """True when the baseline would pick `paper` for `profile`."""
    written = "; ".join(paper.authors).lower()
    if any(name in written for name in profile.authors):
        return True
    if profile.categories and paper.categories and profile.categories.isdisjoint(paper.categories):
        return False
    if any(_hits(p, paper) for p in profile.exclude):
        return False
    found = sum(_hits(p, paper) for p in profile.keywords)  # every keyword: reasons need them all
    for group in profile.all_of:
        if all(_hits(p, paper) for p in group):
            found += 1
    return found > 0


@dataclass(frozen=True)
class NaiveRun:
    """What the baseline did within its time budget."""

    pairs: int
    matches: int
    seconds: float
    papers: int

    @property
    def pairs_per_second(self) -> float:
        """Paper × profile pairs per second."""
        return self.pairs / self.seconds if self.seconds else 0.0


def run_naive(papers: Iterable[Paper], profiles: Sequence[Profile], budget: float) -> NaiveRun:
    """Match papers in order against every profile until `budget` seconds are spent.

    Compiling the regexes is not timed (it would favour the real matcher on a short sample).
    """
    compiled = [compile_naive(p) for p in profiles]
    pairs = matches = done = 0
    started = time.perf_counter()
    for paper in papers:
        for profile in compiled:
            matches += naive_match(paper, profile)
        pairs += len(compiled)
        done += 1
        if time.perf_counter() - started >= budget:
            break
    return NaiveRun(pairs, matches, time.perf_counter() - started, done)
