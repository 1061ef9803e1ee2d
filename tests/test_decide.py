"""The decider (digest.plan.decide), step by step, on data alone: no store, no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.models import FollowedAuthor, Match, Paper, Profile, Reason, SourceStatus
from digest.plan import decide
from digest.plan.decide import (
    DigestInputs,
    LastDigest,
    Tally,
    compose_digest,
    confirm_identities,
    drop_muted,
    empty_reason,
    expiring,
    explain_empty,
    sort_candidate,
    split_citing,
    window_start,
)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 4, 7, 30, tzinfo=UTC)  # a Wednesday
SATURDAY = datetime(2026, 3, 7, 7, 30, tzinfo=UTC)
PROFILE = Profile(name="me", keywords=("widget",), window_days=3, first_run_days=2)


def _paper(key: str, *, authors: tuple[str, ...] = ("Ann Lee",), **extra: object) -> Paper:
    return Paper(key=key, title=f"Widgets {key}", authors=authors, **extra)  # type: ignore[arg-type]


def _match(paper: Paper, score: float = 1.0, kind: str = "keyword") -> Match:
    if kind == "author":
        reason = Reason("author", paper.authors[0], "authors", paper.authors[0])
    else:
        reason = Reason("keyword", "widget", "title", "widget")
    return Match(paper, (reason,), score)


# --- the decider is pure ----------------------------------------------------------------------

BLOCKED = ("sqlite3", "sqlite_utils", "httpx", "digest.store", "digest.settings", "digest.app")
PURE_RUN = f"""
import sys
from datetime import UTC, datetime

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r} or name.startswith({BLOCKED!r}):
            raise ImportError("the decider may not import " + name)

sys.meta_path.insert(0, Blocked())
from digest.models import Match, Paper, Profile, Reason
from digest.plan.decide import DigestInputs, Tally, compose_digest

now = datetime(2026, 3, 4, 7, 30, tzinfo=UTC)
paper = Paper(key="arxiv:1", title="Widgets")
tally = Tally(found=[Match(paper, (Reason("keyword", "widget", "title", "Widgets"),), 1.0)])
digest, rendered = compose_digest(Profile(name="me"), tally, DigestInputs(now=now, since=now))
print(len(digest.papers), "arxiv:1" in rendered.paper_keys)
"""


def test_the_decider_runs_with_no_store_settings_or_network_importable() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PURE_RUN], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True"]


CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def test_the_decider_never_reads_a_clock() -> None:
    tree = ast.parse(Path(decide.__file__).read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & CLOCK_CALLS


# --- window_start -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "last_run", "expected"),
    [
        (None, None, NOW - timedelta(days=2)),  # the first digest: first_run_days
        (NOW - timedelta(days=30), None, NOW - timedelta(days=3)),  # window_days
        # the machine was off for a week: everything since the last run
        (NOW - timedelta(days=30), NOW - timedelta(days=7), NOW - timedelta(days=7)),
        # never before the first digest's start
        (NOW - timedelta(days=5), NOW - timedelta(days=7), NOW - timedelta(days=5)),
        # a recent last run does not shorten the window
        (NOW - timedelta(days=30), NOW - timedelta(hours=1), NOW - timedelta(days=3)),
    ],
    ids=["first-digest", "window", "since-last-run", "not-before-origin", "recent-run"],
)
def test_window_start(
    origin: datetime | None, last_run: datetime | None, expected: datetime
) -> None:
    assert window_start(PROFILE, NOW, origin=origin, last_send_run=last_run) == expected


# --- identities, citing, sorting --------------------------------------------------------------


def test_confirm_identities_without_id_followed_profiles_keeps_the_verdicts() -> None:
    paper = _paper("arxiv:1")
    verdicts = {"me": _match(paper)}
    assert confirm_identities({}, paper, verdicts) == verdicts


def test_confirm_identities_drops_a_namesake_known_by_id() -> None:
    followed = FollowedAuthor(name="Ann Lee", openalex="A1")
    profile = Profile(name="me", authors=(followed,))
    paper = _paper("arxiv:1", author_ids=("A999",))
    verdicts = {"me": _match(paper, kind="author")}
    assert confirm_identities({"me": profile}, paper, verdicts) == {}


WATCHED = {"arxiv:2401.00001": {"W1": "Our widget paper"}}


@pytest.mark.parametrize(
    ("wanted_by", "moved"),
    [(frozenset({"me"}), True), (frozenset(), False)],
    ids=["candidate", "not-a-candidate"],
)
def test_split_citing_moves_a_citing_paper_with_its_other_reasons(
    wanted_by: frozenset[str], moved: bool
) -> None:
    paper = _paper("arxiv:1", referenced=("W1",))
    verdicts = {"me": _match(paper), "other": _match(paper)}
    rest, citing = split_citing(paper, verdicts, {"me": WATCHED}, wanted_by)
    assert ("me" in citing) is moved and ("me" in rest) is not moved
    assert "other" in rest
    if moved:
        kinds = [reason.kind for reason in citing["me"].reasons]
        assert kinds == ["cites", "keyword"]


def test_sort_candidate_counts_pools_and_keeps_verdicts_of_candidates_only() -> None:
    paper = _paper("arxiv:1", extra=(("upvotes", 9),))
    older = _paper("arxiv:1")  # a remembered verdict's older reading of the paper
    tallies = {"me": Tally(pools=True), "other": Tally(), "done": Tally()}
    verdicts = {"me": _match(older), "other": _match(older), "done": _match(older)}
    wanted_by = frozenset({"me", "other"})  # "done" received it already
    sort_candidate(paper, wanted_by, verdicts, tallies, identified={}, watched={})
    assert [m.paper for m in tallies["me"].found] == [paper]  # ranked on this reading
    assert tallies["me"].pool == [paper] and tallies["other"].pool == []  # only when pooling
    assert (tallies["me"].candidates, tallies["other"].candidates) == (1, 1)
    assert tallies["done"].found == [] and tallies["done"].candidates == 0


# --- muting and composing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authors", "kind", "kept"),
    [
        (("Bo Chen",), "keyword", False),  # a muted author
        (("Bo Chen", "Ann Lee"), "keyword", True),  # a followed author wrote it too
        (("Bo Chen",), "author", True),  # picked for a followed author
        (("Cy Dee",), "keyword", True),
    ],
    ids=["muted", "with-followed", "followed-match", "not-muted"],
)
def test_drop_muted(authors: tuple[str, ...], kind: str, kept: bool) -> None:
    profile = Profile(name="me", mute_authors=("Bo Chen",), authors=(FollowedAuthor("Ann Lee"),))
    match = _match(_paper("arxiv:1", authors=authors), kind=kind)
    assert drop_muted(profile, [match]) == ([match] if kept else [])


def test_compose_digest_mutes_ranks_and_puts_citing_papers_first() -> None:
    profile = Profile(name="me", mute_authors=("Bo Chen",))
    low, high = _match(_paper("arxiv:1"), 1.0), _match(_paper("arxiv:2"), 3.0)
    muted = _match(_paper("arxiv:3", authors=("Bo Chen",)), 9.0)
    cited = _match(_paper("arxiv:4"), 0.5)
    tally = Tally(found=[low, muted, high], citing=[cited], candidates=4)
    digest, rendered = compose_digest(profile, tally, DigestInputs(now=NOW, since=NOW))
    assert [m.paper.key for m in digest.papers] == ["arxiv:4", "arxiv:2", "arxiv:1"]
    assert rendered.paper_keys == ("arxiv:4", "arxiv:2", "arxiv:1")
    assert digest.empty_reason == ""


def test_compose_digest_fits_the_size_and_counts_the_rest() -> None:
    matches = [_match(_paper(f"arxiv:{i}"), float(i)) for i in range(40)]
    tally = Tally(found=matches, candidates=40)
    inputs = DigestInputs(now=NOW, since=NOW, clip_bytes=20_000)
    digest, _ = compose_digest(PROFILE, tally, inputs)
    assert 0 < len(digest.papers) < 40
    assert len(digest.papers) + digest.more == 40


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (None, "3 papers fetched since Tue 03 Mar 07:30, none matched"),
        (
            LastDigest(NOW - timedelta(hours=2), 0),
            "no new papers since the last digest (Wed 04 Mar 05:30)",
        ),
        (
            LastDigest(NOW - timedelta(hours=2), 1),
            "1 paper fetched since the last digest (Wed 04 Mar 05:30), none matched",
        ),
        # a digest before the window's start is not the reference
        (
            LastDigest(NOW - timedelta(days=2), 0),
            "3 papers fetched since Tue 03 Mar 07:30, none matched",
        ),
    ],
    ids=["no-digest-yet", "after-a-digest", "one-since-a-digest", "digest-before-the-window"],
)
def test_an_empty_digest_says_why(last: LastDigest | None, expected: str) -> None:
    tally = Tally(candidates=3)
    inputs = DigestInputs(now=NOW, since=NOW - timedelta(days=1))
    digest, _ = compose_digest(PROFILE, tally, inputs)
    assert digest.papers == () and digest.empty_reason == ""
    digest, rendered = explain_empty(digest, tally, inputs, last)
    assert digest.empty_reason == expected
    assert rendered.paper_keys == ()


FAILING = SourceStatus("hf_daily", failing_since=NOW - timedelta(hours=5), last_error="503")


@pytest.mark.parametrize(
    ("candidates", "now", "arxiv", "problems", "expected"),
    [
        (0, NOW, True, (), "no new papers fetched since Tue 03 Mar 07:30"),
        (1, NOW, True, (), "1 paper fetched since Tue 03 Mar 07:30, none matched"),
        (
            0,
            SATURDAY,
            True,
            (),
            "no new papers fetched since Tue 03 Mar 07:30 — arXiv announces nothing on weekends",
        ),
        (0, SATURDAY, False, (), "no new papers fetched since Tue 03 Mar 07:30"),
        (
            2,
            NOW,
            False,
            (FAILING,),
            "2 papers fetched since Tue 03 Mar 07:30, none matched; "
            "Hugging Face Daily Papers failing since Wed 04 Mar 02:30",
        ),
    ],
    ids=["nothing-fetched", "one-unmatched", "weekend", "weekend-without-arxiv", "failing"],
)
def test_empty_reason(
    candidates: int,
    now: datetime,
    arxiv: bool,
    problems: tuple[SourceStatus, ...],
    expected: str,
) -> None:
    since = NOW - timedelta(days=1)
    assert empty_reason(PROFILE, since, candidates, problems, now, arxiv=arxiv) == expected


# --- expiring ---------------------------------------------------------------------------------


def test_expiring_keeps_the_wanted_and_the_citing() -> None:
    matched, cites, neither = (
        _paper("arxiv:1"),
        _paper("arxiv:2", referenced=("W1",)),
        _paper("arxiv:3"),
    )
    verdicts = [{"me": _match(matched)}, {}, {"other": _match(neither)}]
    keys = expiring(PROFILE, [matched, cites, neither], verdicts, identified=False, watched=WATCHED)
    assert keys == ["arxiv:1", "arxiv:2"]
