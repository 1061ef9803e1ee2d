"""Adding a keyword, then `digest match --all --days 30` (issue 22's "≤ 2 s on a store of 60k").

A store of `plan.added[0]` papers stored a day's worth at a time (685 a day, a year of the
generator's listings spread over its 365 days), the last 30 days' papers scanned for the
profiles' terms as the daily fetches scanned them. Then, each as the real command in a child
process (start-up, settings, compiling and printing included; output to a file):

1. `match --all --days 30` with the profiles unchanged: nothing to scan;
2. one keyword added to the first profile, `match --all --days 30`: that term is scanned over the
   30 days' papers alone and its scans written, then every profile decided from stored hits;
3. the same again: nothing left to scan.

The baseline in the same run is what `match --all` did before it read stored hits: the 30 days'
papers read from the store and matched by reading their text (`match_profiles`), in process.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generate import iter_papers, iter_profiles
from digest.models import Profile

DAILY = 685  # papers stored a day: the generator's 250,000 a year
DAYS = 30  # `match --all --days 30`
ADDED_KEYWORD = "state space model"


def _config(path: Path, database: Path, profiles: list[Profile]) -> None:
    """The bench's profiles as a config file (tomlkit writes it: the TOML a user has)."""
    import tomlkit

    from bench.phases import profile_config

    document = {
        "store": {"path": str(database)},
        "delivery": {"method": "maildir", "maildir": str(path.parent / "mail")},
        "profiles": [profile_config(p) for p in profiles],
    }
    path.write_text(tomlkit.dumps(document), encoding="utf-8")


def _fill(database: Path, papers_n: int, now: datetime) -> int:
    """Store `papers_n` papers, `DAILY` a day up to `now`; how many days they span."""
    from digest.store import Store
    from digest.store.merge import batches

    days = -(-papers_n // DAILY)
    store = Store.open(database)
    try:
        listing = itertools.islice(iter_papers(papers_n, seed=11), papers_n)
        for day, batch in enumerate(batches(listing, DAILY)):
            store.ingest("bench", batch, (), {}, now - timedelta(days=days - 1 - day, hours=1))
    finally:
        store.close()
    return days


def _scan_recent(database: Path, profiles: list[Profile], since: datetime) -> float:
    """The recent papers scanned for the profiles' terms, as each day's fetch scanned its
    papers (`digest.app.store_hits`); seconds."""
    from digest.plan.hits import HitKeeper
    from digest.store import Store

    store = Store.open(database)
    try:
        started = time.perf_counter()
        HitKeeper(profiles).refresh(store, since)
        return time.perf_counter() - started
    finally:
        store.close()


def _timed_match_all(config: Path, out: Path) -> tuple[float, int]:
    """`digest match --all --days 30 --format jsonl` as a child process: seconds, lines."""
    from bench.phases import digest_executable

    command = [str(digest_executable()), "--config", str(config), "match", "--all"]
    command += ["--days", str(DAYS), "--format", "jsonl"]
    with out.open("w", encoding="utf-8") as sink:
        started = time.perf_counter()
        done = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=600)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"match --all failed: {done.stderr.strip().splitlines()[-1:]}")
    with out.open(encoding="utf-8") as lines:
        return seconds, sum(1 for _ in lines)


def _direct_baseline(database: Path, profiles: list[Profile], since: datetime) -> tuple[float, int]:
    """The 30 days' papers read and matched by reading their text (the old `match --all`)."""
    from digest.match import match_profiles
    from digest.match.identity import confirm_listing
    from digest.store import Store

    store = Store.open(database, read_only=True)
    try:
        started = time.perf_counter()
        papers = list(store.papers_seen_since(since))
        found = confirm_listing(profiles, papers, match_profiles(papers, profiles))
        seconds = time.perf_counter() - started
    finally:
        store.close()
    return seconds, sum(map(len, found.values()))


def phase_added(plan: Any, workdir: Path) -> list[Any]:
    """Add one keyword to one of the profiles, then `digest match --all --days 30`."""
    from bench.phases import DAY_SHAPE, Figure, _remove_db, judged, peak_rss_mb, rss_figure
    from digest.settings import load_settings

    papers_n, profiles_n = plan.added
    database, config = workdir / "added.sqlite", workdir / "added.toml"
    _remove_db(database)
    # The bench's own clock: the child's `--days 30` counts back from its wall clock.
    now = datetime.now(UTC)
    days = _fill(database, papers_n, now)
    generated = list(iter_profiles(profiles_n, DAY_SHAPE, seed=11))
    _config(config, database, generated)
    profiles = list(load_settings(config).profile_records())
    since = now - timedelta(days=DAYS)
    scan = _scan_recent(database, profiles, since - timedelta(days=1))
    unchanged, lines = _timed_match_all(config, workdir / "added-0.jsonl")
    first = generated[0]
    generated[0] = replace(first, keywords=(*first.keywords, ADDED_KEYWORD))
    _config(config, database, generated)
    added, added_lines = _timed_match_all(config, workdir / "added-1.jsonl")
    again, _ = _timed_match_all(config, workdir / "added-2.jsonl")
    direct, direct_matches = _direct_baseline(database, profiles, since)
    _remove_db(database)
    recent = min(papers_n, DAYS * DAILY)
    applies = plan.name == "full"
    store_note = f"{papers_n:,} papers over {days} days; {recent:,} in the last {DAYS} days"
    return [
        Figure(
            "added_time",
            f"one keyword added to one of {profiles_n} profiles, then `digest match --all "
            f"--days {DAYS}`",
            round(added, 2),
            "s",
            "≤ 2 s",
            judged(added, 2.0, applies),
            f"{store_note}; {added_lines:,} matches printed; the command, start-up included",
        ),
        Figure(
            "added_unchanged",
            f"`digest match --all --days {DAYS}`, profiles unchanged (nothing to scan)",
            round(unchanged, 2),
            "s",
            "",
            None,
            f"{lines:,} matches printed",
        ),
        Figure(
            "added_again",
            "the same `match --all` once more after the keyword (nothing left to scan)",
            round(again, 2),
            "s",
            "",
            None,
            "",
        ),
        Figure(
            "added_direct",
            f"baseline: the {DAYS} days' papers read and matched from their text (the old "
            "`match --all`, in process)",
            round(direct, 2),
            "s",
            "",
            None,
            f"{direct_matches:,} matches; no start-up, no printing",
        ),
        Figure(
            "added_scan",
            f"the {DAYS} days' papers scanned at ingest for the {profiles_n} profiles' terms",
            round(scan, 2),
            "s",
            "",
            None,
            "as the daily fetches did: not part of the figures above",
        ),
        rss_figure("rss_added", "add a keyword", peak_rss_mb(), False, "the bench process"),
    ]
