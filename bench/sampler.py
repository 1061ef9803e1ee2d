"""Where a bench phase's time goes: a sampling profiler cheap enough to run in every timed run.

cProfile hooks every Python call and slows Python code 1.5-2x, so it cannot run while a phase is
timed. `Sampler` instead asks for a `SIGALRM` every `interval` seconds of wall time (5 ms,
`signal.setitimer`); Python runs the handler in the main thread at its next bytecode, with the
frame it interrupted, and the handler counts, for each function, the samples in which it is on
top of the stack (its *own* time) and those in which it is anywhere on the stack (its
*cumulative* time, a recursive function counted once a sample). Each sample also carries the
wall time since the previous one, so a function's seconds are the time during which it was seen.

Why a signal and not a thread reading `sys._current_frames()`: a thread can read the main
thread's stack only when it holds the GIL, and it gets the GIL soonest when the main thread
gives it up, in a C call that releases it (the ahocorasick automaton, sqlite3). Such calls then
take nearly every sample: on 3,000 papers scanned at ingest, the automaton call was 13% of the
time by a clock around it and 100% of a thread sampler's (65% with a 0.2 ms switch interval);
the signal's handler put it at the 13% the clock says (`tests/test_bench.py`). A signal's
handler runs only between bytecodes, so a long C call's time goes to the Python function that
made it, through the next sample's weight, which is where it belongs. Python retries the system
calls a signal interrupts (PEP 475); children do not inherit the timer.

What a sample cannot see: code in C (numpy, sqlite3, the ahocorasick automaton, regular
expressions) has no Python frame, so its time goes to the Python function that called it.
Other threads are not sampled.

A worked example::

    with Sampler() as sampler:
        work()
    profile = sampler.profile("my-phase")
    print("\\n".join(render_profiles([profile])))

`profile.own[0].where` is then e.g. ``digest/match/hitscan.py:120(HitScanner.scan)``: paths are
relative to the repository, to `site-packages` for an installed package (``numpy/...``) or to the
standard library.
"""

from __future__ import annotations

import json
import signal
import sysconfig
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType, TracebackType
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
STDLIB = sysconfig.get_paths()["stdlib"]
INTERVAL = 0.005  # seconds between samples
TOP = 5  # entries per ranking in the report
KEPT = 20  # entries per ranking kept in a phase's profile file
# The bench harness's own frames: on the stack of every sample of a phase (the child's entry, the
# phase function and its timing wrappers), so left out of the cumulative ranking, where they
# would take the first places with ~100% each and say nothing.
HARNESS: tuple[str, ...] = (
    "bench/run.py:",
    "bench/phases.py:",
    "bench/__main__.py:",
    "<frozen runpy>:",
    "runpy.py:",
    # Import machinery: the time of an import goes to the imported module's body (`<module>`).
    "<frozen importlib._bootstrap>:",
    "<frozen importlib._bootstrap_external>:",
)


class Entry(NamedTuple):
    """One function of a ranking: where it is, in how many samples, for how many seconds."""

    where: str  # file:line(function), the line of its `def`
    samples: int
    seconds: float


@dataclass(frozen=True)
class PhaseProfile:
    """The rankings of one phase, best first, and what the sampler itself cost."""

    phase: str
    samples: int
    seconds: float  # the sampled wall time (the samples' weights added up)
    interval: float
    sampler_cpu: float  # seconds the sampler's signal handler took
    own: tuple[Entry, ...]
    cumulative: tuple[Entry, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (entries as [where, samples, seconds] lists)."""
        return {
            "phase": self.phase,
            "samples": self.samples,
            "seconds": self.seconds,
            "interval": self.interval,
            "sampler_cpu": self.sampler_cpu,
            "own": [list(entry) for entry in self.own],
            "cumulative": [list(entry) for entry in self.cumulative],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhaseProfile:
        """The profile `as_dict` wrote."""
        return cls(
            phase=str(data["phase"]),
            samples=int(data["samples"]),
            seconds=float(data["seconds"]),
            interval=float(data["interval"]),
            sampler_cpu=float(data["sampler_cpu"]),
            own=tuple(Entry(str(w), int(n), float(s)) for w, n, s in data["own"]),
            cumulative=tuple(Entry(str(w), int(n), float(s)) for w, n, s in data["cumulative"]),
        )


def short_path(filename: str, root: str = str(ROOT), stdlib: str = STDLIB) -> str:
    """`filename` as the report shows it: from the package in site-packages, else relative to the
    repository or the standard library, else as it is (`<frozen ...>`, `<string>`)."""
    marker = "site-packages/"
    if marker in filename:
        return filename.rsplit(marker, 1)[1]
    for base in (root, stdlib):
        prefix = base.rstrip("/") + "/"
        if filename.startswith(prefix):
            return filename[len(prefix) :]
    return filename


def where(code: CodeType) -> str:
    """`file:line(function)` of a code object, its qualified name and the line of its `def`."""
    return f"{short_path(code.co_filename)}:{code.co_firstlineno}({code.co_qualname})"


class Sampler:
    """Samples the main thread's stack on a wall-clock timer signal, until stopped."""

    def __init__(self, interval: float = INTERVAL, skip: Sequence[str] = HARNESS) -> None:
        self.interval = interval
        self.skip = tuple(skip)
        self.samples = 0
        self.sampler_cpu = 0.0  # seconds spent in the handler
        # Each distinct stack once, keyed by its code objects' ids: a code object's own hash
        # reads its name, bytecode and constants (a 60-frame stack: 21 us a sample counted per
        # code object, 13 us per stack of ids; the stacks are unfolded once, at the end).
        self._stacks: dict[tuple[int, ...], list[CodeType]] = {}
        self._counts: dict[tuple[int, ...], int] = {}
        self._weights: dict[tuple[int, ...], float] = {}
        self._last = 0.0
        self._previous: Any = None

    def start(self) -> None:
        """Start sampling; only from the main thread (where Python runs signal handlers)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("the sampler samples the main thread: start it there")
        self._last = time.perf_counter()
        self._previous = signal.signal(signal.SIGALRM, self._on_signal)
        signal.setitimer(signal.ITIMER_REAL, self.interval, self.interval)

    def stop(self) -> None:
        """Stop sampling and put back the signal's previous handler."""
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        if self._previous is not None:
            signal.signal(signal.SIGALRM, self._previous)
            self._previous = None

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        started = time.perf_counter()
        if frame is not None:
            self._record(frame, started - self._last)
        self._last = time.perf_counter()
        self.sampler_cpu += self._last - started

    def _record(self, frame: FrameType, weight: float) -> None:
        """Count one sample of the stack whose top is `frame`."""
        self.samples += 1
        codes = []
        current: FrameType | None = frame
        while current is not None:
            codes.append(current.f_code)
            current = current.f_back
        key = tuple(map(id, codes))
        if key in self._counts:
            self._counts[key] += 1
            self._weights[key] += weight
        else:
            self._stacks[key] = codes
            self._counts[key] = 1
            self._weights[key] = weight

    def profile(self, phase: str, keep: int = KEPT) -> PhaseProfile:
        """The rankings so far: the `keep` first by own and by cumulative seconds."""
        own, cumulative = Tally(), Tally()
        places: dict[int, str] = {}  # a long phase has ~10k stacks of ~50 frames: name each once
        for key, codes in self._stacks.items():
            count, weight = self._counts[key], self._weights[key]
            named = _named(codes, places)
            own.add(named[0], count, weight)
            for place in set(named):
                if not place.startswith(self.skip):
                    cumulative.add(place, count, weight)
        return PhaseProfile(
            phase=phase,
            samples=self.samples,
            seconds=sum(self._weights.values()),
            interval=self.interval,
            sampler_cpu=self.sampler_cpu,
            own=own.ranked()[:keep],
            cumulative=cumulative.ranked()[:keep],
        )


def _named(codes: list[CodeType], places: dict[int, str]) -> list[str]:
    """The places of `codes`, each code object named once (`places` keeps them by id)."""
    for code in codes:
        if id(code) not in places:
            places[id(code)] = where(code)
    return [places[id(code)] for code in codes]


class Tally:
    """Samples and seconds per place, ranked by seconds."""

    def __init__(self) -> None:
        self.samples: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def add(self, place: str, samples: int, seconds: float) -> None:
        """Count `samples` samples of `seconds` at `place`."""
        self.samples[place] += samples
        self.seconds[place] += seconds

    def ranked(self) -> tuple[Entry, ...]:
        """Every place, most seconds first (ties by place)."""
        order = sorted(self.samples, key=lambda place: (-self.seconds[place], place))
        return tuple(Entry(place, self.samples[place], self.seconds[place]) for place in order)


# --- files ----------------------------------------------------------------------------------------


def profile_path(workdir: Path, phase: str) -> Path:
    """Where the child process of `phase` writes its profile."""
    return workdir / f"{phase}.profile.json"


def write_profile(profile: PhaseProfile, path: Path) -> None:
    """Write `profile` as JSON."""
    path.write_text(json.dumps(profile.as_dict(), indent=1))


def read_profile(path: Path) -> PhaseProfile | None:
    """The profile at `path`, or None when there is none (or it is unreadable)."""
    try:
        return PhaseProfile.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- the report -----------------------------------------------------------------------------------

SECTION_HEADER = (
    "Each phase's main thread sampled every {ms:g} ms of wall time during the whole phase (its "
    "setup, floors and baselines included) by a timer signal (`signal.setitimer`), whose "
    "handler reads the stack it interrupted. Code in C (numpy, sqlite3, ahocorasick, regular "
    "expressions) has no frame of its own: its time shows as the Python function that called "
    "it. *Own*: the function on top of the stack; *cumulative*: the function anywhere on the "
    "stack, the harness's own frames (bench/run.py, bench/phases.py) and the import machinery "
    "left out. Each sample counts for the wall time since the previous one (a handler runs "
    "between bytecodes, so a long C call's time goes to its caller with the next sample); "
    "seconds are those times added up, the share is of the phase's sampled time. Places are "
    "`file:line(function)`, the line of the `def`."
)


def _cell(entry: Entry | None, profile: PhaseProfile) -> str:
    if entry is None:
        return "| |"
    share = entry.seconds / profile.seconds if profile.seconds else 0.0
    return f"`{entry.where}` | {share:.1%} | {entry.seconds:.2f}"


def _phase_lines(profile: PhaseProfile, top: int) -> list[str]:
    every = profile.seconds / profile.samples * 1000 if profile.samples else 0.0
    cost = profile.sampler_cpu / profile.seconds if profile.seconds else 0.0
    lines = [
        f"### {profile.phase}",
        "",
        f"{profile.samples:,} samples over {profile.seconds:.1f} s (one every {every:.1f} ms); "
        f"the sampler's own time {profile.sampler_cpu:.2f} s ({cost:.1%} of the phase).",
        "",
        "| # | By own time | Share | s | By cumulative time | Share | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank in range(top):
        own = profile.own[rank] if rank < len(profile.own) else None
        total = profile.cumulative[rank] if rank < len(profile.cumulative) else None
        lines.append(f"| {rank + 1} | {_cell(own, profile)} | {_cell(total, profile)} |")
    return lines


def render_profiles(profiles: Sequence[PhaseProfile], top: int = TOP) -> list[str]:
    """The report's "Where the time goes" section (no lines when there is no profile)."""
    if not profiles:
        return []
    ms = profiles[0].interval * 1000
    lines = ["", "## Where the time goes", "", SECTION_HEADER.format(ms=ms)]
    for profile in profiles:
        lines += ["", *_phase_lines(profile, top)]
    return lines
