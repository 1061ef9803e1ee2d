"""The scheduler: per-profile cron triggers in each time zone (DST-safe), a fetch job, one
scheduler per database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from digest.app import build_app
from digest.schedule import MISFIRE_GRACE_SECONDS, schedule_jobs, send_trigger
from digest.settings import Settings
from digest.store import Store

from .conftest import DATA, PROFILE, Clock

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # The night clocks go forward (29 March 2026) and back (25 October 2026): still 07:30.
        (datetime(2026, 3, 28, 8, 0, tzinfo=BERLIN), datetime(2026, 3, 29, 7, 30, tzinfo=BERLIN)),
        (datetime(2026, 10, 24, 8, 0, tzinfo=BERLIN), datetime(2026, 10, 25, 7, 30, tzinfo=BERLIN)),
        (datetime(2026, 11, 22, 7, 0, tzinfo=BERLIN), datetime(2026, 11, 22, 7, 30, tzinfo=BERLIN)),
    ],
)
def test_send_trigger_is_local_time_across_dst(
    listing_settings: Callable[..., Settings], after: datetime, expected: datetime
) -> None:
    profile = listing_settings().profile_records()[0]
    fire = send_trigger(profile).get_next_fire_time(None, after)
    assert fire == expected
    assert fire is not None and fire.utcoffset() == expected.utcoffset()


def test_jobs_fetch_on_an_interval_and_send_per_profile(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    settings = make_settings(
        fetch={"interval_minutes": 30},
        profiles=[
            PROFILE,
            {**PROFILE, "name": "tokyo", "timezone": "Asia/Tokyo", "send_at": "06:00"},
        ],
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    schedule_jobs(scheduler, build_app(settings, store=Store.open(None), clock=clock))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"fetch", "send:me", "send:tokyo"}
    assert jobs["fetch"].trigger.interval.total_seconds() == 1800
    assert str(jobs["send:tokyo"].trigger.timezone) == "Asia/Tokyo"
    for job in jobs.values():
        assert job.coalesce and job.max_instances == 1
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[store]
path = "d.sqlite"
[delivery]
method = "maildir"
maildir = "mail"
[[sources.files]]
name = "listings"
path = "{DATA / "listings.jsonl"}"
[[profiles]]
name = "me"
email = "me@example.org"
keywords = ["KV cache"]
""",
        encoding="utf-8",
    )
    return path


def test_a_second_scheduler_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    config = _config(tmp_path)
    command = [sys.executable, "-m", "digest", "--config", str(config), "run"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lock = tmp_path / "d.sqlite.lock"
        for _ in range(200):  # the first scheduler is up once its lock names it
            if lock.exists() and "digest run" in lock.read_text():
                break
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert second.returncode == 6
        assert "is already using this database; refusing to start digest run" in second.stderr
        assert "Traceback" not in second.stderr
        # Meanwhile the first one fetched on start.
        for _ in range(200):
            store = Store.open(tmp_path / "d.sqlite")
            count = store.count_papers()
            store.close()
            if count:
                break
            time.sleep(0.05)
        assert count == 6
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=30)
