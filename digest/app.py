"""The composition root and the jobs built on it.

`build_app` is the one place that turns settings into live parts (store, sources, mailer, clock);
tests pass a memory store, local servers or fakes through its keyword arguments. The jobs (fetch,
plan, send, preview) only wire pure stages together; all I/O happens in the parts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.deliver import MaildirMailer, Mailer, SmtpMailer, build_message, new_message_id
from digest.errors import ConfigError, DeliveryError, SourceError
from digest.match import match_profiles
from digest.models import Digest, Profile, RenderedDigest
from digest.render import build_digest, render_digest
from digest.settings import Settings
from digest.sources import Source, build_sources
from digest.store import OutboxEntry, Store, UpsertCounts

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> datetime:
    """The real time, in UTC. Only the composition root reads it; everything else is given it."""
    return datetime.now(UTC)


def data_path(name: str) -> Path:
    """A file shipped with digest (`seeds`, `config.example.toml`): in the wheel or the checkout."""
    packaged = Path(__file__).parent / "_data" / name
    return packaged if packaged.exists() else Path(__file__).parent.parent / name


@dataclass
class App:
    """The live parts of one digest instance."""

    settings: Settings
    store: Store
    sources: list[Source]
    clock: Clock = system_clock
    mailer: Mailer | None = None

    def get_mailer(self) -> Mailer:
        """The mailer, built on first use: SMTP settings are needed only to send."""
        if self.mailer is None:
            self.mailer = make_mailer(self.settings)
        return self.mailer

    def close(self) -> None:
        """Release the database."""
        self.store.close()


def make_mailer(settings: Settings) -> Mailer:
    """A Maildir or SMTP mailer, per `[delivery] method`."""
    if settings.delivery.method == "maildir":
        return MaildirMailer(settings.resolve(settings.delivery.maildir))
    if not settings.smtp.host or not settings.smtp.from_address:
        missing = "smtp.host" if not settings.smtp.host else "smtp.from_address"
        raise ConfigError(
            f"{settings.path}: {missing}: needed to send mail "
            '(or set [delivery] method = "maildir")'
        )
    return SmtpMailer(settings.smtp)


def build_app(
    settings: Settings,
    *,
    db_path: Path | str | None = None,
    store: Store | None = None,
    sources: list[Source] | None = None,
    mailer: Mailer | None = None,
    clock: Clock = system_clock,
) -> App:
    """Build every part from the settings; any part can be passed in instead."""
    if store is None:
        store = Store.open(db_path or settings.resolve(settings.store.path))
    return App(
        settings=settings,
        store=store,
        sources=build_sources(settings) if sources is None else sources,
        clock=clock,
        mailer=mailer,
    )


# --- fetch ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchReport:
    """What fetching one source did."""

    source: str
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    error: str = ""


def fetch(app: App, only: str | None = None) -> list[FetchReport]:
    """Fetch every source (or the one named `only`); a failing source does not stop the others."""
    chosen = [s for s in app.sources if only is None or s.name == only]
    if only is not None and not chosen:
        known = ", ".join(s.name for s in app.sources) or "none configured"
        raise ConfigError(f"{app.settings.path}: no source named {only!r} (sources: {known})")
    reports = []
    for source in chosen:
        now = app.clock()
        try:
            papers = source.fetch(now)
            counts = app.store.upsert_papers(papers, now)
        except SourceError as exc:
            log.warning("source %s failed: %s", source.name, exc)
            app.store.record_fetch(source.name, now, error=str(exc))
            reports.append(FetchReport(source.name, error=str(exc)))
            continue
        app.store.record_fetch(source.name, now)
        reports.append(FetchReport(source.name, counts))
    return reports


# --- plan and render ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The next digest of one profile: what it holds and where its candidates started."""

    digest: Digest
    since: datetime


def candidates_since(app: App, profile: Profile, now: datetime) -> datetime:
    """Where the next digest's candidates start: the last sent digest, else `first_run_days`."""
    last = app.store.last_sent_cutoff(profile.name)
    return last if last is not None else now - timedelta(days=profile.first_run_days)


def plan_digest(app: App, profile: Profile, *, since: datetime | None = None) -> Plan:
    """The digest `profile` would get now, without changing anything."""
    now = app.clock()
    since = candidates_since(app, profile, now) if since is None else since
    papers = app.store.undelivered_papers(profile.name, since)
    matches = match_profiles(papers, [profile])[profile.name]
    problems = app.store.failing_sources()
    return Plan(build_digest(profile, matches, now, problems), since)


def message_domain(settings: Settings) -> str:
    """The domain for Message-IDs: configured, else the sender's, else `digest.localhost`."""
    smtp = settings.smtp
    return smtp.message_id_domain or smtp.from_address.partition("@")[2] or "digest.localhost"


def sender_address(settings: Settings) -> str:
    """The From address: configured, else a local one (Maildir delivery needs no real sender)."""
    return settings.smtp.from_address or "digest@localhost"


# --- send -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendReport:
    """What sending did for one profile."""

    profile: str
    sent: tuple[OutboxEntry, ...] = ()
    papers: int = 0
    error: str = ""
    skipped: str = ""
    followed: int = 0
    rendered: RenderedDigest | None = field(default=None, repr=False)


def queue_digest(app: App, plan: Plan) -> tuple[OutboxEntry, RenderedDigest]:
    """Render a planned digest and put it in the outbox (pending), reserving its papers."""
    profile = plan.digest.profile
    if not profile.emails:
        raise ConfigError(f"{app.settings.path}: profiles ({profile.name!r}).email: needed to send")
    now = plan.digest.generated_at
    rendered = render_digest(plan.digest)
    message_id = new_message_id(message_domain(app.settings))
    raw = build_message(
        rendered,
        sender=sender_address(app.settings),
        sender_name=app.settings.smtp.from_name,
        recipients=profile.emails,
        message_id=message_id,
        date=now,
        profile=profile.name,
    )
    outbox_id = app.store.add_outbox(
        profile=profile.name,
        message_id=message_id,
        recipients=profile.emails,
        subject=rendered.subject,
        raw=raw,
        paper_keys=rendered.paper_keys,
        cutoff=now,
        now=now,
    )
    entry = next(e for e in app.store.outbox(profile.name) if e.id == outbox_id)
    return entry, rendered


def deliver_entry(app: App, entry: OutboxEntry) -> str:
    """Try one outbox row once; mark it sent only after the server accepted it. Returns the
    error text ('' on success)."""
    try:
        refused = app.get_mailer().send(entry.raw, sender_address(app.settings), entry.recipients)
    except DeliveryError as exc:
        app.store.mark_failed_attempt(entry.id, str(exc), permanent=exc.permanent)
        log.error("digest %s for %s not delivered: %s", entry.message_id, entry.profile, exc)
        return str(exc)
    if refused:
        log.warning("digest %s: recipients refused: %s", entry.message_id, refused)
    app.store.mark_sent(entry.id, app.clock())
    return ""


def send_profile(
    app: App, profile: Profile, *, dry_run: bool = False, since: datetime | None = None
) -> SendReport:
    """Deliver what is due for one profile: first any pending digest, then a new one."""
    sent: list[OutboxEntry] = []
    for entry in app.store.outbox(profile.name, status="pending"):
        if dry_run:
            continue
        error = deliver_entry(app, entry)
        if error:
            return SendReport(profile.name, tuple(sent), error=error)
        sent.append(entry)
    plan = plan_digest(app, profile, since=since)
    if not plan.digest.matches and not profile.send_empty:
        return SendReport(profile.name, tuple(sent), skipped="nothing new")
    if dry_run:
        rendered = render_digest(plan.digest)
        return SendReport(
            profile.name,
            papers=len(plan.digest.matches),
            rendered=rendered,
            followed=plan.digest.followed_count,
        )
    entry, rendered = queue_digest(app, plan)
    error = deliver_entry(app, entry)
    if not error:
        sent.append(entry)
    return SendReport(
        profile.name,
        tuple(sent),
        papers=len(plan.digest.matches),
        error=error,
        followed=plan.digest.followed_count,
        rendered=rendered,
    )


def send(app: App, profiles: Sequence[Profile], *, dry_run: bool = False) -> list[SendReport]:
    """Deliver due digests for each profile now."""
    return [send_profile(app, profile, dry_run=dry_run) for profile in profiles]


# --- demo -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things, and what it did."""

    html_paths: tuple[Path, ...]
    fetched: tuple[FetchReport, ...]
    sent: tuple[SendReport, ...]
    papers: int
    maildir: Path


def run_demo(out_dir: Path, clock: Clock = system_clock) -> DemoResult:
    """The whole pipeline offline: seeds → fresh store → match → render → outbox → Maildir.

    Uses the embedded example configuration and seed listings; every paper is a candidate,
    whatever its age. Nothing outside `out_dir` is touched.
    """
    from digest.settings import load_settings

    settings = load_settings(data_path("config.example.toml"))
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "demo.sqlite"
    for stale in (db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    maildir = out_dir / "maildir"
    app = build_app(settings, db_path=db_path, mailer=MaildirMailer(maildir), clock=clock)
    try:
        fetched = fetch(app)
        failed = [r for r in fetched if r.error]
        if failed:
            raise SourceError(failed[0].error)
        reports = [send_profile(app, p, since=EPOCH) for p in settings.profile_records()]
        paths = []
        for report in reports:
            if report.rendered is None:
                continue
            html_path = out_dir / "demo" / f"{report.profile}.html"
            html_path.parent.mkdir(parents=True, exist_ok=True)
            html_path.write_text(report.rendered.html, encoding="utf-8")
            html_path.with_suffix(".txt").write_text(report.rendered.text, encoding="utf-8")
            paths.append(html_path)
        return DemoResult(
            tuple(paths), tuple(fetched), tuple(reports), app.store.count_papers(), maildir
        )
    finally:
        app.close()
