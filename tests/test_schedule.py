"""The scheduler: per-profile cron triggers in each time zone (DST-safe), a fetch job, one
scheduler per database."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from digest.app import build_app
from digest.models import Profile
from digest.schedule import (
    MISFIRE_GRACE_SECONDS,
    catch_up,
    is_due,
    previous_send_time,
    schedule_jobs,
    send_trigger,
)
from digest.settings import Settings
from digest.sources import FetchContext, FetchResult
from digest.sources.files import parse_listing_jsonl
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
    assert set(jobs) == {"fetch", "send:me", "send:tokyo", "catch-up"}
    assert jobs["fetch"].trigger.interval.total_seconds() == 1800
    assert str(jobs["send:tokyo"].trigger.timezone) == "Asia/Tokyo"
    for job in (jobs["fetch"], jobs["send:me"], jobs["send:tokyo"]):
        assert job.coalesce and job.max_instances == 1
        assert job.misfire_grace_time == MISFIRE_GRACE_SECONDS


def test_profiles_sent_at_the_same_minute_share_one_send_job(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    """One job per send minute plans its profiles in one pass (one candidate query)."""
    settings = make_settings(
        profiles=[
            PROFILE,
            {**PROFILE, "name": "twin"},
            {**PROFILE, "name": "tokyo", "timezone": "Asia/Tokyo"},
        ],
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    schedule_jobs(scheduler, build_app(settings, store=Store.open(None), clock=clock))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"fetch", "send:me+twin", "send:tokyo", "catch-up"}
    assert [p.name for p in jobs["send:me+twin"].args[1]] == ["me", "twin"]


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
        assert "Ctrl-C" not in second.stderr  # nothing said before the lock is held
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
    assert first.stderr is not None
    assert "digest run: 1 profile; Ctrl-C to stop" in first.stderr.read()


NEW_YORK = ZoneInfo("America/New_York")


def _profile(make_settings: Callable[..., Settings], **fields: object) -> Profile:
    return make_settings(profiles=[{**PROFILE, **fields}]).profile_records()[0]


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        # Berlin, 07:30 local on both sides of the March and October changes.
        ({}, datetime(2026, 3, 29, 5, 31, tzinfo=UTC), datetime(2026, 3, 29, 7, 30, tzinfo=BERLIN)),
        ({}, datetime(2026, 3, 29, 5, 29, tzinfo=UTC), datetime(2026, 3, 28, 7, 30, tzinfo=BERLIN)),
        (
            {},
            datetime(2026, 10, 25, 6, 31, tzinfo=UTC),
            datetime(2026, 10, 25, 7, 30, tzinfo=BERLIN),
        ),
        # New York changes on other dates (8 March, 1 November 2026).
        (
            {"timezone": "America/New_York"},
            datetime(2026, 3, 8, 11, 31, tzinfo=UTC),
            datetime(2026, 3, 8, 7, 30, tzinfo=NEW_YORK),
        ),
        (
            {"timezone": "America/New_York"},
            datetime(2026, 11, 1, 12, 31, tzinfo=UTC),
            datetime(2026, 11, 1, 7, 30, tzinfo=NEW_YORK),
        ),
        # Weekdays only: on Sunday the last send was Friday.
        (
            {"days": ["mon", "tue", "wed", "thu", "fri"]},
            datetime(2026, 11, 22, 12, tzinfo=UTC),
            datetime(2026, 11, 20, 7, 30, tzinfo=BERLIN),
        ),
        # Weekly, on the first listed day (Wednesday).
        (
            {"cadence": "weekly", "days": ["wed", "fri"]},
            datetime(2026, 11, 22, 12, tzinfo=UTC),
            datetime(2026, 11, 18, 7, 30, tzinfo=BERLIN),
        ),
        (
            {"cadence": "weekly"},
            datetime(2026, 11, 22, 12, tzinfo=UTC),
            datetime(2026, 11, 16, 7, 30, tzinfo=BERLIN),
        ),
    ],
)
def test_previous_send_time(
    make_settings: Callable[..., Settings],
    fields: dict[str, object],
    now: datetime,
    expected: datetime,
) -> None:
    found = previous_send_time(_profile(make_settings, **fields), now)
    assert found == expected and found is not None
    assert found.utcoffset() == expected.utcoffset()


def test_weekly_trigger_fires_once_a_week(make_settings: Callable[..., Settings]) -> None:
    trigger = send_trigger(_profile(make_settings, cadence="weekly", days=["wed"]))
    first = trigger.get_next_fire_time(None, datetime(2026, 11, 16, tzinfo=BERLIN))
    assert first is not None
    second = trigger.get_next_fire_time(first, first + timedelta(minutes=1))
    assert first == datetime(2026, 11, 18, 7, 30, tzinfo=BERLIN)
    assert second == datetime(2026, 11, 25, 7, 30, tzinfo=BERLIN)


def test_due_only_when_a_send_time_passed_since_the_last_run(
    make_settings: Callable[..., Settings],
) -> None:
    profile = _profile(make_settings)
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert is_due(profile, now, None)
    assert is_due(profile, now, datetime(2026, 11, 21, 7, 0, tzinfo=UTC))
    assert not is_due(profile, now, datetime(2026, 11, 22, 6, 31, tzinfo=UTC))


class RecordingMailer:
    """A mailer that accepts everything and keeps the bytes."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Mapping[str, str]:
        self.sent.append(raw)
        return {}


def test_catch_up_after_three_missed_days_sends_one_digest_with_everything(
    listing_settings: Callable[..., Settings], clock: Clock
) -> None:
    from digest.app import fetch, send_profile

    mailer = RecordingMailer()
    app = build_app(
        listing_settings(first_run_days=30), store=Store.open(None), clock=clock, mailer=mailer
    )
    sent_mail = mailer.sent
    profile = app.settings.profile_records()[0]
    # A digest went out three days ago; then the machine was off.
    clock.now = datetime(2026, 11, 19, 6, 31, tzinfo=UTC)
    send_profile(app, profile)
    assert sent_mail == []  # nothing stored yet: nothing to send, but the run is recorded
    clock.now = datetime(2026, 11, 19, 7, 0, tzinfo=UTC)
    fetch(app)
    clock.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # back on, three send times later

    assert is_due(profile, clock.now, app.store.last_send_run("me"))
    catch_up(app)
    catch_up(app)  # a second catch-up (a restart) sends nothing more

    assert len(sent_mail) == 1
    [entry] = app.store.outbox("me")
    assert entry.status == "sent" and entry.paper_count == 3
    assert not is_due(profile, clock.now, app.store.last_send_run("me"))


class SlowSource:
    """The test listings, after a delay: a first fetch that follows authors takes this long."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def fetch(self, context: FetchContext) -> FetchResult:
        time.sleep(self.delay)
        listings = (DATA / "listings.jsonl").read_bytes()
        return FetchResult(papers=tuple(parse_listing_jsonl(listings, "slow")))


def _scheduler() -> BackgroundScheduler:
    # As `digest run` has it: one worker, jobs in order.
    return BackgroundScheduler(
        timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=1)}
    )


def _wait_for(done: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_one_profiles_problem_in_a_shared_send_job_does_not_hold_back_the_others(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    """A profile without an email address in the same pass: the others are still sent."""
    from digest.app import fetch

    settings = make_settings(
        sources={"files": [{"name": "listings", "path": str(DATA / "listings.jsonl")}]},
        profiles=[
            {**PROFILE, "name": "nobody", "email": [], "first_run_days": 30},
            {**PROFILE, "first_run_days": 30},
        ],
    )
    mailer = RecordingMailer()
    app = build_app(settings, store=Store.open(None), clock=clock, mailer=mailer)
    fetch(app)
    catch_up(app)
    assert len(mailer.sent) == 1
    assert [e.profile for e in app.store.outbox()] == ["me"]
    assert app.store.last_send_run("nobody") is None


def test_the_start_up_catch_up_runs_however_long_the_first_fetch_takes(
    listing_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    mailer = RecordingMailer()
    app = build_app(
        listing_settings(),
        store=Store.open(tmp_path / "d.sqlite"),
        sources=[SlowSource(3.0)],  # longer than APScheduler's default grace of 1 s
        mailer=mailer,
    )
    scheduler = _scheduler()
    schedule_jobs(scheduler, app)
    scheduler.start()
    try:
        _wait_for(lambda: bool(mailer.sent))
    finally:
        scheduler.shutdown(wait=True)
    try:
        assert len(mailer.sent) == 1  # the digest went out after the slow fetch, once
        [entry] = app.store.outbox("me")
        assert entry.status == "sent" and entry.paper_count > 0
        assert app.store.last_send_run("me") is not None
    finally:
        app.close()


def test_a_missed_job_is_logged_as_a_warning(
    listing_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(listing_settings(), store=Store.open(tmp_path / "d.sqlite"), sources=[])
    scheduler = _scheduler()
    schedule_jobs(scheduler, app)
    ran: list[str] = []
    scheduler.add_job(
        ran.append,
        "date",
        run_date=datetime(2020, 1, 1, tzinfo=UTC),  # long past on any day the suite runs
        args=["late"],
        id="late-job",
        misfire_grace_time=1,
    )
    with caplog.at_level(logging.WARNING, logger="digest.schedule"):
        scheduler.start()
        try:
            _wait_for(lambda: any("missed" in r.getMessage() for r in caplog.records))
            # The scheduler thread removes the one-off job after telling its listeners: shut
            # down before that and it finds the job gone (JobLookupError in its thread).
            _wait_for(lambda: scheduler.get_job("late-job") is None)
        finally:
            scheduler.shutdown(wait=True)
            app.close()
    missed = [r for r in caplog.records if r.name == "digest.schedule" and "late-job" in r.message]
    assert ran == [] and missed and missed[0].levelno == logging.WARNING
    assert "missed" in missed[0].message
