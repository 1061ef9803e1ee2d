"""Matching through stored hits, as a send does: the papers ingested into a real SQLite store,
scanned once (`HitKeeper.refresh`), then matched from their stored scans (`Matcher.match_stored`).

The tests run the same cases through this path and through `match_profiles` (the text read and
scanned at match time) and require the same verdicts, scores and reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.match import Matcher
from digest.match.hitscan import HitScanner
from digest.match.rank import rank
from digest.match.termbook import TermBook
from digest.models import Match, Paper, Profile
from digest.plan.hits import HitKeeper
from digest.store import EPOCH, Store

STORED_AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)

# What a match says, without the stored paper's bookkeeping (sources, first seen).
Said = tuple[str, tuple[object, ...], float]


def said(matches: Sequence[Match]) -> list[Said]:
    """Each match as (paper key, reasons, score), in order."""
    return [(m.paper.key, m.reasons, m.score) for m in matches]


def match_stored_profiles(
    papers: Sequence[Paper], profiles: Sequence[Profile], store: Store | None = None
) -> dict[str, tuple[Match, ...]]:
    """Every profile's ranked matches among `papers`, from scans stored at ingest."""
    store = store or Store.open(None)
    store.ingest("test", papers, (), {}, STORED_AT)
    keeper = HitKeeper(profiles)
    keeper.refresh(store, EPOCH)
    stored = list(store.papers_seen_since(EPOCH))
    book, scans = keeper.scans_for(store, stored)
    matcher = Matcher(profiles)
    found: dict[str, list[Match]] = {profile.name: [] for profile in profiles}
    # Decided together, as a planning pass does (`Matcher.match_stored_all`).
    for matches in matcher.match_stored_all(stored, scans, book):
        for name, match in matches.items():
            found[name].append(match)
    return {name: rank(matches) for name, matches in found.items()}


def scanners_made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(book size, first term scanned) of every HitScanner made from now on."""
    made: list[tuple[int, int]] = []
    real = HitScanner.__init__

    def counting(self: HitScanner, book: TermBook, start: int = 0, *rest: Any) -> None:
        made.append((len(book), start))
        real(self, book, start, *rest)

    monkeypatch.setattr(HitScanner, "__init__", counting)
    return made
