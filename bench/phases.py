"""The benchmark phases. Each runs in its own process (see bench/run.py), so its peak RSS is its
own, and returns its figures.

Figures whose target is stated for the full size are judged only at `--size full`; at smaller
sizes they are reported with no verdict.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.added import phase_added
from bench.generate import (
    ProfileShape,
    batch_time,
    iter_listings,
    iter_papers,
    iter_profiles,
    load_corpus,
    write_jsonl,
)
from bench.naive import NaiveRun, run_naive
from digest.match import Best, best_matches, match_profiles
from digest.models import Match, Paper, Profile, Reason
from digest.store.merge import batches

DIGEST_ITEMS = 50  # a digest's max_items
MatchFn = Callable[[Iterable[Paper], list[Profile]], dict[str, Any]]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_SHAPE = ProfileShape()  # 50 keywords, 5 all_of groups, 20 authors, 3 excludes
KW_SHAPE = ProfileShape(keywords=100, all_of=0, authors=20, excludes=0)  # the matching issue's
MB = 1024 * 1024


@dataclass(frozen=True)
class SizePlan:
    """How big every phase is at one `--size`."""

    name: str
    db_papers: int  # papers ingested into the benchmark database
    batch: int  # papers per Store.ingest call
    checkpoints: tuple[int, ...]  # ingest figures are taken when this many papers are in
    day: tuple[int, int]  # (papers, profiles) of "one day"
    kw: tuple[int, int]  # (papers, profiles of 100 keywords + 20 authors)
    year: tuple[int, int]  # (papers, profiles) of "a year", streamed from the store
    render_runs: int
    e2e: tuple[int, int]  # (new papers, profiles) of the full day end to end
    startup_runs: int
    added: tuple[int, int]  # papers in the store, profiles: add a keyword, `match --all`
    match_budget: float  # seconds our matcher may take per phase before it is sampled
    naive_budget: float  # seconds of baseline per phase (always a sample)
    e2e_budget: float  # seconds of sending before the rest is extrapolated
    ingest_budget: float  # seconds of generating + ingesting before the database stops growing

    @property
    def batches(self) -> int:
        """How many ingest batches fill the database."""
        return math.ceil(self.db_papers / self.batch)


SIZES: dict[str, SizePlan] = {
    # Seconds: for the CI smoke test. Shapes are the real ones, counts tiny.
    "smoke": SizePlan(
        name="smoke",
        db_papers=400,
        batch=100,
        checkpoints=(100, 400),
        day=(200, 10),
        kw=(200, 4),
        year=(400, 4),
        render_runs=3,
        e2e=(100, 4),
        added=(1_000, 4),
        startup_runs=3,
        match_budget=5,
        naive_budget=0.3,
        e2e_budget=20,
        ingest_budget=60,
    ),
    # A minute or two: to check the harness and see trends.
    "small": SizePlan(
        name="small",
        db_papers=10_000,
        batch=1000,
        checkpoints=(1_000, 10_000),
        day=(2_000, 100),
        kw=(5_000, 20),
        year=(10_000, 20),
        render_runs=10,
        e2e=(2_000, 20),
        added=(10_000, 20),
        startup_runs=5,
        match_budget=30,
        naive_budget=5,
        e2e_budget=60,
        ingest_budget=120,
    ),
    # What RESULTS.md reports; under 10 minutes on 2 cores thanks to the budgets.
    "full": SizePlan(
        name="full",
        db_papers=250_000,
        batch=1000,
        checkpoints=(1_000, 10_000, 100_000, 250_000),
        day=(2_000, 1_000),
        kw=(10_000, 100),
        year=(250_000, 100),
        render_runs=20,
        e2e=(2_000, 100),
        added=(60_000, 100),
        startup_runs=10,
        match_budget=50,
        naive_budget=10,
        e2e_budget=75,
        ingest_budget=270,
    ),
}
FULL = SIZES["full"]


@dataclass(frozen=True)
class Figure:
    """One reported number, its target and whether it meets it (None: not judged)."""

    key: str
    label: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def judged(value: float, limit: float, applies: bool, *, at_least: bool = False) -> bool | None:
    """Whether `value` meets the limit (≤, or ≥ with `at_least`); None when it does not apply."""
    if not applies:
        return None
    return value >= limit if at_least else value <= limit


# --- memory ---------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    """A `Vm…` line of /proc/self/status in kB (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mb() -> float:
    """This process's peak resident set so far (VmHWM; ru_maxrss where there is no /proc)."""
    kb = _status_kb("VmHWM")
    if not kb:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def reset_peak_rss() -> None:
    """Start this process's peak resident set afresh (Linux: /proc/self/clear_refs), so the
    next `peak_rss_mb` is the peak of what follows alone; elsewhere nothing changes."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mb() -> float:
    """This process's resident set now."""
    return _status_kb("VmRSS") / 1024


def rss_figure(key: str, phase: str, value: float, applies: bool, note: str = "") -> Figure:
    """Peak RSS of a phase; the 300 MB target is stated for the year-size phase."""
    return Figure(
        key,
        f"peak RSS, {phase}",
        round(value, 1),
        "MB",
        "≤ 300 MB",
        judged(value, 300, applies),
        note,
    )


# --- the benchmark database -----------------------------------------------------------------------


def db_path(workdir: Path) -> Path:
    """Where the ingest phase builds the database the other phases read."""
    return workdir / "bench.sqlite"


def db_size(path: Path) -> int:
    """Bytes on disk of the database with its WAL."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _count_label(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


def phase_ingest(plan: SizePlan, workdir: Path) -> list[Figure]:
    """Generate papers and ingest them into a fresh SQLite store with Store.ingest, in batches.

    Only Store.ingest is timed; generating the papers is timed apart.
    """
    from digest.store import Store

    path = db_path(workdir)
    _remove_db(path)
    store = Store.open(path)
    load_corpus()  # reading the seeds is not generating
    papers = iter_papers(plan.db_papers, seed=1)
    generated = ingested = 0.0
    done = 0
    taken: list[tuple[int, float, int]] = []
    for index in range(plan.batches):
        started = time.perf_counter()
        batch = list(itertools.islice(papers, plan.batch))
        generated += time.perf_counter() - started
        started = time.perf_counter()
        store.ingest("bench", batch, (), {}, batch_time(index, plan.batches))
        ingested += time.perf_counter() - started
        done += len(batch)
        if done in plan.checkpoints:
            taken.append((done, ingested, db_size(path)))
        if generated + ingested > plan.ingest_budget and done >= min(plan.checkpoints):
            break  # the later phases extrapolate from what is stored
    stored = store.count_papers()
    store.close()
    figures = _ingest_figures(plan, taken, generated, done, stored)
    at_year = plan.db_papers == FULL.db_papers
    return [*figures, rss_figure("rss_ingest", "ingest", peak_rss_mb(), at_year)]


def _ingest_figures(
    plan: SizePlan, taken: list[tuple[int, float, int]], generated: float, done: int, stored: int
) -> list[Figure]:
    # The headline is the 100k checkpoint (the target's size), else the largest one.
    headline = next((t for t in taken if t[0] == 100_000), taken[-1])
    count, seconds, size = headline
    applies = count == 100_000
    label = _count_label(count)
    figures = [
        Figure(
            "ingest_time",
            f"ingest {label} papers (Store.ingest, batches of {plan.batch})",
            round(seconds, 2),
            "s",
            "≤ 20 s at 100k",
            judged(seconds, 20, applies),
        ),
        Figure("ingest_rate", f"ingest rate at {label}", round(count / seconds), "papers/s"),
        Figure(
            "db_size",
            f"database size at {label} (with WAL)",
            round(size / MB, 1),
            "MB",
            "≤ 400 MB at 100k",
            judged(size / MB, 400, applies),
        ),
        Figure("generate_rate", "generator (listing → Paper)", round(done / generated), "papers/s"),
        Figure("stored_papers", "distinct papers stored", stored, "papers"),
    ]
    for count, seconds, size in taken:
        label = _count_label(count)
        figures.append(
            Figure(
                f"ingest@{label}",
                f"ingest checkpoint {label}: time / rate / size",
                round(seconds, 2),
                "s",
                note=f"{count / seconds:,.0f} papers/s, {size / MB:,.1f} MB",
            )
        )
    return figures


def recent_papers(store: Any, plan: SizePlan, count: int) -> Iterator[Paper]:
    """The last `count` papers stored (the last whole batches), streamed."""
    stored = math.ceil(store.count_papers() / plan.batch)
    batches = math.ceil(count / plan.batch)
    since = batch_time(max(0, stored - batches), plan.batches)
    return itertools.islice(store.papers_seen_since(since), count)


# --- matching -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OursRun:
    """What our matcher did: on everything, or on a sample within the time budget."""

    papers: int  # papers matched (all of them, or the sample)
    total: int  # papers the figure is about
    profiles: int
    matches: int
    setup: float  # one match_profiles call with no papers: compiling the profiles
    matching: float  # seconds spent on papers, setup excluded
    rss_growth_mb: float  # resident growth while matching (for extrapolating a sample)

    @property
    def sampled(self) -> bool:
        """True when the time is extrapolated from a sample."""
        return self.papers < self.total

    @property
    def seconds(self) -> float:
        """One match_profiles call over all `total` papers: measured, or extrapolated."""
        return self.setup + self.matching * self.total / max(self.papers, 1)

    @property
    def pairs_per_second(self) -> float:
        """Paper × profile pairs per second (one setup included, as in one call)."""
        return self.total * self.profiles / self.seconds if self.seconds else 0.0


def _count(result: dict[str, Any]) -> int:
    return sum(m.total if isinstance(m, Best) else len(m) for m in result.values())


def keep_best(papers: Iterable[Paper], profiles: list[Profile]) -> dict[str, Best]:
    """What a digest needs from a year of papers: each profile's best 50 and a count."""
    return best_matches(papers, profiles, DIGEST_ITEMS)


def _timed_match(
    papers: Iterator[Paper], count: int, profiles: list[Profile], match: MatchFn
) -> tuple[Any, float]:
    """Read `count` papers from the stream and match them; the result and the seconds."""
    started = time.perf_counter()
    result = match(itertools.islice(papers, count), profiles)
    return result, time.perf_counter() - started


def run_ours(
    make_papers: Callable[[], Iterable[Paper]],
    total: int,
    profiles: list[Profile],
    budget: float,
    match: MatchFn = match_profiles,
) -> OursRun:
    """Time match_profiles on `total` papers, reading included.

    The setup (a call with no papers: compiling the profiles) is timed first, then a probe of
    ~20k pairs predicts the full time. Within `budget`, the real thing runs: one call over the
    whole stream, as the app does. Otherwise matching goes on in chunks (results kept, as one call
    would keep them) until the budget is spent; each chunk's setup is taken off, so the estimate
    is one setup plus the per-paper time times `total`.
    """
    _, setup = _timed_match(iter(()), 0, profiles, match)
    probe = max(1, min(total, 20_000 // len(profiles)))
    stream = iter(make_papers())
    base = rss_mb()
    result, spent = _timed_match(stream, probe, profiles, match)
    kept, done = [result], min(probe, total)
    matching = max(spent - setup, 0.0)
    per_paper = max(matching, 1e-9) / done
    if done < total and setup + per_paper * total <= budget:
        kept = []
        base = rss_mb()
        started = time.perf_counter()
        result = match(make_papers(), profiles)
        seconds = time.perf_counter() - started
        growth = rss_mb() - base  # the result is still alive, as the caller would hold it
        matched = max(seconds - setup, 0.0)
        return OursRun(total, total, len(profiles), _count(result), setup, matched, growth)
    chunk = max(probe * 5, int(10 * setup / per_paper) + 1)  # setup ≤ ~10% of a chunk
    while done < total and spent < budget:
        result, seconds = _timed_match(stream, min(chunk, total - done), profiles, match)
        kept.append(result)
        spent += seconds
        matching += max(seconds - setup, 0.0)
        done = min(total, done + chunk)
    matches = sum(_count(r) for r in kept)
    growth = rss_mb() - base
    return OursRun(done, total, len(profiles), matches, setup, matching, growth)


def phase_match(plan: SizePlan, workdir: Path, which: str) -> list[Figure]:
    """Match `which` ("day", "kw" or "year") papers × profiles, ours and the naive baseline."""
    from digest.store import Store

    wanted, profiles_n = getattr(plan, which)
    shape = KW_SHAPE if which == "kw" else DAY_SHAPE
    profiles = list(iter_profiles(profiles_n, shape))
    store = Store.open(db_path(workdir))
    papers_n = min(wanted, store.count_papers())  # fewer when ingest ran out of budget
    read_figures: list[Figure] = []
    if which == "year":  # streamed from the store: reading is part of the time

        def make_papers() -> Iterable[Paper]:
            return itertools.islice(store.papers_seen_since(EPOCH), papers_n)

        read_figures = [_read_figure(make_papers, plan.match_budget)]
    else:  # loaded first: the figure is matching alone
        loaded = list(recent_papers(store, plan, papers_n))

        def make_papers() -> Iterable[Paper]:
            return loaded

    # A year is matched the way a digest needs it (best 50 and a count per profile), so memory
    # stays flat; the other sizes return every match, as `digest match` does.
    match: MatchFn = keep_best if which == "year" else match_profiles
    ours = run_ours(make_papers, papers_n, profiles, plan.match_budget, match)
    ours_peak = peak_rss_mb()
    floors = measure_floors(make_papers, profiles, plan.match_budget)
    sample = list(itertools.islice(make_papers(), max(1, min(papers_n, 3000))))
    naive = run_naive(sample, profiles, plan.naive_budget)
    store.close()
    # For the stored passes' ratio to the floor (phase hits-W-pass, a process of its own).
    floors_path(workdir, which).write_text(json.dumps(asdict(floors)))
    figures = _match_figures(plan, which, wanted, profiles_n, ours, naive, ours_peak)
    figures += _floor_figures(plan, which, wanted, ours, floors) + read_figures
    return figures


# --- matching from stored hits: the scan at ingest, a daemon's passes, a new process's pass -------
#
# Three phases of their own per size, each in its own process (bench/run.py), so each peak RSS is
# that part's alone, as it runs in digest: the scan in the fetch that stores the papers, the
# passes in `digest run` (or a send), the cached pass in a new `digest send`. `hits-W-scan`
# stores the papers in a fresh store of their own and scans them; `hits-W-pass` reads it twice;
# `hits-W-cached` once more, in a new process, with the compiled profiles the pass stored.

# A year is timed on its first 50k papers and scaled: storing and scanning 250k again would
# take minutes, and a pass's time grows with the papers alone.
_STORED_YEAR_PAPERS = 50_000
_STORED_TARGETS = {"day": (1.0, 3.0), "kw": (1.0, None), "year": (10.0, None)}


def hits_db_path(workdir: Path, which: str) -> Path:
    """The store the stored-hits phases of `which` share."""
    return workdir / f"hits-{which}.sqlite"


def floors_path(workdir: Path, which: str) -> Path:
    """Where `phase_match` leaves its floors for the stored passes' ratio."""
    return workdir / f"floors-{which}.json"


def _stored_profiles(plan: SizePlan, which: str) -> tuple[int, list[Profile]]:
    """The papers `which` matches (all of the size) and its profiles, as `phase_match` has."""
    wanted, profiles_n = getattr(plan, which)
    shape = KW_SHAPE if which == "kw" else DAY_SHAPE
    return wanted, list(iter_profiles(profiles_n, shape))


def _stored_scale(store: Any, wanted: int) -> tuple[int, float]:
    """How many papers the hits store holds, and the factor from them to `wanted`."""
    papers_n = store.count_papers()
    return papers_n, wanted / max(papers_n, 1)


def phase_hits_scan(plan: SizePlan, workdir: Path, which: str) -> list[Figure]:
    """Store `which`'s papers in a store of their own, then the ingest-time scan (timed)."""
    from digest.plan.hits import HitKeeper
    from digest.store import Store

    wanted, profiles = _stored_profiles(plan, which)
    source = Store.open(db_path(workdir))
    count = min(wanted, source.count_papers(), _STORED_YEAR_PAPERS if which == "year" else wanted)
    if which == "year":  # the first of the year's papers, as `phase_match` streams them
        papers: Iterable[Paper] = itertools.islice(source.papers_seen_since(EPOCH), count)
    else:
        papers = recent_papers(source, plan, count)
    path = hits_db_path(workdir, which)
    _remove_db(path)
    store = Store.open(path)
    for batch in batches(papers, 1000):
        store.ingest("bench", batch, (), {}, datetime(2025, 12, 1, tzinfo=UTC))
    source.close()
    reset_peak_rss()  # the scan's peak, not the storing's
    started = time.perf_counter()
    scanned = HitKeeper(profiles).refresh(store, EPOCH)
    scan = time.perf_counter() - started
    papers_n, scale = _stored_scale(store, wanted)
    assert scanned == papers_n
    store.close()
    applies = plan.name == "full"
    note = f"{papers_n:,} papers" + (f"; scaled to {wanted:,}" if papers_n < wanted else "")
    return [
        Figure(
            f"match_{which}_hits_scan",
            f"match {which}: the ingest-time scan (HitKeeper.refresh, hits written)",
            round(scan * scale, 2),
            "s",
            note=f"once per paper, when stored: not part of a pass; {note}",
        ),
        rss_figure(
            f"rss_match_{which}_hits_scan",
            f"match {which}: the ingest-time scan (a process of its own, as a fetch)",
            peak_rss_mb(),
            applies,
            _spelling_child_note(),
        ),
    ]


def _spelling_child_note() -> str:
    """The peak RSS of the child process that spelled the book's new terms, if one did
    (`digest.plan.spelling`): it ends before the scanner is built, and is reported apart."""
    import resource

    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if not child_kb:
        return "terms spelled in this process"
    peak = child_kb / 1024
    return f"terms spelled in a child process, its peak {peak:.0f} MB, ended before the scan"


def phase_hits_pass(plan: SizePlan, workdir: Path, which: str) -> list[Figure]:
    """The first pass of a process over the stored hits (cold: compiling included) and a
    second one (warm: a daemon's), started as `digest run` starts (`App.settle`)."""
    from digest.match import Matcher, freeze_long_lived
    from digest.match.compile_cache import compile_profiles
    from digest.plan.hits import HitKeeper
    from digest.store import Store

    wanted, profiles = _stored_profiles(plan, which)
    store = Store.open(hits_db_path(workdir, which))
    papers_n, scale = _stored_scale(store, wanted)
    started = time.perf_counter()
    matcher, keeper = Matcher(profiles), HitKeeper(profiles)
    # As `digest run` starts: what every pass uses built now, then everything alive frozen out
    # of the collector's full collections for the process's life.
    matcher.algebra  # noqa: B018 - built on first use
    keeper.book(store, write=False)
    freeze_long_lived()
    matches = _stored_pass(store, matcher, keeper, which)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    _stored_pass(store, matcher, keeper, which)
    warm = time.perf_counter() - started
    peak = peak_rss_mb()
    compile_profiles(profiles, store, write=True)  # kept for the cached pass's process
    store.close()
    applies = plan.name == "full"
    warm_goal, cold_goal = _STORED_TARGETS[which]
    warm, cold = warm * scale, cold * scale
    floors = json.loads(floors_path(workdir, which).read_text())
    scan_floor = floors["scan"] * wanted / max(floors["papers"], 1)
    over = warm / scan_floor if scan_floor else 0.0
    goal = _SCAN_GOALS.get(which)
    note = f"{matches:,} matches over {papers_n:,} papers"
    if papers_n < wanted:
        note += f"; scaled to {wanted:,}"
    return [
        Figure(
            f"match_{which}_hits_warm",
            f"match {which} from stored hits, warm (profiles compiled: a daemon's pass)",
            round(warm, 2),
            "s",
            f"≤ {warm_goal:g} s",
            judged(warm, warm_goal, applies),
            note,
        ),
        Figure(
            f"match_{which}_hits_cold",
            f"match {which} from stored hits, cold (first pass of a process, compiling included)",
            round(cold, 2),
            "s",
            f"≤ {cold_goal:g} s" if cold_goal else "",
            judged(cold, cold_goal, applies) if cold_goal else None,
        ),
        Figure(
            f"match_{which}_hits_over_scan",
            f"match {which} from stored hits, warm ÷ scan floor",
            round(over, 1),
            "×",
            f"≤ {goal:g}×" if goal else "",
            judged(over, goal, applies) if goal else None,
            f"scan floor {scan_floor:.3f} s (phase match-{which})",
        ),
        rss_figure(
            f"rss_match_{which}_hits",
            f"match {which} from stored hits (a daemon's process: both passes)",
            peak,
            applies,
        ),
    ]


def phase_hits_cached(plan: SizePlan, workdir: Path, which: str) -> list[Figure]:
    """The first pass of a new process whose profiles are unchanged since the last run: the
    compiled profiles loaded from the store (`digest.match.compile_cache`), as a cron `digest
    send` starts. The hits store is removed afterwards."""
    from digest.match import Matcher
    from digest.match.compile_cache import compile_profiles
    from digest.plan.hits import HitKeeper
    from digest.store import Store

    wanted, profiles = _stored_profiles(plan, which)
    path = hits_db_path(workdir, which)
    store = Store.open(path)
    _, scale = _stored_scale(store, wanted)
    started = time.perf_counter()
    compiled = compile_profiles(profiles, store, write=True)
    _stored_pass(store, Matcher(profiles, compiled), HitKeeper(profiles, compiled), which)
    cached = (time.perf_counter() - started) * scale
    store.close()
    _remove_db(path)
    applies = plan.name == "full"
    warm_goal, _ = _STORED_TARGETS[which]
    return [
        Figure(
            f"match_{which}_hits_cached",
            f"match {which} from stored hits, a new process with the profiles unchanged since "
            "its last run (compiled profiles loaded from the store)",
            round(cached, 2),
            "s",
            f"≤ {warm_goal:g} s",
            judged(cached, warm_goal, applies),
        ),
        rss_figure(
            f"rss_match_{which}_hits_cached",
            f"match {which} from stored hits, a new process (the cached pass)",
            peak_rss_mb(),
            applies,
        ),
    ]


def _stored_pass(store: Any, matcher: Any, keeper: Any, which: str) -> int:
    """One pass over every stored paper from its hits, a batch at a time; how many matches.
    Every match is built and held, as `digest match --all` does (`plan.stored.stored_matches`,
    its refresh finding nothing to scan), or for a year each profile's best 50, as a digest
    keeps them (`Matcher.best_stored`: reasons for those alone)."""
    from digest.plan.stored import BATCH, stored_matches
    from digest.store import EPOCH

    if which == "year":
        papers = batches(store.papers_seen_since(EPOCH), BATCH)
        best = matcher.best_stored(keeper.scanned(store, papers), DIGEST_ITEMS)
        return sum(found.total for found in best.values())
    every = stored_matches(store, keeper, matcher, EPOCH).matches
    return sum(map(len, every.values()))


@dataclass(frozen=True)
class Floors:
    """Two floors under matching, on the same papers and terms, in the same process: reading
    the text only (lower-casing each title and abstract), and reading plus one C automaton
    (ahocorasick-rs) scan of every keyword of every profile over it."""

    papers: int
    read: float  # seconds for `papers`
    scan: float

    def scaled(self, total: int) -> tuple[float, float]:
        """Both floors for `total` papers."""
        factor = total / max(self.papers, 1)
        return self.read * factor, self.scan * factor


def measure_floors(
    make_papers: Callable[[], Iterable[Paper]], profiles: list[Profile], budget: float
) -> Floors:
    """Time both floors (see `Floors`), each over at most `budget` / 4 seconds of papers."""
    import ahocorasick_rs

    words = sorted({k.lower().rstrip("*") for p in profiles for k in p.keywords} - {""})
    automaton = ahocorasick_rs.AhoCorasick(words)
    find = automaton.find_matches_as_indexes
    count, started = 0, time.perf_counter()
    for paper in make_papers():
        paper.title.lower()
        paper.abstract.lower()
        count += 1
        if count % 1000 == 0 and time.perf_counter() - started > budget / 4:
            break
    read = time.perf_counter() - started
    started = time.perf_counter()
    for paper in itertools.islice(make_papers(), count):
        find(paper.title.lower(), overlapping=True)
        find(paper.abstract.lower(), overlapping=True)
    return Floors(count, read, time.perf_counter() - started)


# The goals for digest's time as a multiple of the scan floor.
_SCAN_GOALS = {"day": 8.0, "kw": 3.0}


def _floor_figures(
    plan: SizePlan, which: str, papers_n: int, ours: OursRun, floors: Floors
) -> list[Figure]:
    read, scan = floors.scaled(papers_n)
    seconds = ours.seconds * (papers_n / ours.total if ours.total < papers_n else 1)
    note = f"measured on {floors.papers:,} papers" if floors.papers < papers_n else ""
    goal = _SCAN_GOALS.get(which)
    over_scan = seconds / scan if scan else 0.0
    return [
        Figure(
            f"match_{which}_floor_read",
            f"match {which}: floor, reading the text only",
            round(read, 3),
            "s",
            note=note,
        ),
        Figure(
            f"match_{which}_floor_scan",
            f"match {which}: floor, reading + C automaton scan of all keywords",
            round(scan, 3),
            "s",
            note=note,
        ),
        Figure(
            f"match_{which}_over_read",
            f"match {which}: ours ÷ reading floor",
            round(seconds / read if read else 0.0, 1),
            "×",
        ),
        Figure(
            f"match_{which}_over_scan",
            f"match {which}: ours ÷ scan floor",
            round(over_scan, 1),
            "×",
            f"≤ {goal:g}×" if goal else "",
            judged(over_scan, goal, plan.name == "full") if goal else None,
        ),
    ]


def _read_figure(make_papers: Callable[[], Iterable[Paper]], budget: float) -> Figure:
    """How fast the store streams Paper records (the floor under the year-size match)."""
    count = 0
    started = time.perf_counter()
    for _ in make_papers():
        count += 1
        if count % 1000 == 0 and time.perf_counter() - started > budget / 4:
            break
    seconds = time.perf_counter() - started
    return Figure(
        "store_read_rate",
        "store streaming read (papers_seen_since → Paper)",
        round(count / seconds),
        "papers/s",
        note=f"{count:,} papers read",
    )


_MATCH_TARGETS = {"day": 1.0, "kw": 1.0, "year": 10.0}
_MATCH_NAMES = {
    "day": "one day",
    "kw": "100 keywords + 20 authors",
    "year": "a year, streamed from the store",
}


def _match_figures(
    plan: SizePlan,
    which: str,
    papers_n: int,
    profiles_n: int,
    ours: OursRun,
    naive: NaiveRun,
    ours_peak: float,
) -> list[Figure]:
    applies = plan.name == "full"
    label = f"match {papers_n:,} papers × {profiles_n:,} profiles ({_MATCH_NAMES[which]})"
    sampled = ours.sampled or ours.total < papers_n  # (ingest may have stopped short)
    seconds = ours.seconds * (papers_n / ours.total if ours.total < papers_n else 1)
    note = ""
    if sampled:
        note = (
            f"extrapolated: setup {ours.setup:.2f} s + {ours.matching:.1f} s "
            f"for {ours.papers:,} papers"
        )
    limit = _MATCH_TARGETS[which]
    ratio = ours.pairs_per_second / naive.pairs_per_second if naive.pairs_per_second else 0.0
    target_sign = "≤"
    figures = [
        Figure(
            f"match_{which}_time",
            label,
            round(seconds, 2),
            "s",
            f"{target_sign} {limit:g} s",
            judged(seconds, limit, applies),
            note,
        ),
        Figure(
            f"match_{which}_rate", f"match {which}: ours", round(ours.pairs_per_second), "pairs/s"
        ),
        Figure(
            f"match_{which}_setup",
            f"match {which}: setup (match_profiles with no papers)",
            round(ours.setup, 3),
            "s",
            note="compiling the profiles; part of the time above",
        ),
        Figure(
            f"match_{which}_naive_rate",
            f"match {which}: naive regex baseline",
            round(naive.pairs_per_second),
            "pairs/s",
            note=f"sample of {naive.papers:,} papers × {profiles_n:,} profiles "
            f"({naive.seconds:.1f} s), extrapolated",
        ),
        Figure(
            f"match_{which}_ratio",
            f"match {which}: ours vs naive",
            round(ratio, 2),
            "×",
            "≥ 20×",
            judged(ratio, 20, applies, at_least=True),
        ),
        Figure(
            f"match_{which}_hit_rate",
            f"match {which}: papers matched per profile",
            round(100 * ours.matches / max(ours.papers * ours.profiles, 1), 2),
            "%",
            note="realism check: a few % expected",
        ),
    ]
    rss_note = ""
    rss = ours_peak
    if which == "year":
        rss_note = f"best_matches keeps {DIGEST_ITEMS} matches a profile and a count"
        if sampled:  # flat memory: the sample's peak holds for the whole year
            rss_note += f"; measured over {ours.papers:,} papers"
    at_year = applies and which == "year"
    figures.append(rss_figure(f"rss_match_{which}", f"match {which}", rss, at_year, rss_note))
    return figures


# --- rendering ------------------------------------------------------------------------------------


def _fifty_matches(
    results: dict[str, tuple[Match, ...]], papers: list[Paper], want: int
) -> tuple[list[Match], int]:
    """The best-served profile's matches, topped up from the others' up to `want` papers; if
    still short (small sizes), padded with one-reason matches of unmatched papers.

    Returns the matches and how many were padding.
    """
    ordered = sorted(results.values(), key=len, reverse=True)
    chosen: dict[str, Match] = {}
    for match in itertools.chain.from_iterable(ordered):
        chosen.setdefault(match.paper.key, match)
        if len(chosen) == want:
            return list(chosen.values()), 0
    padded = 0
    for paper in papers:
        if len(chosen) == want:
            break
        if paper.key not in chosen:
            word = paper.title.split()[0]
            reason = Reason("keyword", word, "title", word, ((0, len(word)),))
            chosen[paper.key] = Match(paper, (reason,), 11.0)
            padded += 1
    return list(chosen.values()), padded


def phase_render(plan: SizePlan, workdir: Path) -> list[Figure]:
    """Median time of build_digest + render_digest for a 50-paper digest."""
    from digest.render import build_digest, render_digest
    from digest.store import Store

    store = Store.open(db_path(workdir))
    papers = list(recent_papers(store, plan, min(plan.day[0], 1000)))
    store.close()
    profiles = list(iter_profiles(10, DAY_SHAPE))
    matches, padded = _fifty_matches(match_profiles(papers, profiles), papers, 50)
    now = datetime(2025, 12, 31, 7, 30, tzinfo=UTC)
    started = time.perf_counter()
    render_digest(build_digest(profiles[0], matches, now))
    cold = time.perf_counter() - started
    times = []
    for _ in range(plan.render_runs):
        started = time.perf_counter()
        render_digest(build_digest(profiles[0], matches, now))
        times.append(time.perf_counter() - started)
    median_ms = 1000 * statistics.median(times)
    return [
        Figure(
            "render_ms",
            f"render a {len(matches)}-paper digest (build_digest + render_digest)",
            round(median_ms, 1),
            "ms",
            "≤ 50 ms",
            judged(median_ms, 50, len(matches) == 50),
            f"median of {plan.render_runs}" + (f"; {padded} padded matches" if padded else ""),
        ),
        Figure("render_cold_ms", "first render (templates compiled)", round(1000 * cold, 1), "ms"),
        rss_figure("rss_render", "render", peak_rss_mb(), False),
    ]


# --- a full day end to end ------------------------------------------------------------------------


class Clock:
    """A clock the benchmark sets by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def send_instant(profile: Profile, after: datetime) -> datetime:
    """The profile's first send time (its `send_at` in its time zone) at or after `after`."""
    zone = ZoneInfo(profile.timezone)
    day = after.astimezone(zone).date()
    for offset in (0, 1):
        local = datetime.combine(day + timedelta(days=offset), profile.send_at, tzinfo=zone)
        if local >= after:
            return local.astimezone(UTC)
    raise AssertionError("unreachable")  # pragma: no cover


def profile_config(profile: Profile) -> dict[str, Any]:
    """A generated profile as its `[[profiles]]` table."""
    return {
        "name": profile.name,
        "email": list(profile.emails),
        "send_at": profile.send_at.strftime("%H:%M"),
        "timezone": profile.timezone,
        "keywords": list(profile.keywords),
        "all_of": [list(group) for group in profile.all_of],
        "exclude": list(profile.exclude),
        "authors": [{"name": a.name, "aliases": list(a.aliases)} for a in profile.authors],
        "categories": list(profile.categories),
        "max_items": profile.max_items,
        "first_run_days": profile.first_run_days,
    }


def _start_sink() -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    return sink, int(sink.stdout.readline())


def _stop_sink(sink: subprocess.Popen[str]) -> int:
    out, _ = sink.communicate("", timeout=30)
    return int(out.split()[-1])


def _write_previous_day(path: Path, total: int) -> None:
    """A day's listings before the timed one's: other papers (their arXiv numbers moved up by
    50,000, as the generator numbers every run's papers alike)."""
    with path.open("w", encoding="utf-8") as out:
        for listing in iter_listings(total, seed=6):
            month, number = listing["id"].split("v")[0].split(".")
            moved = f"{month}.{int(number) + 50_000:05d}"
            listing["id"] = listing["id"].replace(f"{month}.{number}", moved)
            listing["url"] = f"https://arxiv.org/abs/{moved}"
            out.write(json.dumps(listing, ensure_ascii=False) + "\n")


def phase_e2e(plan: SizePlan, workdir: Path) -> list[Figure]:
    """`digest send` for a day's new papers: build_app, fetch them, send every profile at its
    send time to a local SMTP sink. Wall time of all of it; past the budget, the remaining
    profiles are extrapolated from the per-profile send time.

    Timed twice: the first day of a new store (every term spelled, every profile compiled),
    then the next day's run on it, as every later morning runs (the profiles unchanged: their
    terms known and their compiled forms stored), with the memos emptied as a new process has
    them. The target is the everyday run's."""
    from digest.app import build_app, fetch, send
    from digest.memo import clear_memos
    from digest.settings import settings_from_dict
    from digest.sources.files import FilesSource

    papers_n, profiles_n = plan.e2e
    first_listings, listings = workdir / "e2e-first.jsonl", workdir / "e2e.jsonl"
    _write_previous_day(first_listings, papers_n)
    write_jsonl(listings, papers_n, seed=7)
    profiles = list(iter_profiles(profiles_n, DAY_SHAPE, seed=7))
    path = workdir / "e2e.sqlite"
    _remove_db(path)
    sink, port = _start_sink()
    try:
        settings = settings_from_dict(
            {
                "smtp": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from_address": "digest@example.org",
                    "timeout": 30,
                },
                "delivery": {"method": "smtp", "attempts": 1, "retry_backoff_seconds": 0},
                # In the config, as `digest send` has them: one matcher serves them all.
                "profiles": [profile_config(p) for p in profiles],
            },
            workdir / "bench.toml",
        )
        profiles = list(settings.profile_records())

        def day(listed: Path, fetched_at: datetime) -> tuple[list[Any], float, float, int, int]:
            """One morning: build the app, fetch `listed`, send every profile; its fetch
            reports, fetch seconds, seconds, digests sent and profiles done."""
            clock = Clock(fetched_at)
            started = time.perf_counter()
            app = build_app(
                settings, db_path=path, sources=[FilesSource("bench", str(listed))], clock=clock
            )
            reports = fetch(app)
            fetch_seconds = time.perf_counter() - started
            sent, done = _send_all(app, send, clock, profiles, plan.e2e_budget - fetch_seconds)
            app.close()
            return reports, fetch_seconds, time.perf_counter() - started, sent, done

        first = day(first_listings, datetime(2025, 12, 30, 0, 0, tzinfo=UTC))
        clear_memos()  # the next morning is a new process
        reports, fetch_seconds, seconds, sent, done = day(
            listings, datetime(2025, 12, 31, 0, 0, tzinfo=UTC)
        )
    finally:
        accepted = _stop_sink(sink)
    figures = _e2e_figures(plan, reports, fetch_seconds, seconds, done, sent, accepted - first[3])
    return [*figures, _first_day_figure(plan, first)]


def _first_day_figure(plan: SizePlan, first: tuple[list[Any], float, float, int, int]) -> Figure:
    """The first morning of a new store: what the everyday run is measured against."""
    papers_n, profiles_n = plan.e2e
    _, fetch_seconds, seconds, sent, done = first
    note = f"fetch+ingest {fetch_seconds:.1f} s (every term spelled); {sent} digests sent"
    if done < profiles_n:
        seconds = fetch_seconds + (seconds - fetch_seconds) * profiles_n / done
        note += f"; extrapolated from {done} of {profiles_n} profiles"
    return Figure(
        "e2e_first_time",
        f"the first day of a new store end to end: {papers_n:,} papers, {profiles_n} profiles, "
        "SMTP (profiles compiled, terms spelled)",
        round(seconds, 2),
        "s",
        note=note,
    )


def _send_all(
    app: Any, send: Any, clock: Clock, profiles: list[Profile], budget: float
) -> tuple[int, int]:
    """Send each profile at its send time, in time order; stop after `budget` seconds.

    Returns (digests sent, profiles done).
    """
    fetched_at = clock.now
    due = sorted(profiles, key=lambda p: (send_instant(p, fetched_at), p.name))
    sent = done = 0
    started = time.perf_counter()
    for instant, group in itertools.groupby(due, key=lambda p: send_instant(p, fetched_at)):
        clock.now = instant
        members = list(group)
        reports = send(app, members)
        errors = [r.error for r in reports if r.error]
        if errors:
            raise RuntimeError(f"send failed: {errors[0]}")
        sent += sum(len(r.sent) for r in reports)
        done += len(members)
        if time.perf_counter() - started > budget:
            break
    return sent, done


def _e2e_figures(
    plan: SizePlan,
    reports: list[Any],
    fetch_seconds: float,
    seconds: float,
    done: int,
    sent: int,
    accepted: int,
) -> list[Figure]:
    papers_n, profiles_n = plan.e2e
    errors = [r.error for r in reports if r.error]
    if errors:
        raise RuntimeError(f"fetch failed: {errors[0]}")
    sampled = done < profiles_n
    total = seconds
    note = (
        f"fetch+ingest {fetch_seconds:.1f} s; {sent} digests sent, {accepted} accepted by the sink"
    )
    if sampled:
        total = fetch_seconds + (seconds - fetch_seconds) * profiles_n / done
        note += f"; extrapolated from {done} of {profiles_n} profiles ({seconds:.1f} s)"
    applies = plan.name == "full"
    return [
        Figure(
            "e2e_time",
            f"full day end to end: {papers_n:,} new papers, {profiles_n} profiles, SMTP "
            "(the day after the store's first: profiles unchanged)",
            round(total, 2),
            "s",
            "≤ 4 s",
            judged(total, 4, applies),
            note,
        ),
        rss_figure("rss_e2e", "end to end", peak_rss_mb(), False),
    ]


# --- start-up -------------------------------------------------------------------------------------


def digest_executable() -> Path:
    """The installed `digest` script beside this interpreter."""
    return Path(sys.executable).parent / "digest"


def measure_startup(plan: SizePlan) -> list[Figure]:
    """Median wall time of `digest --help` (a fresh process each time)."""
    command = [str(digest_executable()), "--help"]
    times = []
    for _ in range(plan.startup_runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return [
        Figure(
            "startup_time",
            "start-up: `digest --help`",
            round(median, 3),
            "s",
            "≤ 0.3 s",
            judged(median, 0.3, True),
            f"median of {plan.startup_runs}",
        )
    ]


# --- suggestions ----------------------------------------------------------------------------------


def phase_suggest(plan: SizePlan, workdir: Path) -> list[Figure]:
    """Suggestion quality (leave-out on the seeds) and speed (bench/suggest.py)."""
    from bench import suggest as bench_suggest

    before = _status_kb("VmRSS") / 1024
    import sklearn.svm  # noqa: F401  (what the model costs before it reads a paper)

    imported = _status_kb("VmRSS") / 1024 - before
    smoke = plan.name == "smoke"
    splits, distractors = (2, 200) if smoke else (bench_suggest.SPLITS, 1000)
    quality = bench_suggest.leave_out(splits, distractors)
    circle, others, generated = quality["sizes"]
    where = (
        f"{circle} circle papers, 30% hidden among {others} other seed papers and {generated}"
        f" generated; mean of {splits} seeded splits"
    )
    figures = []
    for name, label in (
        ("model", "model (linear SVM)"),
        ("cosine", "TF-IDF cosine"),
        ("random", "random order"),
    ):
        r10, r20 = quality[name]
        is_model = name == "model"
        figures.append(
            Figure(
                f"suggest_recall20_{name}",
                f"suggestions, leave-out recall@20: {label}",
                round(r20, 3),
                "",
                "≥ 0.8" if is_model else "",
                judged(r20, 0.8, is_model and not smoke, at_least=True),
                f"recall@10 {r10:.3f}; {where}",
            )
        )
    hidden_above, pool_above = quality["threshold"]
    figures.append(
        Figure(
            "suggest_threshold",
            "suggestions, hidden papers above the threshold",
            round(hidden_above, 3),
            "",
            note=f"{pool_above:.1%} of the whole pool is above it (the threshold: the "
            "90th percentile of the background's scores)",
        )
    )
    library_n, candidates_n, profiles_n = (100, 200, 5) if smoke else (1000, 2000, 100)
    fit, one, textbook = bench_suggest.train_and_score(library_n, candidates_n)
    figures.append(
        Figure(
            "suggest_train_time",
            f"suggestions: train on a {library_n:,}-entry library + score {candidates_n:,}",
            round(one, 2),
            "s",
            "≤ 1 s",
            judged(one, 1, not smoke),
            f"plus {fit:.2f} s to read the 2,000 background papers' text (once a pass, shared);"
            f" scikit-learn's TfidfVectorizer + the same LinearSVC on the same papers, same run:"
            f" {textbook:.2f} s, {textbook / (fit + one):.1f}× ours with the background read",
        )
    )
    day = bench_suggest.lab_day(workdir, profiles_n, 100, candidates_n)
    figures.append(
        Figure(
            "suggest_day_time",
            f"suggestions: a day for {profiles_n} profiles with libraries (plan_digests)",
            round(day, 2),
            "s",
            "≤ 10 s",
            judged(day, 10, not smoke),
            f"100-entry CSL-JSON libraries, {candidates_n:,} new papers over 2,000 stored",
        )
    )
    titles = bench_suggest.example_titles(workdir)
    figures.append(
        Figure(
            "suggest_example",
            "suggestions for the example profile on the seeds (first 20)",
            len(titles),
            "papers",
            note="; ".join(f"“{t}”" for t in titles),
        )
    )
    note = f"importing scikit-learn (and scipy) took {imported:.0f} MB of it"
    figures.append(rss_figure("rss_suggest", "suggestions", peak_rss_mb(), not smoke, note))
    return figures


Phase = Callable[[SizePlan, Path], list[Figure]]


def _match_phases(which: str) -> dict[str, Phase]:
    """The phases of matching `which`, in the order they run: direct, then from stored hits."""
    return {
        f"match-{which}": lambda plan, workdir: phase_match(plan, workdir, which),
        f"hits-{which}-scan": lambda plan, workdir: phase_hits_scan(plan, workdir, which),
        f"hits-{which}-pass": lambda plan, workdir: phase_hits_pass(plan, workdir, which),
        f"hits-{which}-cached": lambda plan, workdir: phase_hits_cached(plan, workdir, which),
    }


PHASES: dict[str, Phase] = {
    "ingest": phase_ingest,
    **{
        name: phase
        for which in ("day", "kw", "year")
        for name, phase in _match_phases(which).items()
    },
    "render": phase_render,
    "e2e": phase_e2e,
    "suggest": phase_suggest,
    "added": lambda plan, workdir: phase_added(plan, workdir),
}
