"""The scheduler: `digest run` fetches on an interval and sends each profile's digest at its
`send_at` in its own time zone (APScheduler 3, cron triggers are DST-aware).

Jobs coalesce (a backlog of missed runs fires once) and have a misfire grace period, and each send
job asks the store what is undelivered, so a restart cannot send the same paper twice. The
start-up catch-up waits for the first fetch however long it takes; a job that still misses its
grace time is logged as a warning (a missed send is caught up at once). Only one
scheduler may run per database: `run_forever` holds a lock beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.app import App, fetch, send
from digest.errors import DigestError
from digest.models import Profile
from digest.sending import SendReport
from digest.store import exclusive_lock

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 6 * 3600


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def send_days(profile: Profile) -> tuple[str, ...]:
    """The weekdays the profile is sent on: its `days` (all if none), or one day when weekly."""
    days = profile.days or WEEKDAYS
    return (days[0] if profile.days else "mon",) if profile.cadence == "weekly" else tuple(days)


def send_trigger(profile: Profile) -> CronTrigger:
    """A trigger at the profile's `send_at`, in its time zone, on its days."""
    return CronTrigger(
        day_of_week=",".join(send_days(profile)),
        hour=profile.send_at.hour,
        minute=profile.send_at.minute,
        timezone=ZoneInfo(profile.timezone),
    )


def previous_send_time(profile: Profile, now: datetime) -> datetime | None:
    """The latest scheduled send time at or before `now` (local wall time, DST-aware)."""
    zone = ZoneInfo(profile.timezone)
    today = now.astimezone(zone).date()
    days = send_days(profile)
    for back in range(8):
        day = today - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        moment = datetime.combine(day, profile.send_at, tzinfo=zone)
        if moment <= now:
            return moment
    return None


def is_due(profile: Profile, now: datetime, last_run: datetime | None) -> bool:
    """True when a scheduled send time has passed since the profile's send job last completed
    (a first run is due at once: the first digest holds only `first_run_days`)."""
    scheduled = previous_send_time(profile, now)
    if last_run is None:
        return True
    return scheduled is not None and last_run < scheduled


def _fetch_job(app: App) -> None:
    """Fetch every source, logging each one's outcome."""
    for report in fetch(app):
        if report.error:
            log.warning("fetch %s failed: %s", report.source, report.error)
        else:
            log.info(
                "fetch %s: %d new, %d updated",
                report.source,
                report.counts.new,
                report.counts.updated,
            )


def _send_job(app: App, profiles: list[Profile]) -> None:
    """Send the due ones of `profiles` in one pass (they share a send minute, or are caught up)."""
    due = _due(app, profiles)
    if not due:
        return
    try:
        reports = send(app, due)
    except DigestError as exc:
        _send_apart(app, due, exc)
        return
    for report in reports:
        _log_report(report)


def _due(app: App, profiles: list[Profile]) -> list[Profile]:
    """Those of `profiles` due now, saying which are not."""
    # Ask the store: a restart, a coalesced misfire or the catch-up job must not send twice.
    due = [p for p in profiles if is_due(p, app.clock(), app.store.last_send_run(p.name))]
    for profile in profiles:
        if profile not in due:
            log.info("send %s: nothing due", profile.name)
    return due


def _send_apart(app: App, due: list[Profile], exc: DigestError) -> None:
    """After sending `due` together failed: log it, and send each alone when there are more."""
    if len(due) == 1:  # one profile's problem must not stop the daemon
        log.error("send %s failed: %s", due[0].name, exc)
        return
    # Which profile it was is not known: each still due is sent on its own, so the others
    # are not held back by it.
    log.warning("send %s together failed (%s): sending each alone", _names(due), exc)
    for profile in due:
        _send_job(app, [profile])


def _log_report(report: SendReport) -> None:
    """Log what one profile's send did."""
    if report.why:  # the daemon's log answers "why did nothing arrive?"
        log.warning("send %s: nothing sent: %s", report.profile, report.why)
    log.info("send %s: %d sent, %s", report.profile, len(report.sent), report.error or "ok")


def _names(profiles: list[Profile]) -> str:
    """The profiles' names, comma-separated."""
    return ", ".join(profile.name for profile in profiles)


def send_groups(profiles: list[Profile]) -> list[list[Profile]]:
    """Profiles grouped by when they are sent (days, time and time zone), in config order:
    each group is one send job, planned in one pass."""
    groups: dict[tuple[object, ...], list[Profile]] = {}
    for profile in profiles:
        when = (send_days(profile), profile.send_at, profile.timezone)
        groups.setdefault(when, []).append(profile)
    return list(groups.values())


def schedule_jobs(scheduler: BaseScheduler, app: App) -> None:
    """Add the fetch job and one send job per profile to `scheduler`."""
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS}
    scheduler.add_job(
        _fetch_job,
        IntervalTrigger(minutes=app.settings.fetch.interval_minutes),
        args=[app],
        id="fetch",
        name="fetch all sources",
        next_run_time=app.clock(),
        **common,
    )
    for group in send_groups(list(app.settings.profile_records())):
        scheduler.add_job(
            _send_job,
            send_trigger(group[0]),
            args=[app, group],
            id="send:" + "+".join(profile.name for profile in group),
            name=f"send digest to {_names(group)}",
            **common,
        )
    # Catch up at start: a profile whose time passed while digest was not running gets its
    # digest now, after the first fetch (one worker runs jobs in order). It waits for the fetch
    # however long that takes (following authors can take minutes): no grace period to miss.
    _add_catch_up(scheduler, app, app.clock() + timedelta(seconds=1))
    scheduler.add_listener(lambda event: _missed(scheduler, app, event), EVENT_JOB_MISSED)


def _add_catch_up(scheduler: BaseScheduler, app: App, when: datetime) -> None:
    """Schedule the catch-up job at `when` (replacing one not yet run)."""
    scheduler.add_job(
        catch_up,
        args=[app],
        id="catch-up",
        name="catch up on missed digests",
        next_run_time=when,
        misfire_grace_time=None,
        coalesce=True,
        replace_existing=True,
    )


def _missed(scheduler: BaseScheduler, app: App, event: JobExecutionEvent) -> None:
    """A job that did not run in its grace time is never silent; a missed send is caught up."""
    job = scheduler.get_job(event.job_id)
    name = f"{job.name} ({event.job_id})" if job is not None else event.job_id
    log.warning(
        "missed: %s was due at %s and did not run in its grace time", name, event.scheduled_run_time
    )
    if event.job_id.startswith("send:"):  # the catch-up asks the store what is due: no repeats
        _add_catch_up(scheduler, app, app.clock())


def catch_up(app: App) -> None:
    """Send every profile that is due now (missed while the machine was off), in one pass."""
    _send_job(app, list(app.settings.profile_records()))


def run_forever(app: App, started: Callable[[], None] | None = None) -> None:
    """Run the scheduler until interrupted, holding the database's scheduler lock; `started`
    is called once the lock is held (a refused second scheduler says nothing else)."""
    if app.store.path is None:
        raise DigestError("digest run needs a database file, not an in-memory store")
    with exclusive_lock(app.store.path, "digest run"):
        if started is not None:
            started()
        # One worker: jobs share one database connection and must not overlap.
        scheduler = BlockingScheduler(
            timezone="UTC", executors={"default": ThreadPoolExecutor(max_workers=1)}
        )
        schedule_jobs(scheduler, app)
        for job in scheduler.get_jobs():
            log.info("scheduled %s", job.name)
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            scheduler.shutdown(wait=False)
