"""The shifted-clock run's harness (`.ci/run`): a child's wall clock moves, its timers do not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.children import CLOCK_SHIFT_DIR, SHIFT_VARIABLE, child_env

FOUR_HUNDRED_DAYS = 400 * 86400

# Compares the child's idea of now with the kernel's (a new file's mtime, which no library moves),
# and times a sleep on the monotonic clock.
PROBE = """
import json, os, sys, tempfile, time
from datetime import datetime
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as file:
    kernel = os.stat(file.name).st_mtime
    started = time.monotonic()
    time.sleep(0.05)
    print(json.dumps({"ahead": datetime.now().timestamp() - kernel,
                      "time_ahead": time.time() - kernel,
                      "slept": time.monotonic() - started}))
"""


def _probe(tmp_path: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, float] = json.loads(done.stdout)
    return result


def test_a_child_with_the_shift_lives_400_days_ahead_and_sleeps_for_real(tmp_path: Path) -> None:
    env = {SHIFT_VARIABLE: str(FOUR_HUNDRED_DAYS), "PYTHONPATH": str(CLOCK_SHIFT_DIR)}
    probe = _probe(tmp_path, {**env, "PATH": os.environ.get("PATH", "")})
    assert probe["ahead"] == pytest.approx(FOUR_HUNDRED_DAYS, abs=60)
    assert probe["time_ahead"] == pytest.approx(FOUR_HUNDRED_DAYS, abs=60)
    assert 0.04 <= probe["slept"] < 5


@pytest.mark.parametrize("given", [{}, {"PYTHONPATH": "/somewhere"}], ids=["plain", "with-path"])
def test_child_env_passes_the_runs_shift_on(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str]
) -> None:
    monkeypatch.setenv(SHIFT_VARIABLE, "123")
    env = child_env({"COLUMNS": "80", **given})
    assert env[SHIFT_VARIABLE] == "123"
    assert env["COLUMNS"] == "80"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(CLOCK_SHIFT_DIR), *given.values()]


def test_child_env_without_a_shift_is_the_variables_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SHIFT_VARIABLE, raising=False)
    assert child_env({"PATH": ""}) == {"PATH": ""}
