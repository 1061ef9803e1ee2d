"""What the CLI prints: the match table, `send`'s report lines, the history table, and their
JSON-lines forms. Output only; the commands in `digest.cli` decide what to show."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from digest.cli_context import plain

if TYPE_CHECKING:
    from rich.table import Table

    from digest.models import Match
    from digest.sending import SendReport
    from digest.store import OutboxEntry


def print_matches(results: dict[str, tuple[Match, ...]], fmt: str) -> None:
    """`digest match`: each profile's matches as a table, or one JSON object a line."""
    if fmt == "jsonl":
        from digest.store.merge import batches

        lines = (_JSON.encode(_match_json(name, m)) for name, ms in results.items() for m in ms)
        # Written a thousand lines at a time, not one `echo` and one encoder per line:
        # `match --all` prints a lab's every match (54k lines: 1.12 -> 0.59 s, cProfile).
        for chunk in batches(lines, 1000):
            click.echo("\n".join(chunk))
    else:
        _print_table(results)


_JSON = json.JSONEncoder(ensure_ascii=False)  # what `json.dumps(..., ensure_ascii=False)` makes


def _match_json(profile: str, m: Match) -> dict[str, Any]:
    from digest.render import distinct_reasons

    return {
        "profile": profile,
        "id": m.paper.listing_id,
        "title": m.paper.title,
        "score": m.score,
        "reasons": [
            {"kind": r.kind, "term": r.term, "field": r.field, "text": r.text}
            for r in distinct_reasons(m.reasons)
        ],
    }


def _print_table(results: dict[str, tuple[Match, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from digest.render import reason_summary

    console = Console()
    for name, matches in results.items():
        table = Table(title=plain(f"{name}: {len(matches)} papers"), show_lines=False)
        table.add_column("#", justify="right")
        table.add_column("score", justify="right")
        table.add_column("title", overflow="fold", ratio=3)
        table.add_column("why", overflow="fold", ratio=2)
        for i, m in enumerate(matches, start=1):
            table.add_row(str(i), f"{m.score:g}", plain(m.paper.title), plain(reason_summary(m)))
        console.print(table)


def send_report_line(report: SendReport, *, dry_run: bool) -> tuple[str, bool]:
    """The line `digest send` prints for one profile's report, and whether it is an error
    (a digest not delivered: printed on stderr, exit 5)."""
    if dry_run:
        skipped = f"{report.skipped}: {report.why}" if report.why else report.skipped
        subject = report.rendered.subject if report.rendered else skipped
        return f"{report.profile}: would send {report.papers} papers: {subject}", False
    if report.error:
        return f"✗ {report.profile}: {_not_delivered(report)}: {report.error}", True
    if report.sent:
        ids = ", ".join(e.message_id for e in report.sent)
        return f"✓ {report.profile}: sent {len(report.sent)} digest(s) {ids}", False
    why = f": {report.why}" if report.why else ""
    return f"· {report.profile}: {report.skipped}{why}", False


def _not_delivered(report: SendReport) -> str:
    """What became of a digest that was not delivered, as the outbox now has it."""
    if report.outcome == "failed":
        return "failed permanently, its papers go in the next digest"
    if report.outcome == "ambiguous":
        return "delivery ambiguous (it may have arrived), will be resent unchanged"
    if report.outcome == "undeliverable":
        return (
            "undeliverable after an ambiguous try, its papers stay with that digest "
            "(see digest history)"
        )
    return "not delivered, kept for retry"


def _local(moment: datetime) -> datetime:
    """`moment` in the system's local time zone."""
    return moment.astimezone()


def history_json(e: OutboxEntry) -> dict[str, Any]:
    """One `digest history --format jsonl` line."""
    return {
        "created": _local(e.created_at).isoformat(),
        "profile": e.profile,
        "status": e.status,
        "tries": e.attempts,
        "papers": e.paper_count,
        "sent": _local(e.sent_at).isoformat() if e.sent_at else None,
        "message_id": e.message_id,
        "error": e.last_error,
    }


def short_message_id(message_id: str) -> str:
    """The distinctive end of a Message-ID (`…63460172`): its local part, without the fixed
    `.digest` tag; `--wide` shows the whole."""
    local = message_id.strip("<>").partition("@")[0].removesuffix(".digest")
    return "…" + local[-8:] if len(local) > 8 else local


def print_history(entries: list[OutboxEntry], wide: bool) -> None:
    """The history table: fits 80 columns (errors below it, by short id) unless `wide`."""
    from rich.console import Console

    table = _history_table(wide)
    errors = []
    for e in entries:
        short = e.message_id if wide else short_message_id(e.message_id)
        row = _history_row(e, short)
        table.add_row(*map(plain, row), *([plain(e.last_error)] if wide else []))
        if e.last_error and not wide:
            errors.append(f"{short}: {e.last_error}")
    console = Console(width=1000) if wide else Console()  # wide: nothing folded, to grep
    console.print(table)
    for line in errors:
        console.print(line, overflow="fold", highlight=False, markup=False)


def _history_table(wide: bool) -> Table:
    """The empty history table, its columns set (`error` too when `wide`)."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="digest history", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for column in ("created", "profile", "status", "tries", "papers", "sent", "Message-ID"):
        numeric = column in ("tries", "papers")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=column != "profile",
            overflow="fold",
        )
    if wide:
        table.add_column("error", overflow="fold")
    return table


def _history_row(e: OutboxEntry, short_id: str) -> list[str]:
    """One outbox row's cells, in local time (the send time without its date when it is the
    creation day)."""
    created = _local(e.created_at)
    sent = ""
    if e.sent_at:
        at = _local(e.sent_at)
        sent = f"{at:%H:%M}" if at.date() == created.date() else f"{at:%m-%d %H:%M}"
    row = [f"{created:%Y-%m-%d %H:%M %Z}".strip(), e.profile, e.status]
    return [*row, str(e.attempts), str(e.paper_count), sent, short_id]
