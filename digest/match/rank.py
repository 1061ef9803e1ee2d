"""Ranking: followed authors first, then more distinct terms, title hits above abstract hits,
then upvotes, recency and the key (so the order is deterministic).

Worked example: a paper by a followed author with one keyword in its abstract scores
100 + 10 = 110; one with two keywords, one of them in the title, scores 10 + 10 + 1 = 21.
Equal scores go by upvotes, then the newest, then the paper's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from digest.models import Match, Paper, Reason

FOLLOWED = 100.0
PER_TERM = 10.0
PER_TITLE_TERM = 1.0


def points(followed: bool, terms: int, title_terms: int) -> float:
    """The score from its parts: a followed author, distinct terms, distinct terms in titles."""
    return FOLLOWED * followed + PER_TERM * terms + PER_TITLE_TERM * title_terms


def score(reasons: Sequence[Reason]) -> float:
    """Followed authors first (100), then 10 per distinct term, plus 1 per term in the title."""
    topical = [r for r in reasons if r.kind != "author"]
    terms = {r.term for r in topical}
    in_title = {r.term for r in topical if r.field == "title"}
    return points(len(topical) < len(reasons), len(terms), len(in_title))


def rank_key(value: float, paper: Paper) -> tuple[float, int, int, str]:
    """The sort key of a match with score `value`: best first."""
    published = paper.published.toordinal() if paper.published else 0
    return (-value, -paper.upvotes, -published, paper.key)


def rank(matches: Iterable[Match]) -> tuple[Match, ...]:
    """Best first: score, then upvotes, then the newest, then the key (deterministic)."""
    return tuple(sorted(matches, key=lambda m: rank_key(m.score, m.paper)))
