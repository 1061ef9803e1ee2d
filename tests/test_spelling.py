"""Spelling the term book's new terms, here or in a child process (`digest.plan.spelling`).

The rule: a child spells exactly as this process does, and is always reaped, whether it
answers, fails, dies or runs out of time; a child that gives no rows leaves the terms spelled
here, never unspelled.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Sequence

import pytest

from digest.match import compile_term, match_profiles
from digest.match.terms import TermKey
from digest.plan import spelling
from digest.plan.spelling import SpellingFailed, spelled_apart, spelled_here, term_rows
from digest.store import EPOCH, Store
from digest.store.hits import TermRow
from tests.stored_path import match_stored_profiles, said
from tests.test_hits import SEED_PROFILES
from tests.test_match import seed_papers

KEYWORDS = (
    "state space model",
    "analysis",
    "corpus",
    "KV cache",
    "index",
    "graph neural network",
    "news",
    "e-commerce",
    "policy",
    "mixture of experts",
)


def _keys(keywords: Sequence[str] = KEYWORDS) -> list[TermKey]:
    return [compile_term(keyword).key for keyword in keywords]


# Run in the child process (spawned: it imports this module by name).
def _sleeps(keys: Sequence[TermKey]) -> list[TermRow]:
    time.sleep(60)
    return []


def _raises(keys: Sequence[TermKey]) -> list[TermRow]:
    raise ValueError("no dictionary")


def _dies(keys: Sequence[TermKey]) -> list[TermRow]:
    os._exit(3)


def _no_child_left() -> bool:
    return multiprocessing.active_children() == []


def test_a_child_spells_exactly_as_this_process_does() -> None:
    keys = _keys()
    assert spelled_apart(keys) == spelled_here(keys)
    assert spelled_here(_keys(["analysis"])) == [("analysis", False, "", "analysis:;analyses:")]
    assert _no_child_left()


@pytest.mark.parametrize(
    ("spell", "why"),
    [
        (_raises, "ValueError: no dictionary"),
        (_dies, "the child process ended without an answer"),
    ],
    ids=["raises", "dies"],
)
def test_a_child_that_fails_is_reported_and_reaped(spell: spelling.Speller, why: str) -> None:
    with pytest.raises(SpellingFailed, match=why):
        spelled_apart(_keys(), spell=spell)
    assert _no_child_left()


def test_a_child_that_outlives_its_time_is_killed_and_reaped() -> None:
    started = time.monotonic()
    with pytest.raises(SpellingFailed, match=r"no answer in 1 s"):
        spelled_apart(_keys(), timeout=1, spell=_sleeps)
    assert time.monotonic() - started < 30  # killed, not waited for (it sleeps 60 s)
    assert _no_child_left()


def test_many_terms_go_to_a_child_and_a_failed_child_leaves_them_spelled_here(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keys = _keys()
    monkeypatch.setattr(spelling, "SPELL_APART", len(keys))
    started: list[object] = []
    real_apart = spelling.spelled_apart

    def counting(*args: object, **kwargs: object) -> list[TermRow]:
        started.append(args)
        return real_apart(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(spelling, "spelled_apart", counting)
    assert term_rows(keys[:-1]) == spelled_here(keys[:-1]) and not started  # few: here
    assert term_rows(keys) == spelled_here(keys) and len(started) == 1  # many: a child
    with caplog.at_level(logging.WARNING, logger="digest.plan.spelling"):
        assert term_rows(keys, timeout=0) == spelled_here(keys)  # no answer at once: here
    assert (
        "spelling 10 new terms in a child process: no answer in 0 s; spelling them here"
        in caplog.text
    )
    assert _no_child_left()


def test_a_book_spelled_by_a_child_stores_and_matches_as_one_spelled_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    papers = seed_papers()
    here, apart = Store.open(None), Store.open(None)
    stored_here = match_stored_profiles(papers, SEED_PROFILES, here)
    monkeypatch.setattr(spelling, "SPELL_APART", 1)
    stored_apart = match_stored_profiles(papers, SEED_PROFILES, apart)
    assert apart.term_rows() == here.term_rows() and len(here.term_rows()) > 10
    direct = match_profiles(list(apart.papers_seen_since(EPOCH)), SEED_PROFILES)
    assert {n: said(m) for n, m in stored_apart.items()} == {n: said(m) for n, m in direct.items()}
    assert {n: said(m) for n, m in stored_here.items()} == {n: said(m) for n, m in direct.items()}
    assert _no_child_left()
