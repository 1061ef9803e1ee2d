"""`python -m bench.pass_memory`: what `digest run` gains by keeping the app's `PassMemory`
between send ticks.

The e2e phase's day (2,000 new papers, the generated profiles, an SMTP sink on 127.0.0.1) is
fetched, then each send minute's profiles are sent in time order, as `digest run`'s send job
does: once with the app's memory kept (what digest does), once with a fresh memory made before
every tick (no verdicts, decoded papers or compiled matcher carried over). Both in this
process, alternated, twice.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.generate import iter_profiles, write_jsonl
from bench.phases import (
    DAY_SHAPE,
    Clock,
    _remove_db,
    _start_sink,
    _stop_sink,
    profile_config,
    send_instant,
)


def day_of_ticks(workdir: Path, papers: int, profiles: int, *, fresh: bool) -> tuple[float, int]:
    """Seconds spent sending the day's ticks (the fetch before is not timed), and the ticks."""
    from digest.app import build_app, fetch, send
    from digest.plan.memory import PassMemory
    from digest.settings import settings_from_dict
    from digest.sources.files import FilesSource

    listings = workdir / "day.jsonl"
    write_jsonl(listings, papers, seed=7)
    path = workdir / f"day-{fresh}.sqlite"
    _remove_db(path)
    sink, port = _start_sink()
    try:
        smtp = {"host": "127.0.0.1", "port": port, "security": "none"}
        settings = settings_from_dict(
            {
                "smtp": {**smtp, "from_address": "digest@example.org", "timeout": 30},
                "delivery": {"method": "smtp", "attempts": 1, "retry_backoff_seconds": 0},
                "profiles": [profile_config(p) for p in iter_profiles(profiles, DAY_SHAPE, seed=7)],
            },
            workdir / "bench.toml",
        )
        clock = Clock(datetime(2025, 12, 31, tzinfo=UTC))
        app = build_app(
            settings, db_path=path, sources=[FilesSource("bench", str(listings))], clock=clock
        )
        fetch(app)
        fetched = clock.now
        records = settings.profile_records()
        due = sorted(records, key=lambda p: (send_instant(p, fetched), p.name))
        started, ticks = time.perf_counter(), 0
        for instant, group in itertools.groupby(due, key=lambda p: send_instant(p, fetched)):
            clock.now = instant
            if fresh:
                app.memory = PassMemory(records)
            send(app, list(group))
            ticks += 1
        seconds = time.perf_counter() - started
        app.close()
    finally:
        _stop_sink(sink)
    return seconds, ticks


def main(argv: Sequence[str] | None = None) -> int:
    """Print the kept and fresh times, twice each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--profiles", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        for fresh in (False, True, False, True):
            seconds, ticks = day_of_ticks(Path(work), args.papers, args.profiles, fresh=fresh)
            label = "fresh memory every tick" if fresh else "memory kept (digest run)"
            print(f"{label:26s} {ticks} ticks  {seconds:7.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
