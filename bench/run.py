"""Run the benchmarks and write the report.

    python -m bench --size smoke|small|full [--workdir DIR] [--out RESULTS.md] [--json FILE]
                    [--phases ingest,match-day,...] [--reuse] [--cprofile]
                    [--no-sampler | --sample-ms MS]

Each phase runs in its own process (`--phase NAME`, internal) so its peak RSS is its own; the
ingest phase builds the SQLite database the later phases read. The report (a Markdown table of
figure, value, target, pass/fail) goes to `--out` (default: bench/RESULTS.md for the full size,
else the work directory) and is printed. Each phase is sampled while it runs (bench/sampler.py,
a timer signal sampling the phase's stack every 5 ms; `--no-sampler` turns it off) and the
report ends with where each phase's time went: its top five functions by own and by cumulative
time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.phases import PHASES, SIZES, Figure, SizePlan, measure_startup
from bench.sampler import (
    INTERVAL,
    PhaseProfile,
    Sampler,
    profile_path,
    read_profile,
    render_profiles,
    write_profile,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "bench" / "RESULTS.md"

# Every figure a complete report has, whatever the size.
REQUIRED_KEYS: tuple[str, ...] = (
    "ingest_time",
    "ingest_rate",
    "db_size",
    "generate_rate",
    "rss_ingest",
    *(
        f"{prefix}_{which}{suffix}"
        for which in ("day", "kw", "year")
        for prefix, suffix in (
            ("match", "_time"),
            ("match", "_rate"),
            ("match", "_setup"),
            ("match", "_naive_rate"),
            ("match", "_ratio"),
            ("match", "_hit_rate"),
            ("rss_match", ""),
            ("match", "_hits_scan"),
            ("match", "_hits_warm"),
            ("match", "_hits_cold"),
            ("match", "_hits_cached"),
            ("match", "_hits_over_scan"),
            ("rss_match", "_hits_scan"),
            ("rss_match", "_hits"),
            ("rss_match", "_hits_cached"),
        )
    ),
    "store_read_rate",
    "render_ms",
    "render_cold_ms",
    "rss_render",
    "e2e_time",
    "e2e_first_time",
    "rss_e2e",
    "added_time",
    "added_unchanged",
    "added_direct",
    "startup_time",
)


@dataclass
class RunLog:
    """Everything the report needs besides the figures."""

    size: str
    command: str
    started: datetime
    load_start: tuple[float, float, float]
    phase_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    profiles: list[PhaseProfile] = field(default_factory=list)
    seconds: float = 0.0
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)


# --- one phase, in a child process ----------------------------------------------------------------


def run_child(
    phase: str,
    plan: SizePlan,
    workdir: Path,
    result: Path,
    profile: bool,
    sample_ms: float = INTERVAL * 1000,
) -> int:
    """Run one phase in this process and write its figures to `result` as JSON (and, sampled,
    where its time went to WORKDIR/PHASE.profile.json)."""
    profiler = cProfile.Profile() if profile else None
    sampler = Sampler(sample_ms / 1000) if sample_ms > 0 else None
    if sampler is not None:
        sampler.start()
    if profiler is not None:
        profiler.enable()
    figures = PHASES[phase](plan, workdir)
    if profiler is not None:
        profiler.disable()
        write_cprofile(profiler, workdir / f"profile-{phase}.txt")
    if sampler is not None:
        sampler.stop()
        write_profile(sampler.profile(phase), profile_path(workdir, phase))
    result.write_text(json.dumps([f.as_dict() for f in figures], indent=1))
    return 0


def write_cprofile(profiler: cProfile.Profile, path: Path, top: int = 30) -> None:
    """The hottest functions, by own time and by cumulative time."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    path.write_text(out.getvalue())


def spawn_phase(phase: str, args: argparse.Namespace, workdir: Path) -> tuple[list[Figure], str]:
    """Run `phase` in a fresh interpreter; its figures, or the error it ended with."""
    result = workdir / f"{phase}.json"
    result.unlink(missing_ok=True)
    profile_path(workdir, phase).unlink(missing_ok=True)
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    command = _child_command(phase, args, workdir, result)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not result.exists():
        lines = (done.stderr or done.stdout or "no output").strip().splitlines()
        return [], f"exit {done.returncode}: {lines[-1] if lines else ''}"
    return [Figure(**item) for item in json.loads(result.read_text())], ""


def _child_command(phase: str, args: argparse.Namespace, workdir: Path, result: Path) -> list[str]:
    command = [sys.executable, "-m", "bench.run", "--phase", phase, "--size", args.size]
    command += ["--workdir", str(workdir), "--result", str(result)]
    command += ["--cprofile"] if args.cprofile else []
    command += ["--sample-ms", "0" if args.no_sampler else str(args.sample_ms)]
    return command


# --- the whole run --------------------------------------------------------------------------------


def run_all(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run every chosen phase, then the start-up figure; write and print the report."""
    plan = SIZES[args.size]
    workdir = Path(args.workdir or ROOT / "out" / f"bench-{args.size}").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.size, _command(argv), datetime.now(UTC), os.getloadavg())
    started = time.perf_counter()
    figures: list[Figure] = []
    chosen = _chosen_phases(args.phases)
    for phase in PHASES:
        if phase in chosen:
            figures += _run_phase(phase, args, workdir, log)
        elif args.reuse:
            figures += _reused(phase, workdir, log)
    phase_started = time.perf_counter()
    figures += measure_startup(plan)
    log.phase_seconds["startup"] = time.perf_counter() - phase_started
    log.seconds = time.perf_counter() - started
    log.load_end = os.getloadavg()
    report = render_report(figures, log)
    out = Path(args.out) if args.out else _default_out(args.size, workdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    json_path = Path(args.json) if args.json else workdir / "results.json"
    json_path.write_text(json.dumps([f.as_dict() for f in figures], indent=1))
    print(report)
    print(f"[bench] report: {out}; figures: {json_path}", file=sys.stderr)
    return 1 if log.errors else 0


def _run_phase(phase: str, args: argparse.Namespace, workdir: Path, log: RunLog) -> list[Figure]:
    """Run `phase` in its child process; note its wall time, profile and error in `log`."""
    print(f"[bench] {phase} …", file=sys.stderr, flush=True)
    phase_started = time.perf_counter()
    found, error = spawn_phase(phase, args, workdir)
    log.phase_seconds[phase] = time.perf_counter() - phase_started
    if error:
        log.errors[phase] = error
        print(f"[bench] {phase} failed: {error}", file=sys.stderr)
    _add_profile(phase, workdir, log)
    return found


def _reused(phase: str, workdir: Path, log: RunLog) -> list[Figure]:
    """The figures (and profile) of `phase` from this work directory's last run of it, if any."""
    result = workdir / f"{phase}.json"
    if not result.exists():
        return []
    log.reused.append(phase)
    _add_profile(phase, workdir, log)
    return [Figure(**item) for item in json.loads(result.read_text())]


def _add_profile(phase: str, workdir: Path, log: RunLog) -> None:
    profile = read_profile(profile_path(workdir, phase))
    if profile is not None:
        log.profiles.append(profile)


def _chosen_phases(text: str | None) -> list[str]:
    if not text:
        return list(PHASES)
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PHASES]
    if unknown:
        raise SystemExit(f"unknown phase {unknown[0]!r} (phases: {', '.join(PHASES)})")
    return chosen


def _default_out(size: str, workdir: Path) -> Path:
    return DEFAULT_RESULTS if size == "full" else workdir / "RESULTS.md"


def _command(argv: Sequence[str]) -> str:
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(ROOT))
    except ValueError:
        shown = str(python)
    return shlex.join([shown, "-m", "bench", *argv])


# --- the report -----------------------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores, RAM, Python, SQLite and OS of this machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {_ram_gib():.1f} GiB RAM; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"{platform.system()} {platform.release()}"
    )


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _value(figure: Figure) -> str:
    number = figure.value
    text = f"{number:,.0f}" if float(number).is_integer() else f"{number:,}"
    return f"{text} {figure.unit}"


def _verdict(figure: Figure) -> str:
    return {True: "pass", False: "**FAIL**", None: "—"}[figure.ok]


def render_report(figures: list[Figure], log: RunLog) -> str:
    """The Markdown report: context, the figure table, phase times and errors."""
    passed = sum(f.ok is True for f in figures)
    failed = sum(f.ok is False for f in figures)
    load = ", ".join(f"{x:.2f}" for x in log.load_start)
    load_end = ", ".join(f"{x:.2f}" for x in log.load_end)
    lines = [
        f"# Benchmark results (`--size {log.size}`)",
        "",
        f"- Date: {log.started:%Y-%m-%d %H:%M} UTC",
        f"- Command: `{log.command}`",
        f"- Machine: {machine()}",
        f"- Load average (1, 5, 15 min) at start: {load}; at end: {load_end} "
        "(a shared machine: other work may have run at the same time)",
        f"- Wall time of the whole run: {log.seconds:.0f} s",
        f"- Targets: {passed} pass, {failed} fail; — means not judged (informative, or the "
        "target is stated for another size)",
        "",
        "| Figure | Value | Target | Pass/fail | Note |",
        "|---|---|---|---|---|",
    ]
    for figure in figures:
        target = figure.target or ""
        lines.append(
            f"| {figure.label} `{figure.key}` | {_value(figure)} | {target} "
            f"| {_verdict(figure)} | {figure.note} |"
        )
    lines += ["", "Phase wall times (each phase in its own process, setup included):", ""]
    lines += [f"- {phase}: {seconds:.1f} s" for phase, seconds in log.phase_seconds.items()]
    return "\n".join(lines + _tail(log)) + "\n"


def _tail(log: RunLog) -> list[str]:
    """The report's last lines: phases reused, errors, where the time goes."""
    lines: list[str] = []
    if log.reused:
        lines += [
            "",
            f"Reused from this work directory's previous run (`--reuse`): {', '.join(log.reused)}.",
        ]
    if log.errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {phase}: {error}" for phase, error in log.errors.items()]
    return lines + render_profiles(log.profiles)


# --- command line ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="digest benchmarks")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--workdir", help="where databases and listings go (default out/bench-SIZE)"
    )
    parser.add_argument("--out", help="the Markdown report (default bench/RESULTS.md for full)")
    parser.add_argument("--json", help="the figures as JSON (default WORKDIR/results.json)")
    parser.add_argument("--phases", help=f"comma-separated subset of: {', '.join(PHASES)}")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="report the last figures of the phases not in --phases (from WORKDIR)",
    )
    parser.add_argument(
        "--cprofile", action="store_true", help="profile each phase to WORKDIR/profile-PHASE.txt"
    )
    parser.add_argument(
        "--no-sampler",
        action="store_true",
        help="do not sample where each phase's time goes (the report's last section)",
    )
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=INTERVAL * 1000,
        help="milliseconds between two samples of a phase's stack (default %(default)g)",
    )
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m bench` (and `python -m bench.run`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.phase:
        workdir = Path(args.workdir)
        plan, result = SIZES[args.size], Path(args.result)
        sample_ms = 0.0 if args.no_sampler else args.sample_ms
        return run_child(args.phase, plan, workdir, result, args.cprofile, sample_ms)
    return run_all(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
