"""`python -m bench.sampler_cost`: what the bench's sampling profiler (bench/sampler.py) costs.

A phase run twice differs by more than the sampler's cost on this shared machine (±5-15% from
one run to the next), so this measures it in one process instead: the same workload, a day's
matching (`match_profiles`, generated papers × 100 profiles, compiling included) and the naive
regex baseline on 30 of the papers (C code that holds the GIL), run with the sampler on and off
in pairs, who goes first alternating, after one warm-up run. It prints each run's wall and CPU
seconds (the process's, the sampler's signal handler included), then the medians of the pairs'
ratios: CPU time moves much less than wall time when other work shares the cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from bench.generate import iter_papers, iter_profiles
from bench.naive import run_naive
from bench.phases import DAY_SHAPE
from bench.sampler import INTERVAL, Sampler


class Run(NamedTuple):
    """One run of the workload."""

    wall: float
    cpu: float  # the whole process's CPU seconds
    sampler_cpu: float
    samples: int


def day_workload(papers: int, profiles: int) -> Callable[[], None]:
    """A day's matching and a naive baseline over the same generated papers and profiles."""
    from digest.match import match_profiles

    loaded = list(iter_papers(papers))
    generated = list(iter_profiles(profiles, DAY_SHAPE))

    def work() -> None:
        match_profiles(loaded, generated)
        run_naive(loaded[:30], generated, budget=60.0)

    return work


def timed(work: Callable[[], None], sampler: Sampler | None) -> Run:
    """One run of `work`, sampled by `sampler` unless it is None."""
    wall, cpu = time.perf_counter(), time.process_time()
    if sampler is None:
        work()
    else:
        with sampler:
            work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if sampler is None:
        return Run(wall, cpu, 0.0, 0)
    return Run(wall, cpu, sampler.sampler_cpu, sampler.samples)


def pair(work: Callable[[], None], interval: float, sampled_first: bool) -> tuple[Run, Run]:
    """(sampled, not sampled) runs of `work`, in the order asked."""
    if sampled_first:
        on = timed(work, Sampler(interval))
        return on, timed(work, None)
    off = timed(work, None)
    return timed(work, Sampler(interval)), off


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the sampler's cost."""
    parser = argparse.ArgumentParser(prog="python -m bench.sampler_cost")
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--profiles", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--interval", type=float, default=INTERVAL)
    args = parser.parse_args(argv)
    work = day_workload(args.papers, args.profiles)
    work()  # warm-up: imports, lemminflect's dictionary, caches
    walls, cpus = [], []
    for number in range(args.pairs):
        on, off = pair(work, args.interval, number % 2 == 0)
        walls.append(on.wall / off.wall)
        cpus.append(on.cpu / off.cpu)
        print(
            f"pair {number + 1}: on {on.wall:.3f} s ({on.cpu:.3f} s CPU, {on.samples} samples, "
            f"sampler {on.sampler_cpu:.3f} s CPU), off {off.wall:.3f} s ({off.cpu:.3f} s CPU)",
            flush=True,
        )
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"median on ÷ off over {args.pairs} pairs: wall {wall:.3f}, CPU {cpu:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
