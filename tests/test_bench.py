"""The benchmark harness at its smoke size, end to end: every phase runs and the report has every
figure. No timing assertions: the machine decides those numbers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.generate import ProfileShape, iter_listings, iter_papers, make_profile
from bench.naive import compile_naive, naive_match, term_pattern
from bench.run import REQUIRED_KEYS

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
