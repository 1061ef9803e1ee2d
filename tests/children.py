"""Environments for the child processes tests start."""

from __future__ import annotations

import os
from pathlib import Path

SHIFT_VARIABLE = "TESTS_CLOCK_SHIFT_SECONDS"
# The directory whose sitecustomize moves a child's clock (see tests/clockshift/sitecustomize.py).
CLOCK_SHIFT_DIR = Path(__file__).parent / "clockshift"


def child_env(variables: dict[str, str]) -> dict[str, str]:
    """`variables` as a child's whole environment, plus this run's clock shift if it has one.

    A test that gives a child a clean environment would otherwise run it on today's date in the
    suite's shifted run, while the test itself lives 400 days ahead.
    """
    shift = os.environ.get(SHIFT_VARIABLE)
    if not shift:
        return dict(variables)
    path = [str(CLOCK_SHIFT_DIR), *filter(None, [variables.get("PYTHONPATH")])]
    return {**variables, SHIFT_VARIABLE: shift, "PYTHONPATH": os.pathsep.join(path)}
