"""The command line: `digest demo | fetch | match | preview | serve | feedback | send | history |
backup | run | init | profile | author | doctor | feed-key`; `init` lives in `cli_init`, `profile`
and `author` in `cli_profile`, `feed-key` in `cli_feed`, what they all share in `cli_context`.

Errors a user can cause (DigestError) end with one line on stderr and a non-zero exit code;
anything else is a bug and keeps its traceback. Heavy modules are imported inside commands so
that `digest --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from digest import __version__
from digest.cli_context import Context, no_profiles, plain
from digest.cli_feed import feed_key
from digest.cli_init import init
from digest.cli_output import history_json, print_history, print_matches, send_report_line
from digest.cli_profile import author, profile
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.models import Match, Paper, Profile
    from digest.sending import SendReport


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $DIGEST_CONFIG, ./config.toml, ~/.config/digest/config.toml).",
)
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False), help="SQLite database.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, db: Path | None, verbose: int) -> None:
    """digest: your research feeds, one clean email every morning."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config, db)


@cli.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("out"),
    show_default=True,
    help="Where to write the database, Maildir and digest.",
)
def demo(out: Path) -> None:
    """Run the whole pipeline offline on the bundled seed listings and example profile."""
    from digest.app import run_demo

    result = run_demo(out)
    loaded = sum(r.counts.new + r.counts.updated + r.counts.unchanged for r in result.fetched)
    click.echo(f"Loaded {loaded} listings from the seeds: {result.papers} distinct papers.")
    for report in result.sent:
        where = f"delivered to the Maildir {result.maildir}" if report.sent else report.skipped
        click.echo(
            f"Profile {report.profile}: {report.papers} papers "
            f"({report.followed} from people you follow), {report.error or where}."
        )
    for path in result.html_paths:
        click.echo(f"Open the digest: {path.resolve()}")


@cli.command()
@click.option("--source", "only", metavar="NAME", help="Fetch only this source.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Backfill: also fetch what was published since this date (YYYY-MM-DD).",
)
@click.pass_obj
def fetch(obj: Context, only: str | None, since: datetime | None) -> None:
    """Fetch new listings from every source now and store them."""
    from rich.console import Console
    from rich.table import Table

    from digest.app import fetch as fetch_sources

    console = Console(stderr=True)
    app = obj.app()
    try:
        app.store.require_intact()
        with console.status("fetching…") as status:
            reports = fetch_sources(
                app,
                only,
                since=since.date() if since else None,
                progress=lambda name: status.update(plain(f"fetching {name}…")),
            )
    finally:
        app.close()
    table = Table(title="digest fetch")
    for column in ("source", "requests", "fetched", "new", "updated", "errors", "time"):
        table.add_column(column, justify="left" if column in ("source", "errors") else "right")
    for r in reports:
        table.add_row(
            plain(r.source),
            str(r.requests),
            str(r.fetched),
            str(r.counts.new),
            str(r.counts.updated),
            plain(r.error or "; ".join(f"warning: {w}" for w in r.warnings)),
            f"{r.seconds:.1f}s",
        )
    Console().print(table)
    if reports and all(r.error for r in reports):
        sys.exit(3)


@cli.command()
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Match this listing JSONL instead of the store.",
)
@click.option("--profile", "profile_name", metavar="NAME", help="Only this profile.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True
)
@click.option(
    "--all",
    "all_stored",
    is_flag=True,
    help="Without --input: every paper stored in the last --days days, delivered ones too "
    "(default: what each profile's next digest holds).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=3650),
    default=None,
    help="With --all: papers stored in the last N days (default 7; --lint: 30).",
)
@click.option(
    "--lint",
    is_flag=True,
    help="Check the profiles instead: terms that match nothing or too much, unknown authors.",
)
@click.pass_obj
def match(
    obj: Context,
    input_path: Path | None,
    profile_name: str | None,
    fmt: str,
    all_stored: bool,
    days: int | None,
    lint: bool,
) -> None:
    """Show what each profile's next digest would hold, with reasons, without sending.

    With --input, match a listing file instead; with --all, every recently stored paper.
    """
    profiles = obj.settings.profile_records(profile_name)
    if not profiles:
        no_profiles(obj)
        return
    if lint:
        papers = _listing_papers(input_path) if input_path else _stored_papers(obj, days or 30)
        _print_lint(profiles, papers)
    elif input_path is not None:
        print_matches(_listing_digests(obj, profiles, _listing_papers(input_path)), fmt)
    elif all_stored:
        print_matches(_stored_matches(obj, profiles, days or 7), fmt)
    else:
        print_matches(_next_digests(obj, profiles), fmt)


def _listing_papers(path: Path) -> list[Paper]:
    """A listing file's papers, cleaned as a fetch cleans them (warnings on stderr)."""
    from digest.sources import FetchResult
    from digest.sources.clean import clean_result
    from digest.sources.files import parse_listing_jsonl, read_listing_file

    listing = parse_listing_jsonl(read_listing_file(path), str(path))
    cleaned = clean_result(FetchResult(papers=listing))
    for warning in cleaned.warnings:
        click.echo(f"{path}: {warning}", err=True)
    return list(cleaned.papers)


def _stored_papers(obj: Context, days: int) -> list[Paper]:
    """The papers stored in the last `days` days."""
    from datetime import timedelta

    app = obj.app()
    try:
        return list(app.store.papers_seen_since(app.clock() - timedelta(days=days)))
    finally:
        app.close()


def _print_lint(profiles: tuple[Profile, ...], papers: list[Paper]) -> None:
    """`match --lint`: one line per problem, or how many papers were checked."""
    from digest.match import lint_profile

    warnings = [w for p in profiles for w in lint_profile(p, papers)]
    for w in warnings:
        click.echo(f"{w.profile}: {w.kind} {w.term!r}: {w.problem}")
    if not warnings:
        click.echo(f"no problems found ({len(papers)} papers checked)")


def _stored_matches(
    obj: Context, profiles: tuple[Profile, ...], days: int
) -> dict[str, tuple[Match, ...]]:
    """`match --all`: every match among the papers stored in the last `days` days, decided
    from their stored hits (`digest.plan.stored`: a term added since is scanned alone, once),
    followed ids confirmed (stored papers from id-less sources carry none, so their name hits
    are marked "name match")."""
    from datetime import timedelta

    from digest.match import Matcher
    from digest.match.identity import confirm_listing
    from digest.plan.stored import stored_matches

    app = obj.app()
    try:
        since = app.clock() - timedelta(days=days)
        memory = app.memory  # the configured profiles, compiled (or loaded) once
        by_name = {p.name: c for p, c in zip(memory.profiles, memory.compiled, strict=True)}
        compiled = [by_name[p.name] for p in profiles]
        found = stored_matches(app.store, memory.hits, Matcher(profiles, compiled), since)
    finally:
        app.close()
    return confirm_listing(profiles, found.papers, found.matches)


def _listing_digests(
    obj: Context, profiles: tuple[Profile, ...], papers: list[Any]
) -> dict[str, tuple[Match, ...]]:
    """What each profile's digest would hold if a listing file's papers were its candidates:
    the digest's own planning (identities, citing, muting, ranking, fitting, suggestions; the
    suggestion model learns against the store's papers and the listing's, so a fresh database
    works)."""
    app = obj.app(keep_compiled=False)  # a listing is only read: compiled profiles are not kept
    try:
        plans = app.plan_pass().plan_listing(profiles, papers)
        return {name: plan.digest.papers for name, plan in plans.items()}
    finally:
        app.close()


def _next_digests(obj: Context, profiles: tuple[Profile, ...]) -> dict[str, tuple[Match, ...]]:
    """What each profile's next digest holds (the window rule), as `send --dry-run` sees it."""
    from digest.app import plan_digests

    app = obj.app()
    try:
        return {name: plan.digest.papers for name, plan in plan_digests(app, profiles).items()}
    finally:
        app.close()


@cli.command()
@click.option("--profile", "profile_name", metavar="NAME", help="Only this profile.")
@click.option("--open", "open_browser", is_flag=True, help="Open the result in the browser.")
@click.option("--serve", is_flag=True, help="Serve on 127.0.0.1, re-rendered on every reload.")
@click.option("--port", type=click.IntRange(0, 65535), default=8642, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("out/preview"),
    show_default=True,
)
@click.option(
    "--atom",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Write the profile's Atom feed (its delivered papers) to FILE instead.",
)
@click.pass_obj
def preview(
    obj: Context,
    profile_name: str | None,
    open_browser: bool,
    serve: bool,
    port: int,
    out: Path,
    atom: Path | None,
) -> None:
    """Render the next digest of each profile, to files or a live local page."""
    import webbrowser

    from digest.preview import open_preview_app, render_previews

    if atom is not None:
        _write_atom(obj, profile_name, atom)
        return
    if serve:
        from digest import serve as server

        # The same app as `digest serve`, on 127.0.0.1.
        options = server.ServeOptions(obj.config, obj.db)
        server.serve(options, "127.0.0.1", port, profile_name, open_browser=open_browser)
        return
    app = open_preview_app(obj.settings, obj.db)
    try:
        paths = render_previews(app, out, profile_name)
    finally:
        app.close()
    for path, count in paths:
        click.echo(f"{path.resolve()}  ({count} papers)")
    if open_browser and paths:
        webbrowser.open(paths[0][0].resolve().as_uri())


def _write_atom(obj: Context, profile_name: str | None, path: Path) -> None:
    """`preview --atom FILE`: one profile's feed, as `digest serve` serves it, to a file."""
    from digest.preview import open_preview_app, write_atom

    app = open_preview_app(obj.settings, obj.db)
    try:
        name, entries = write_atom(app, path, profile_name)
    finally:
        app.close()
    click.echo(f"{path.resolve()}  ({name}: {entries} entr{'y' if entries == 1 else 'ies'})")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8642, show_default=True)
@click.option("--profile", "profile_name", metavar="NAME", help="Open this profile's page.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the browser.")
@click.pass_obj
def serve(obj: Context, host: str, port: int, profile_name: str | None, open_browser: bool) -> None:
    """Serve the next digests and the feedback pages (the email's links) until Ctrl-C."""
    from digest.serve import ServeOptions
    from digest.serve import serve as run_server

    run_server(
        ServeOptions(obj.config, obj.db), host, port, profile_name, open_browser=open_browser
    )


@cli.command()
@click.argument("profile_name", metavar="PROFILE")
@click.argument("paper", metavar="PAPER")
@click.argument("action", type=click.Choice(["like", "dislike"]), required=False)
@click.option("--undo", is_flag=True, help="Forget the verdict on PAPER instead.")
@click.pass_obj
def feedback(obj: Context, profile_name: str, paper: str, action: str | None, undo: bool) -> None:
    """Say you like or dislike PAPER (a key, an arXiv id or a DOI) for PROFILE's suggestions."""
    from digest.errors import ConfigError
    from digest.feedback import Ask, apply, resolve_paper

    if undo == (action is not None):
        raise ConfigError("give like or dislike, or --undo (not both)")
    from digest.errors import StoreError

    obj.settings.profile_records(profile_name)  # an unknown profile: one line
    db = obj.db or obj.settings.resolve(obj.settings.store.path)
    if not db.is_file():  # a verdict needs stored papers: never create an empty database
        raise StoreError(f"{db}: no database yet (run `digest fetch` first)")
    app = obj.app()
    try:
        key = resolve_paper(app.store, paper)
        if undo:
            removed = app.store.remove_feedback(profile_name, key)
            click.echo(f"{profile_name}: {'undone' if removed else 'no verdict to undo'} on {key}")
            return
        _, said = apply(
            Ask(profile_name, key, action or ""), app.store, obj.config_path, app.clock()
        )
    finally:
        app.close()
    click.echo(f"{profile_name}: {key}: {said}")


@cli.command()
@click.option("--profile", "profile_name", metavar="NAME", help="Only this profile.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and record nothing.")
@click.pass_obj
def send(obj: Context, profile_name: str | None, dry_run: bool) -> None:
    """Deliver due digests now (and retry any still in the outbox)."""
    profiles = obj.settings.profile_records(profile_name)
    if not profiles:
        no_profiles(obj)
        return
    reports = _send_reports(obj, profiles, dry_run)
    failed = False
    for report in reports:
        for note in report.notes:
            click.echo(f"! {report.profile}: {note}", err=True)
        line, is_error = send_report_line(report, dry_run=dry_run)
        click.echo(line, err=is_error)
        failed = failed or is_error
    if failed:
        sys.exit(5)


def _send_reports(obj: Context, profiles: tuple[Profile, ...], dry_run: bool) -> list[SendReport]:
    """Send (or, with `dry_run`, plan) the profiles' due digests, under the store's lock."""
    from digest.app import send as send_digests
    from digest.store import exclusive_lock

    app = obj.app()
    try:
        if not dry_run:
            app.store.require_intact()
        if app.store.path is None or dry_run:
            return send_digests(app, profiles, dry_run=dry_run)
        # never race a running scheduler (or another send) on the same outbox
        with exclusive_lock(app.store.path, "digest send"):
            return send_digests(app, profiles, dry_run=dry_run)
    finally:
        app.close()


def _count(number: int, noun: str) -> str:
    """`1 profile`, `2 profiles`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@cli.command()
@click.option("--profile", "profile_name", metavar="NAME", help="Only this profile.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--wide", is_flag=True, help="Full Message-IDs, errors in the table.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True
)
@click.pass_obj
def history(obj: Context, profile_name: str | None, limit: int, wide: bool, fmt: str) -> None:
    """Past deliveries, newest first, in local time: status, papers, Message-ID and error."""
    app = obj.app()
    try:
        entries = app.store.outbox(profile_name)[::-1][:limit]
        expired = app.store.expired_counts()
    finally:
        app.close()
    if profile_name is not None and not entries and profile_name not in expired:
        # an unknown name is refused as everywhere else; a profile since removed from the
        # config keeps its history
        obj.settings.profile_records(profile_name)
    if fmt == "jsonl":
        for e in entries:
            click.echo(json.dumps(history_json(e), ensure_ascii=False))
        return
    print_history(entries, wide)
    for name, count in expired.items():
        if profile_name is None or name == profile_name:
            click.echo(
                f"{name}: {count} expired (left the window undelivered: "
                "see window_days and max_items)"
            )


@cli.command()
@click.argument("target", metavar="PATH", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.pass_obj
def backup(obj: Context, target: Path, force: bool) -> None:
    """Copy the database to PATH, safely while `digest run` or a send writes to it.

    Uses SQLite's online backup API: the copy is one consistent moment of the store, with what
    its write-ahead log holds (a `cp` of the file misses that), as one self-contained file.
    """
    from digest.store import Store

    source = obj.db or obj.settings.resolve(obj.settings.store.path)
    store = Store.open(source, read_only=True)
    try:
        size = store.backup(target, force=force)
    finally:
        store.close()
    click.echo(f"backed up {source} to {target} ({size / 1_000_000:.1f} MB)")


@cli.command()
@click.pass_obj
def run(obj: Context) -> None:
    """Run the scheduler: fetch on an interval, send each profile at its time."""
    from digest.schedule import run_forever

    count = len(obj.settings.profiles)
    app = obj.app()
    try:
        app.store.require_intact()
        app.settle()  # built once for the daemon's life: out of the collector's full sweeps
        run_forever(
            app,
            started=lambda: click.echo(
                f"digest run: {_count(count, 'profile')}; Ctrl-C to stop", err=True
            ),
        )
    finally:
        app.close()


@cli.command()
@click.pass_obj
def doctor(obj: Context) -> None:
    """Check the config, database, SMTP login and notify targets (sends nothing) and that every
    source answers."""
    from digest.doctor import run_checks

    failed = 0
    for check in run_checks(obj.config_path, obj.db):
        click.echo(check.line())
        failed += not check.ok
    if failed:
        click.echo(f"{failed} problem{'s' if failed > 1 else ''} found", err=True)
        sys.exit(1)
    click.echo("All checks passed.")


cli.add_command(init)
cli.add_command(author)
cli.add_command(profile)
cli.add_command(feed_key)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user-caused errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DigestError as exc:
        click.echo(f"digest: error: {exc}", err=True)
        sys.exit(exc.exit_code)
