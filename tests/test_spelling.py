"""Spelling the term book's new terms, here or in a child process (`digest.plan.spelling`).

The rule: a child spells exactly as this process does, and is always reaped, whether it
answers, fails, dies, answers something else or runs out of time; a child that gives no rows
leaves the terms spelled here, never unspelled.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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


def _python(code: str) -> list[str]:
    """A child that runs `code` instead of spelling."""
    return [sys.executable, "-c", code]


def test_a_child_spells_exactly_as_this_process_does() -> None:
    keys = _keys()
    assert spelled_apart(keys) == spelled_here(keys)
    assert spelled_here(_keys(["analysis"])) == [("analysis", False, "", "analysis:;analyses:")]


def test_the_child_imports_this_package_wherever_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a `digest/` folder of the working directory, and with no import path set."""
    (tmp_path / "digest").mkdir()
    (tmp_path / "digest" / "__init__.py").write_text("raise SystemExit('the wrong digest')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert spelled_apart(_keys()) == spelled_here(_keys())


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("raise SystemExit('no dictionary')", r"exit status 1: no dictionary"),
        ("import os; os._exit(3)", r"exit status 3: no message"),
        ("print('spelled')", r"an answer that is not JSON"),
        ("print('[]')", r"an answer that is not 10 rows"),
        (
            "import json; print(json.dumps([['other', False, '', 'other:']] * 10))",
            r"an answer with another row for 'statespacemodel'",
        ),
        (
            "import json; print(json.dumps([['statespacemodel', 0, '', '']] * 10))",
            r"an answer with another row for 'statespacemodel'",
        ),
    ],
    ids=["fails", "dies", "not-json", "too-few-rows", "other-terms", "not-a-row"],
)
def test_a_child_that_does_not_answer_the_rows_fails(code: str, why: str) -> None:
    with pytest.raises(SpellingFailed, match=why):
        spelled_apart(_keys(), command=_python(code))


def test_a_child_that_outlives_its_time_is_killed_and_reaped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(SpellingFailed, match=r"no answer in 3 s"):
        spelled_apart(_keys(), timeout=3, command=_python(code))
    assert time.monotonic() - started < 30  # killed, not waited for (it sleeps 60 s)
    with pytest.raises(ProcessLookupError):  # gone, and reaped: not even a zombie
        os.kill(int(pid_file.read_text()), 0)


def test_a_child_that_cannot_start_fails(tmp_path: Path) -> None:
    with pytest.raises(SpellingFailed, match=r"could not start"):
        spelled_apart(_keys(), command=[str(tmp_path / "no-such-python")])


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


def test_an_installed_package_puts_nothing_before_the_standard_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed, the package's folder is site-packages: the child inherits the environment as
    it is, or site-packages would come before the standard library on its import path."""
    import site

    here = str(Path(spelling.__file__).resolve().parents[2])
    monkeypatch.setattr(site, "getusersitepackages", lambda: "/nowhere")
    monkeypatch.setattr(site, "getsitepackages", lambda: ["/nowhere/else"])
    environment = spelling._child_environment()  # as from a source checkout
    assert environment is not None and environment["PYTHONPATH"].split(os.pathsep)[0] == here
    monkeypatch.setattr(site, "getsitepackages", lambda: [here])
    assert spelling._child_environment() is None
