"""`python -m bench.compile_cache`: what a new process spends compiling bench's day profiles
(1,000, `DAY_SHAPE`) with and without the compile cache (`digest.match.compile_cache`), and
the stored-hits pass over the day's 2,000 papers that follows.

A database of the day's papers with their stored hits is made once. Then each mode runs in a
child process of its own (a cron `digest send` is a new process: nothing in memory), on a copy
of that database, alternated, `--rounds` times:

- `none`: compiled, no cache (what a process did before the cache);
- `empty`: compiled and stored (the first run after a config change);
- `loaded`: loaded from the entries an earlier process stored (an unchanged config).

Each child prints the CPU seconds (`time.process_time`: the shared machine's other work moves
wall time more) of compiling, of compiling plus making the matcher, the hit keeper and the
verdict algebra, of the first stored-hits pass with all of that (cold), and of a second (warm).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.generate import iter_papers, iter_profiles
from bench.phases import DAY_SHAPE, _stored_pass

MODES = ("none", "empty", "loaded")


def build(path: Path, papers: int) -> None:
    """The day's papers stored at `path`, each scanned for the day profiles' terms."""
    from digest.plan.hits import HitKeeper
    from digest.store import EPOCH, Store
    from digest.store.merge import batches

    profiles = list(iter_profiles(1000, DAY_SHAPE))
    store = Store.open(path)
    for batch in batches(itertools.islice(iter_papers(papers), papers), 1000):
        store.ingest("bench", batch, (), {}, datetime(2025, 12, 1, tzinfo=UTC))
    HitKeeper(profiles).refresh(store, EPOCH)
    store.close()


def child(mode: str, path: Path) -> str:
    """One mode's figures, timed in this (new) process on the database at `path`."""
    import numpy  # noqa: F401  # imported before any timing, as in bench's own process

    from digest.match import Matcher
    from digest.match.compile_cache import compile_profiles
    from digest.plan.hits import HitKeeper
    from digest.store import Store

    profiles = list(iter_profiles(1000, DAY_SHAPE))
    if mode == "loaded":  # an earlier process stored the entries
        writer = Store.open(path)
        compile_profiles(profiles, writer, write=True)
        writer.close()
    store = Store.open(path)
    cache = None if mode == "none" else store
    started = time.process_time()
    compiled = compile_profiles(profiles, cache, write=cache is not None)
    compiling = time.process_time() - started
    matcher, keeper = Matcher(profiles, compiled), HitKeeper(profiles, compiled)
    _ = matcher.algebra
    made = time.process_time() - started
    _stored_pass(store, matcher, keeper, "day")
    cold = time.process_time() - started
    started = time.process_time()
    _stored_pass(store, matcher, keeper, "day")
    warm = time.process_time() - started
    store.close()
    return f"{compiling:.2f} {made:.2f} {cold:.2f} {warm:.2f}"


def main() -> None:
    """Build the database, run each mode in a child `--rounds` times, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.child:
        print(child(args.child, args.db))
        return
    with tempfile.TemporaryDirectory() as workdir:
        base = Path(workdir) / "day.sqlite"
        build(base, args.papers)
        print("mode    compile  +matcher,keeper,algebra  cold pass  warm pass  (CPU s)")
        for _, mode in itertools.product(range(args.rounds), MODES):
            copy = Path(workdir) / f"{mode}.sqlite"
            shutil.copy(base, copy)
            command = [sys.executable, "-m", "bench.compile_cache", "--child", mode]
            done = subprocess.run([*command, "--db", str(copy)], capture_output=True, text=True)
            figures = done.stdout.split() if done.returncode == 0 else ["failed"] * 4
            print(f"{mode:7s} " + "  ".join(f"{f:>8s}" for f in figures))
            copy.unlink()


if __name__ == "__main__":
    main()
