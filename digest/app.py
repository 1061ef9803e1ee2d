"""The composition root and the jobs built on it.

`build_app` is the one place that turns settings into live parts (store, sources, mailer, clock);
tests pass a memory store, local servers or fakes through its keyword arguments. The jobs (fetch,
plan, send, preview) only wire pure stages together; all I/O happens in the parts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from digest import sending
from digest.deliver import (
    MaildirMailer,
    Mailer,
    SmtpMailer,
)
from digest.errors import ConfigError, SourceError
from digest.feedback import email_linker, signing_secret
from digest.fetching import Fetcher, FetchReport
from digest.http import PoliteClient
from digest.models import Match, Paper, Profile, RenderedDigest
from digest.plan.memory import PassMemory
from digest.plan.planning import Plan, PlanPass
from digest.render import CLIP_BYTES, Linker
from digest.sending import Outbox, SendReport
from digest.settings import Settings
from digest.sources import (
    Source,
    build_sources,
    files_sources,
    host_policies,
)
from digest.store import (
    OutboxEntry,
    Store,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> datetime:
    """The real time, in UTC. Only the composition root reads it; everything else is given it."""
    return datetime.now(UTC)


# The morning the bundled seed listings were captured: the demo delivers the digest a reader of
# the example profile would have received then, so it is the same digest on whatever day it runs.
SEEDS_MORNING = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def seeds_clock(start: datetime = SEEDS_MORNING) -> Clock:
    """A clock that starts at `start` and runs at the pace of the real (monotonic) one."""
    began = time.monotonic()

    def now() -> datetime:
        return start + timedelta(seconds=time.monotonic() - began)

    return now


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
    client: PoliteClient | None = None
    sleep: Callable[[float], None] = time.sleep
    clip_bytes: int = CLIP_BYTES  # the largest HTML part a digest may have
    # Whether compiled profiles are kept in the store (`digest.match.compile_cache`): not by a
    # command that only reads (`digest match --input`), which still loads them.
    keep_compiled: bool = True
    # What planning passes reuse for the app's life (`digest.plan.memory`): `run` plans each
    # send minute in its own pass over much the same new papers.
    memory: PassMemory = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Compiled profiles are kept in the store: an unchanged profile is not compiled again.
        profiles = self.settings.profile_records()
        self.memory = PassMemory(profiles, self.store, keep=self.keep_compiled)

    def verdicts(self, profiles: Sequence[Profile]) -> Callable[[Paper], dict[str, Match]]:
        """How a pass over `profiles` matches a paper (`VerdictMemo.for_profiles`)."""
        return self.memory.verdicts.for_profiles(profiles)

    def plan_pass(self) -> PlanPass:
        """A planning pass over the store as of now (`digest.plan`)."""
        return PlanPass(
            self.store,
            self.settings,
            self.clock(),
            self.memory,
            links=lambda profile: email_links(self, profile),
            clip_bytes=self.clip_bytes,
        )

    def fetcher(self) -> Fetcher:
        """The fetch job over this app's sources, store and client (`digest.fetching`)."""
        return Fetcher(
            self.store, self.settings, self.clock, self.client, self.sources, self.verdicts
        )

    def outbox(self) -> Outbox:
        """The outbox worker over this app's store, mailer and clock (`digest.sending`)."""
        return Outbox(self.store, self.settings, self.clock, self.get_mailer, self.sleep)

    def get_mailer(self) -> Mailer:
        """The mailer, built on first use: SMTP settings are needed only to send."""
        if self.mailer is None:
            self.mailer = make_mailer(self.settings)
        return self.mailer

    def settle(self) -> None:
        """For a process that keeps this app for its life (`digest run`): build what every
        pass uses now, then leave all of it out of the cyclic collector's full collections
        (`digest.match.freeze_long_lived`)."""
        from digest.match.matcher import freeze_long_lived

        self.memory.prepare(self.store)
        freeze_long_lived()

    def close(self) -> None:
        """Release the database and the HTTP connections."""
        if self.client is not None:
            self.client.close()
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
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    keep_compiled: bool = True,
) -> App:
    """Build every part from the settings; any part can be passed in instead.

    `transport` and `sleep` reach the HTTP client, so tests can serve sources locally and
    observe pacing. Without `keep_compiled` the app loads compiled profiles from the store but
    keeps none there (a command that only reads).
    """
    if store is None:
        store = Store.open(db_path or settings.resolve(settings.store.path))
    sources = build_sources(settings, store) if sources is None else sources
    config = settings.sources
    needs_http = config.arxiv or config.hf_daily or config.feeds or config.openalex_on
    client = make_client(settings, transport, sleep) if needs_http else None
    return App(
        settings,
        store,
        sources,
        clock=clock,
        mailer=mailer,
        client=client,
        sleep=sleep,
        keep_compiled=keep_compiled,
    )


def make_client(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PoliteClient:
    """The one HTTP client every source shares, with each host's pacing from the settings
    (`sources.host_policies`)."""
    policies = host_policies(settings)
    http = settings.http
    return PoliteClient(
        contact=settings.fetch.contact,
        timeout=httpx.Timeout(http.read_timeout, connect=http.connect_timeout),
        transport=transport,
        policies=policies,
        deadline=http.deadline_seconds,
        max_response_mb=http.max_response_mb,
        attempts=http.attempts,
        backoff=http.backoff_seconds,
        sleep=sleep,
    )


# --- fetch ----------------------------------------------------------------------------------


def fetch(
    app: App,
    only: str | None = None,
    *,
    since: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[FetchReport]:
    """Fetch every source (or the one named `only`): `digest.fetching.Fetcher.fetch`; then
    scan what was stored (`store_hits`)."""
    reports = app.fetcher().fetch(only, since=since, progress=progress)
    store_hits(app)
    return reports


def store_hits(app: App) -> int:
    """Scan and store the hits of every paper in the profiles' windows that lacks current ones
    (new, updated, or stored before a term was added: `digest.plan.hits`); how many."""
    profiles = app.settings.profile_records()
    if not profiles:
        return 0
    days = max(max(p.window_days, p.first_run_days) for p in profiles)
    since = app.clock() - timedelta(days=days)
    return app.memory.hits.refresh(app.store, since)


# --- plan ------------------------------------------------------------------------------------


def plan_digest(app: App, profile: Profile) -> Plan:
    """The digest `profile` would get now, without changing anything."""
    return plan_digests(app, [profile])[profile.name]


def plan_digests(app: App, profiles: Sequence[Profile]) -> dict[str, Plan]:
    """The digests `profiles` would get now, by name, planned in one pass (`PlanPass.plan`)."""
    return app.plan_pass().plan(profiles)


def expire_stale(app: App, profile: Profile) -> int:
    """Record the papers the profile wants that left its window undelivered; how many
    (`PlanPass.expire_stale`)."""
    return app.plan_pass().expire_stale(profile)


def email_links(app: App, profile: Profile) -> Linker | None:
    """The feedback links of the profile's email: a short signed link a paper to its page of
    `digest serve` under `[server] public_url`; None (no links) without one."""
    public_url = app.settings.server.public_url
    if not public_url:
        return None
    secret = signing_secret(app.settings, app.store.path)
    return email_linker(public_url, secret, profile.name, app.clock, app.store.paper_number)


# --- send -----------------------------------------------------------------------------------


def send_profile(app: App, profile: Profile, *, dry_run: bool = False) -> SendReport:
    """Deliver what is due for one profile: `send` of that profile alone."""
    return send(app, [profile], dry_run=dry_run)[0]


def send(app: App, profiles: Sequence[Profile], *, dry_run: bool = False) -> list[SendReport]:
    """Deliver what is due for each profile now (`digest.sending.send`), the windows' hits
    stored first (a send plans from them; a dry run only reads)."""
    if not dry_run:
        store_hits(app)
    return sending.send(app.outbox(), app.plan_pass, profiles, dry_run=dry_run)


def queue_digest(app: App, plan: Plan) -> tuple[OutboxEntry, RenderedDigest]:
    """Put a planned digest in the outbox (pending), reserving its papers."""
    return app.outbox().queue(plan)


# --- demo -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put things, and what it did."""

    html_paths: tuple[Path, ...]
    fetched: tuple[FetchReport, ...]
    sent: tuple[SendReport, ...]
    papers: int
    maildir: Path


def run_demo(out_dir: Path, clock: Clock | None = None) -> DemoResult:
    """The whole pipeline offline: seeds → fresh store → match → render → outbox → Maildir.

    Uses the embedded example configuration and seed listings, stored at `clock`'s time (by
    default the morning the seeds were captured, `SEEDS_MORNING`), so every one is a candidate
    whatever its publication date and the digest is the same on any day. Nothing outside
    `out_dir` is touched.
    """
    clock = clock or seeds_clock()
    from digest.settings import load_settings

    settings = load_settings(data_path("config.example.toml"))
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "demo.sqlite"
    for stale in (db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    maildir = out_dir / "maildir"
    # Only the bundled listings: the demo never touches the network.
    seeds = files_sources(settings)
    app = build_app(
        settings, db_path=db_path, sources=seeds, mailer=MaildirMailer(maildir), clock=clock
    )
    try:
        fetched = fetch(app)
        failed = [r for r in fetched if r.error]
        if failed:
            raise SourceError(failed[0].error)
        reports = send(app, settings.profile_records())
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
