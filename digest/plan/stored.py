"""Matching every paper stored since a time from its stored hits (`digest match --all`).

The papers' stored scans are first brought up to the profiles' terms (`HitKeeper.refresh`: a
paper stored or updated since its scan is scanned again, and one scanned before a term was
added is scanned for the new terms alone, its scan extended and written). The papers are then
read a batch at a time and decided together from their scans (`Matcher.match_stored_all`): no
title or abstract is read to decide, and the matches are those of reading the text
(`tests/test_match_all.py`).

Worked example: 100 profiles over 60,000 stored papers, all scanned when they were stored.
One profile adds ``state space model``; `digest match --all --days 30` scans the 30 days'
papers for that one term (an automaton of its spellings), writes the extended scans, and
decides every profile on every one of those papers from its scan. The next `match --all` scans
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from digest.match import Matcher
from digest.match.matcher import collection_paused
from digest.match.rank import rank
from digest.models import Match, Paper
from digest.plan.hits import HitKeeper
from digest.store import Store
from digest.store.merge import batches

# Papers decided together: a batch's readings and matrices are held while its matches are
# built. On bench's 20,000 papers × 100 profiles, batches of 1,000 peaked at 195 MB and took
# 7.5 s, batches of 5,000 at 283 MB and 8.5 s (same run).
BATCH = 1_000


class StoredMatches(NamedTuple):
    """Every profile's ranked matches among the papers stored since a time, and the papers."""

    matches: dict[str, tuple[Match, ...]]
    papers: tuple[Paper, ...]  # oldest first, as `Store.papers_seen_since` gives them


def stored_matches(
    store: Store, keeper: HitKeeper, matcher: Matcher, since: datetime
) -> StoredMatches:
    """Each of `matcher`'s profiles' ranked matches among the papers first stored at or after
    `since`, decided from their stored scans (brought up to `keeper`'s terms first)."""
    keeper.refresh(store, since)
    found: dict[str, list[Match]] = {profile.name: [] for profile in matcher.profiles}
    papers: list[Paper] = []
    # The collector paused for the pass, reading included: it makes no cycle, and its
    # matches are held to the end (`Matcher.best_stored` says what that saves).
    with collection_paused():
        read = batches(store.papers_seen_since(since), BATCH)
        for batch, scans, book in keeper.scanned(store, read):
            papers.extend(batch)
            for matches in matcher.match_stored_all(batch, scans, book):
                for name, match in matches.items():
                    found[name].append(match)
    return StoredMatches({name: rank(matches) for name, matches in found.items()}, tuple(papers))
