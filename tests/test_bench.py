"""The benchmark harness at its smoke size, end to end: every phase runs and the report has every
figure and where each phase's time went. No timing assertions: the machine decides those numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.generate import ProfileShape, iter_listings, iter_papers, make_profile
from bench.naive import compile_naive, naive_match, term_pattern
from bench.phases import PHASES
from bench.run import REQUIRED_KEYS, RunLog, _child_command, _reused, parse_args
from bench.sampler import (
    Entry,
    PhaseProfile,
    Sampler,
    profile_path,
    read_profile,
    render_profiles,
    short_path,
    write_profile,
)

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    report = tmp_path / "RESULTS.md"
    figures_path = tmp_path / "results.json"
    command = [sys.executable, "-m", "bench", "--size", "smoke", "--workdir", str(tmp_path)]
    command += ["--out", str(report), "--json", str(figures_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = {f["key"]: f for f in json.loads(figures_path.read_text())}
    assert set(REQUIRED_KEYS) <= set(figures)
    text = report.read_text()
    for key in REQUIRED_KEYS:
        assert f"`{key}`" in text
    assert "| Figure | Value | Target | Pass/fail |" in text
    assert "Machine:" in text and "Command:" in text and "Date:" in text
    assert figures["stored_papers"]["value"] == 400
    sent = re.search(r"(\d+) digests sent, (\d+) accepted by the sink", figures["e2e_time"]["note"])
    assert sent is not None and sent[1] == sent[2]  # every digest reached the SMTP sink
    _assert_where_the_time_goes(text, tmp_path)


def _assert_where_the_time_goes(text: str, workdir: Path) -> None:
    """The report ends with five own and five cumulative places for every phase, none of them the
    harness's own frames in the cumulative column, and each phase's profile file is there."""
    assert "\n## Where the time goes\n" in text
    sections = text.split("\n## Where the time goes\n", 1)[1].split("\n### ")[1:]
    assert [section.split("\n", 1)[0] for section in sections] == list(PHASES)
    for section in sections:
        _assert_five_places_each(section)
    for phase in PHASES:
        profile = read_profile(profile_path(workdir, phase))
        assert profile is not None and profile.samples > 0 and len(profile.own) >= 5


def _assert_five_places_each(section: str) -> None:
    rows = [line for line in section.splitlines() if re.match(r"\| [1-5] \|", line)]
    places = [re.findall(r"`([^`]+:\d+\([^`]+\))`", row) for row in rows]
    assert [len(pair) for pair in places] == [2] * 5, section
    assert not any(total.startswith(("bench/run.py", "bench/phases.py")) for _, total in places)


def test_generator_is_deterministic_and_streams() -> None:
    first = [listing["title"] for listing in iter_listings(50, seed=3)]
    again = [listing["title"] for listing in iter_listings(50, seed=3)]
    assert first == again
    assert first != [listing["title"] for listing in iter_listings(50, seed=4)]
    papers = iter_papers(10**9)  # an iterator: nothing is generated up front
    assert next(papers).key.startswith("arxiv:25")


def test_generated_profile_has_the_requested_shape() -> None:
    profile = make_profile(0, ProfileShape())
    assert 45 <= len(profile.keywords) <= 50  # duplicates drawn twice are dropped
    assert len(profile.all_of) == 5
    assert len(profile.exclude) == 3
    assert 18 <= len(profile.authors) <= 20
    assert profile == make_profile(0, ProfileShape())


def test_naive_patterns() -> None:
    assert term_pattern("KV cache").search("a KV-cache here")
    assert term_pattern("quantiz*").search("Quantization works")
    assert not term_pattern("RL").search("a URL")
    assert term_pattern("--").search("anything") is None
    profile = make_profile(1, ProfileShape())
    paper = next(iter_papers(1))
    assert naive_match(paper, compile_naive(profile)) in (True, False)


# --- where the time goes (bench/sampler.py) -------------------------------------------------------


def _spin_in_helper(sampler: Sampler, samples: int) -> int:
    """Python work, no clock read, until `sampler` has taken `samples` samples (bounded)."""
    turns = 0
    while sampler.samples < samples and turns < 50_000_000:
        turns += 1
    return turns


def _calls_the_helper(sampler: Sampler) -> int:
    return _spin_in_helper(sampler, 30)


def _python_part(turns: int) -> int:
    total = 0
    for turn in range(turns):
        total += turn % 7
    return total


def _gil_releasing_part() -> None:
    time.sleep(0.002)  # a C call that gives up the GIL, as the automaton and sqlite3 do


def test_a_call_that_releases_the_gil_gets_its_share_of_the_samples_not_all() -> None:
    """A thread sampler got the GIL mostly while the main thread was in a call that released
    it, and gave such calls nearly every sample (bench/sampler.py); a timer signal samples the
    main thread wherever it is. The shares are compared with clocks around each part, with a
    wide margin: this is about where samples land, not about speed."""
    spent = {"python": 0.0, "sleep": 0.0}
    sampler = Sampler(interval=0.001)
    with sampler:
        for _ in range(150):
            started = time.perf_counter()
            _python_part(20_000)
            middle = time.perf_counter()
            _gil_releasing_part()
            spent["python"] += middle - started
            spent["sleep"] += time.perf_counter() - middle
    own = {entry.where.rsplit("(", 1)[1]: entry.seconds for entry in sampler.profile("x").own}
    sampled = own.get("_python_part)", 0.0) + own.get("_gil_releasing_part)", 0.0)
    share = own.get("_python_part)", 0.0) / sampled
    assert abs(share - spent["python"] / sum(spent.values())) < 0.2, (own, spent)


def test_the_sampler_starts_only_in_the_main_thread() -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Sampler().start()
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    assert len(errors) == 1


def test_sampler_finds_the_function_that_spins() -> None:
    sampler = Sampler(skip=("pluggy/",))
    with sampler:
        _calls_the_helper(sampler)
    profile = sampler.profile("spin", keep=1000)
    assert profile.samples > 0 and profile.seconds > 0
    name = short_path(__file__)
    assert name == "tests/test_bench.py"
    assert profile.own[0].where.startswith(f"{name}:")
    assert profile.own[0].where.endswith("(_spin_in_helper)")
    cumulative = [entry.where for entry in profile.cumulative]
    assert any(place.endswith("(_calls_the_helper)") for place in cumulative)
    assert any(place.startswith("_pytest/") for place in cumulative)  # a library, shortened
    assert not any(place.startswith("pluggy/") for place in cumulative)  # skipped
    assert any(entry.where.startswith("pluggy/") for entry in _own_and_stack(sampler))


def _own_and_stack(sampler: Sampler) -> tuple[Entry, ...]:
    """Every place on the sampled stacks, nothing skipped."""
    sampler.skip = ()
    return sampler.profile("spin", keep=1000).cumulative


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("/repo/digest/match/scan.py", "digest/match/scan.py"),
        (
            "/repo/.venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py",
            "numpy/core/fromnumeric.py",
        ),
        ("/usr/lib/python3.11/site-packages/x/site-packages/y.py", "y.py"),
        ("/py/lib/python3.11/gzip.py", "gzip.py"),
        ("/py/lib/python3.11/json/decoder.py", "json/decoder.py"),
        ("<frozen runpy>", "<frozen runpy>"),
        ("/elsewhere/tool.py", "/elsewhere/tool.py"),
        ("/repository/x.py", "/repository/x.py"),
    ],
)
def test_short_path(filename: str, shown: str) -> None:
    assert short_path(filename, root="/repo", stdlib="/py/lib/python3.11") == shown


PROFILE = PhaseProfile(
    phase="match-day",
    samples=1200,
    seconds=10.0,
    interval=0.005,
    sampler_cpu=0.12,
    own=(
        Entry("digest/match/scan.py:97(Scanner._hits)", 500, 4.0),
        Entry("bench/naive.py:63(_hits)", 300, 3.5),
    ),
    cumulative=tuple(
        Entry(f"digest/m{n}.py:{n}(f{n})", 1200 - 100 * n, 9.0 - n) for n in range(1, 8)
    ),
)


def test_render_profiles_exact_text() -> None:
    lines = render_profiles([PROFILE], top=3)
    assert lines[:2] == ["", "## Where the time goes"]
    assert "C (numpy, sqlite3, ahocorasick" in lines[3]
    assert lines[4:] == [
        "",
        "### match-day",
        "",
        "1,200 samples over 10.0 s (one every 8.3 ms); the sampler's own time 0.12 s "
        "(1.2% of the phase).",
        "",
        "| # | By own time | Share | s | By cumulative time | Share | s |",
        "|---|---|---|---|---|---|---|",
        "| 1 | `digest/match/scan.py:97(Scanner._hits)` | 40.0% | 4.00 "
        "| `digest/m1.py:1(f1)` | 80.0% | 8.00 |",
        "| 2 | `bench/naive.py:63(_hits)` | 35.0% | 3.50 | `digest/m2.py:2(f2)` | 70.0% | 7.00 |",
        "| 3 | | | | `digest/m3.py:3(f3)` | 60.0% | 6.00 |",
    ]
    assert render_profiles([]) == []


def test_profile_file_round_trip_and_reuse(tmp_path: Path) -> None:
    path = profile_path(tmp_path, "match-day")
    assert read_profile(path) is None
    write_profile(PROFILE, path)
    assert read_profile(path) == PROFILE
    (tmp_path / "match-day.json").write_text("[]")
    log = RunLog("smoke", "python -m bench", datetime(2026, 1, 1, tzinfo=UTC), (0.0, 0.0, 0.0))
    assert _reused("match-day", tmp_path, log) == []
    assert log.reused == ["match-day"] and log.profiles == [PROFILE]
    path.write_text("{not json")
    assert read_profile(path) is None


@pytest.mark.parametrize(
    ("flags", "interval_ms"),
    [([], 5.0), (["--no-sampler"], 0.0), (["--sample-ms", "20"], 20.0)],
)
def test_each_phase_is_told_its_sampling_interval(
    flags: list[str], interval_ms: float, tmp_path: Path
) -> None:
    args = parse_args(["--size", "smoke", *flags])
    command = _child_command("render", args, tmp_path, tmp_path / "render.json")
    assert float(command[command.index("--sample-ms") + 1]) == interval_ms
