"""`digest doctor`: check everything a digest needs, one line per check, without sending mail.

The checks, in order: the config file is valid; each profile's schedule (time zone, send time)
and that it can be sent and can match something; the database opens read-only and passes
`PRAGMA integrity_check` at a schema this digest knows; the SMTP server is reachable and accepts
the login (connect, EHLO, STARTTLS or TLS as configured, AUTH, QUIT; no message), or the Maildir
is writable (when a profile has an email address); each `notify` target's URL is there and
apprise accepts it (nothing is posted; never shown); each source answers one request, read with
that source's own parser (files: the files exist and parse). Every network check has the
configured timeouts and at most two tries, so the doctor never hangs. The SMTP password is never
shown.
"""

from __future__ import annotations

import os
import smtplib
import socket
import sqlite3
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.deliver import DeadlineExpired, SmtpMailer, redact
from digest.errors import ConfigError, DeliveryError, SourceError, StoreError
from digest.settings import Settings, SmtpConfig, load_settings
from digest.store import SCHEMA_VERSION

if TYPE_CHECKING:
    import httpx

    from digest.http import PoliteClient
    from digest.models import NotifyTarget, Profile
    from digest.sources import Probed

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was checked, what was found, and how to fix a failure."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """`✓ name: detail`, or `✗ name: detail — fix`."""
        if self.ok:
            return f"✓ {self.name}: {self.detail}"
        return f"✗ {self.name}: {self.detail}" + (f" — {self.fix}" if self.fix else "")


def run_checks(
    config_path: Path,
    db_path: Path | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Clock = lambda: datetime.now(UTC),
) -> Iterator[Check]:
    """Every check, in order, as it completes. Stops after the config check if that fails."""
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        yield _unloadable(config_path, exc)
        return
    yield check_config(settings)
    profiles = settings.profile_records()
    for profile in profiles:
        yield check_profile(profile, clock())
        yield from (check_notify(profile, target, os.environ) for target in profile.notify)
    yield check_database(db_path or settings.resolve(settings.store.path))
    if any(profile.emails for profile in profiles) or not profiles:  # else: chat and push only
        yield check_mail(settings)
    yield from check_sources(settings, transport, today=clock().date())


def check_mail(settings: Settings) -> Check:
    """The Maildir is writable, or the SMTP server takes the login (`[delivery] method`)."""
    if settings.delivery.method == "maildir":
        return check_maildir(settings.resolve(settings.delivery.maildir))
    return check_smtp(settings)


# --- config and profiles --------------------------------------------------------------------------


def _unloadable(config_path: Path, exc: ConfigError) -> Check:
    """The failed config check: the file is missing, or not valid."""
    fix = "fix the file, then run `digest doctor` again"
    if not config_path.exists():
        fix = "run `digest init` to write one, or pass --config"
    return Check("config", False, str(exc), fix)


def check_config(settings: Settings) -> Check:
    """The config loaded and validated: say what it holds."""
    from digest.sources import build_sources

    sources = len(build_sources(settings))
    profiles = len(settings.profiles)
    detail = (
        f"{settings.path} is valid ({_count(profiles, 'profile')}, {_count(sources, 'source')})"
    )
    if not profiles:
        return Check("config", False, detail, "add a [[profiles]] table (see `digest init`)")
    return Check("config", True, detail)


def _count(n: int, noun: str) -> str:
    """`1 noun`, `2 nouns`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_profile(profile: Profile, now: datetime) -> Check:
    """The profile's time zone and send time, when it is next sent, and whether it can be."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from digest.schedule import send_trigger

    name = f"profile {profile.name}"
    try:
        zone = ZoneInfo(profile.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return Check(
            name,
            False,
            f"unknown time zone {profile.timezone!r}",
            "use an IANA name (Europe/Berlin)",
        )
    upcoming = send_trigger(profile).get_next_fire_time(None, now)
    when = f"{upcoming.astimezone(zone):%a %Y-%m-%d %H:%M}" if upcoming else "never"
    detail = f"sends at {profile.send_at:%H:%M} {profile.timezone} ({profile.cadence}), next {when}"
    if not profile.emails and not profile.notify:
        return Check(
            name,
            False,
            detail + "; no email address or notify target",
            "add email = 'you@example.org' (or notify = [{ env = 'VAR' }])",
        )
    if not _can_match(profile):
        return Check(
            name,
            False,
            detail + "; no keywords, all_of, authors or library, so nothing can match",
            f"`digest profile add-keyword {profile.name} TERM` or "
            f"`digest profile follow {profile.name} NAME`",
        )
    return Check(name, True, detail)


def check_notify(profile: Profile, target: NotifyTarget, environ: Mapping[str, str]) -> Check:
    """The target's URL is there (its variable or file) and apprise accepts it; nothing is
    posted, and the URL is never shown."""
    from digest.notify import check_target

    name = f"{target.label} ({profile.name})"
    problem = check_target(target, environ)
    if problem:
        where = f"set {target.env}" if target.env else f"write the URL into {target.file}"
        return Check(name, False, problem, f"{where} (an apprise URL: see README, Chat and push)")
    return Check(name, True, "apprise accepts the URL (nothing sent)")


def _can_match(profile: Profile) -> bool:
    """Whether the profile has anything a paper can match: keywords, all_of, authors, library."""
    return bool(profile.keywords or profile.all_of or profile.authors or profile.library)


# --- the database ---------------------------------------------------------------------------------


def check_database(path: Path) -> Check:
    """Open the database read-only: integrity and schema version (a missing one is fine)."""
    if not path.exists():
        return _missing_database(path)
    links = path.stat().st_nlink
    if links > 1:  # not opened at all: every command refuses it (`refuse_second_names`)
        return _hard_linked(path, links)
    try:
        version, integrity = _inspect_database(path)
    except (sqlite3.Error, StoreError) as exc:
        return Check("database", False, f"{path}: {exc.__cause__ or exc}", _recover(path))
    return _database_state(path, version, integrity)


def _missing_database(path: Path) -> Check:
    """No database yet: fine when the first fetch can create it."""
    parent = _existing_ancestor(path.parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        return Check(
            "database",
            False,
            f"{path} cannot be created: {parent} is not writable",
            "set [store] path to a writable place, or pass --db",
        )
    return Check("database", True, f"{path} does not exist yet; the first fetch creates it")


def _hard_linked(path: Path, links: int) -> Check:
    """The database has other names: SQLite would corrupt it, so every command refuses it."""
    return Check(
        "database",
        False,
        f"{path} has {links} names (hard links): SQLite keeps a journal per name, so two "
        "names corrupt it; every command refuses it",
        f"find the others with `find / -xdev -samefile {path}` and remove them; reach the "
        "file from elsewhere by a symlink or --db (`digest backup` makes a copy)",
    )


def _database_state(path: Path, version: int, integrity: str) -> Check:
    """The database check from what the inspection found: damage, schema, writability."""
    if integrity != "ok":
        return Check("database", False, f"{path}: damaged: {integrity}", _recover(path))
    if version > SCHEMA_VERSION:
        return Check(
            "database",
            False,
            f"{path}: schema {version} is newer than this digest knows ({SCHEMA_VERSION})",
            "upgrade digest",
        )
    if not os.access(path, os.W_OK):
        return Check("database", False, f"{path} is read-only", "make it writable (chmod u+w)")
    upgrade = f", upgraded to {SCHEMA_VERSION} on next use" if version < SCHEMA_VERSION else ""
    return Check("database", True, f"{path}: integrity ok, schema {version}{upgrade}")


def _recover(path: Path) -> str:
    """How to get a damaged database's papers and history back."""
    return (
        f'save what is readable with `sqlite3 {path} ".recover" | sqlite3 {path}.recovered` '
        '(a sqlite3 without .recover: ".dump") and use that file (--db or [store] path), '
        f"or restore {path} from a backup; move it away to start afresh"
    )


def _inspect_database(path: Path) -> tuple[int, str]:
    """(schema version, `ok` or the damage found) from a read-only connection: sqlite's quick
    check of the structure, then a read of every stored value (a flipped byte in a value
    passes the quick check but fails every command that reads it)."""
    from digest.store import Store

    # The app's read-only open (sqlite `mode=ro`), at whatever schema the database has.
    store = Store.open(path, read_only=True, any_schema=True)
    try:
        version = store.schema_version
        problem = store.quick_check()
        if problem != "ok":
            return version, f"quick_check: {problem}"
        if version > SCHEMA_VERSION:  # a newer digest's tables: not ours to read
            return version, "ok"
        try:
            store.check_readable()
        except StoreError as exc:
            cause = exc.__cause__ or exc
            return version, "a stored value cannot be read: " + " ".join(str(cause).split())[:160]
        return version, "ok"
    finally:
        store.close()


def _existing_ancestor(path: Path) -> Path:
    """`path`, or the nearest parent directory that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- delivery -------------------------------------------------------------------------------------


def check_maildir(path: Path) -> Check:
    """Maildir delivery: the Maildir (or the directory it will be made in) is writable."""
    if path.exists() and not path.is_dir():
        return Check("maildir", False, f"{path} is not a directory", "set [delivery] maildir")
    existing = _existing_ancestor(path)
    targets = [existing, *(existing / sub for sub in ("tmp", "new") if path.exists())]
    unwritable = _first_unwritable(targets)
    if unwritable is not None:
        return Check(
            "maildir",
            False,
            f"{unwritable} is not writable",
            "fix its permissions or set [delivery] maildir",
        )
    state = "writable" if path.exists() else f"does not exist yet; it is created in {existing}"
    return Check("maildir", True, f"{path} {state}")


def _first_unwritable(directories: list[Path]) -> Path | None:
    """The first of the existing `directories` a Maildir delivery could not write in."""
    for directory in directories:
        if directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
            return directory
    return None


def check_smtp(settings: Settings) -> Check:
    """Connect, EHLO, STARTTLS or TLS, AUTH when a username is set, QUIT. Sends nothing."""
    smtp = settings.smtp
    unset = _smtp_unset(smtp)
    if unset is not None:
        return unset
    mailer = SmtpMailer(smtp)
    try:
        password = smtp.secret()
    except ConfigError as exc:
        return Check("smtp", False, str(exc), "fix smtp.password_file or its permissions")
    if smtp.username and password is None:
        return Check(
            "smtp",
            False,
            f"smtp.username is {smtp.username!r} but no password is set",
            "set DIGEST_SMTP__PASSWORD or smtp.password_file",
        )
    return _smtp_login(mailer, settings, password)


def _smtp_unset(smtp: SmtpConfig) -> Check | None:
    """The failed check when the server or the sender is not configured; None when both are."""
    use_maildir = 'or set [delivery] method = "maildir"'
    if not smtp.host:
        return Check("smtp", False, "smtp.host is not set", f"set [smtp] host, {use_maildir}")
    if not smtp.from_address:
        return Check(
            "smtp", False, "smtp.from_address is not set", "set [smtp] from_address (the sender)"
        )
    return None


def _smtp_login(mailer: SmtpMailer, settings: Settings, password: str | None) -> Check:
    """Open a session as sending would and log in when a username is set, then QUIT."""
    smtp = settings.smtp
    try:
        with mailer.session() as connection:  # the same setup and deadline as sending
            if smtp.username:
                connection.login(smtp.username, password or "")
    except (DeliveryError, smtplib.SMTPException, OSError) as exc:
        detail, fix = _smtp_problem(exc, settings)
        # A hostile server may quote the AUTH exchange back: never show the password.
        detail = redact(detail, smtp.username, password)
        return Check("smtp", False, f"{mailer.where}: {detail}", fix)
    login = f"login accepted for {smtp.username!r}" if smtp.username else "no login configured"
    return Check("smtp", True, f"{mailer.where} reachable ({smtp.security}), {login}")


def _smtp_problem(exc: BaseException, settings: Settings) -> tuple[str, str]:
    """What went wrong talking to the SMTP server, and how to fix it (never the password)."""
    smtp = settings.smtp
    for kind, detail, fix in _SMTP_PROBLEMS:
        if isinstance(exc, kind):
            return detail(exc, smtp), fix
    return f"{type(exc).__name__}: {exc}", "check the [smtp] settings and the network"


def _tls_failed(exc: ssl.SSLError, smtp: SmtpConfig) -> str:
    """A TLS failure other than an untrusted certificate."""
    return f"TLS failed ({exc.reason or exc})"


def _disconnected(exc: smtplib.SMTPServerDisconnected, smtp: SmtpConfig) -> str:
    """The server hung up, with its reason when it gave one."""
    return f"the server closed the connection ({exc or 'no reason given'})"


# How to say each kind of SMTP failure (the exception and the [smtp] settings), and how to fix
# it; the first kind the exception is wins.
_SMTP_PROBLEMS: tuple[tuple[type[BaseException], Callable[[Any, SmtpConfig], str], str], ...] = (
    (
        DeliveryError,
        lambda exc, smtp: str(exc).removeprefix(f"{smtp.host}:{smtp.effective_port} "),
        'use security = "ssl" (port 465) or a server that offers STARTTLS',
    ),
    (
        smtplib.SMTPAuthenticationError,
        lambda exc, smtp: f"login refused for {smtp.username!r}: {_reply(exc)}",
        "check smtp.username and the password (DIGEST_SMTP__PASSWORD or smtp.password_file)",
    ),
    (
        smtplib.SMTPNotSupportedError,
        lambda exc, smtp: "the server offers no login (AUTH)",
        "leave smtp.username empty for a server without login, or check smtp.security",
    ),
    (
        smtplib.SMTPResponseException,
        lambda exc, smtp: f"answered {_reply(exc)}",
        "check smtp.host, smtp.port and smtp.security",
    ),
    (
        ssl.SSLCertVerificationError,
        lambda exc, smtp: f"TLS certificate not trusted ({exc.verify_message})",
        "set smtp.ca_file to the server's CA for a private server",
    ),
    (
        ssl.SSLError,
        _tls_failed,
        'check smtp.security and smtp.port (465 is usually "ssl", 587 "starttls")',
    ),
    (socket.gaierror, lambda exc, smtp: f"unknown host {smtp.host!r}", "check smtp.host"),
    (
        ConnectionRefusedError,
        lambda exc, smtp: "connection refused",
        "check smtp.host and smtp.port, and that the server runs",
    ),
    (
        DeadlineExpired,
        lambda exc, smtp: str(exc),
        "check smtp.host and smtp.port, or raise smtp.deadline_seconds",
    ),
    (
        TimeoutError,  # socket.timeout is TimeoutError
        lambda exc, smtp: f"no answer within {smtp.timeout:g} s",
        "check smtp.host, smtp.port and firewalls",
    ),
    (smtplib.SMTPServerDisconnected, _disconnected, "check smtp.port and smtp.security"),
)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    """`code text` of an SMTP error reply."""
    text = exc.smtp_error
    return f"{exc.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


# --- sources --------------------------------------------------------------------------------------


def check_sources(
    settings: Settings,
    transport: httpx.BaseTransport | None = None,
    *,
    today: date,
) -> Iterator[Check]:
    """One check per configured source: one request to it, or its files read and parsed."""
    from digest.app import make_client
    from digest.sources import Checked, Probed, build_sources

    sources = build_sources(settings)
    if not sources:
        yield Check("sources", False, "no sources configured", "add [sources.arxiv] or another")
        return
    client: PoliteClient | None = None

    def shared_client() -> PoliteClient:
        nonlocal client
        if client is None:
            client = make_client(_quick(settings), transport)
        return client

    try:
        for source in sources:
            name = f"source {source.name}"
            if isinstance(source, Checked):
                found = source.check(shared_client, today)
                yield Check(name, found.ok, found.detail, found.fix)
            elif isinstance(source, Probed):
                yield check_network_source(source, shared_client())
            else:  # pragma: no cover - every source kind is one or the other
                raise TypeError(f"source {source.name!r} cannot be checked")
    finally:
        if client is not None:
            client.close()


def _quick(settings: Settings) -> Settings:
    """The settings with at most two tries per request: a doctor answers promptly."""
    http = settings.http.model_copy(update={"attempts": min(settings.http.attempts, 2)})
    return settings.model_copy(update={"http": http})


def check_network_source(source: Probed, client: PoliteClient) -> Check:
    """GET the source's URL once (with the configured timeouts and retries) and read the answer
    with the source's parser: a page that answers 200 but is not what the source reads (an
    HTML login page, a feed cut short) is a failure, as it would be at the next fetch."""
    name = f"source {source.name}"
    request = source.probe()
    url = request.url
    try:
        got = client.get(url, params=dict(request.params) or None)
    except SourceError as exc:
        return Check(
            name, False, str(exc), "check the URL in [sources], the network, or try again later"
        )
    answered = f"{url} answered HTTP {got.status}"
    try:
        kind, count = source.read_probe(got)
    except SourceError as exc:
        problem = str(exc).removeprefix(f"{got.url}: ")
        return Check(
            name,
            False,
            f"{answered}, but {problem}",
            "check the URL in [sources]: it does not serve what this source reads",
        )
    papers = f"{count} paper{'' if count == 1 else 's'}"
    return Check(name, True, f"{answered} with {kind} of {papers} ({len(got.content)} bytes)")
