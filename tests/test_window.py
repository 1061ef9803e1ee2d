"""The window rule (DESIGN.md, "Candidates and delivery"): a paper is a candidate for a profile
while it is undelivered to it and was first seen within the profile's window; what does not fit
a digest follows compactly or stays a candidate; what leaves the window undelivered is recorded
as expired. Nothing is lost because a fetch overlapped a send, a digest was full, or a keyword
was added after this morning's email."""

from __future__ import annotations

import json
import mailbox
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from digest.app import (
    build_app,
    data_path,
    fetch,
    plan_digest,
    run_demo,
    seeds_clock,
    send_profile,
)
from digest.deliver import MaildirMailer
from digest.errors import ConfigError
from digest.match import match_profiles
from digest.models import Paper
from digest.settings import Settings, load_settings, settings_from_dict
from digest.sources import FetchContext, FetchResult
from digest.store import Store

from .conftest import Clock, HttpServer, Recorded

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
CLIP = 100_000


def _papers(prefix: str, count: int, *, abstract: str = "A study.") -> list[Paper]:
    return [
        Paper(key="", title=f"{prefix} number {i:03d}", abstract=abstract, source="files")
        for i in range(count)
    ]


def _titles_in(maildir: Path) -> Counter[str]:
    """How many delivered messages name each title (text part), and under which Message-IDs."""
    seen: Counter[str] = Counter()
    for message in mailbox.Maildir(maildir, create=False):
        parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
        body = parsed.get_body(("plain",))
        assert body is not None
        for line in body.get_content().splitlines():
            if "number " in line:
                seen[line.strip().split(". ", 1)[-1].split("  ")[0]] += 1
    return seen


def _message_keys(store: Store, profile: str) -> list[set[str]]:
    """The papers each sent outbox row of `profile` carried."""
    rows = store.db.execute(
        "SELECT o.id, op.paper_key FROM outbox o JOIN outbox_papers op ON op.outbox_id = o.id"
        " WHERE o.profile = ? AND o.status = 'sent' ORDER BY o.id",
        [profile],
    ).fetchall()
    by_row: dict[int, set[str]] = {}
    for outbox_id, key in rows:
        by_row.setdefault(outbox_id, set()).add(key)
    return list(by_row.values())


def _rss(count: int) -> bytes:
    items = "".join(
        f"<item><title>Widget number {i:03d}</title><link>https://e.test/{i}</link>"
        f"<description>On widget design, part {i}.</description></item>"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Widgets'
        f"</title><link>https://e.test/</link><description>d</description>{items}"
        "</channel></rss>"
    ).encode()


def test_a_fetch_overlapping_a_send_loses_nothing(tmp_path: Path, http_server: HttpServer) -> None:
    """Yesterday's paper is fetched; then `digest fetch` of a slow feed, and `digest send`
    (delivering yesterday's paper) while it runs, then sends until nothing is left: each of the
    301 papers arrives once."""
    feed = _rss(301)

    def slow_feed(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes]:
        if count == 1:
            return 200, {"Content-Type": "application/rss+xml"}, _rss(1)
        time.sleep(3.0)  # the fetch started before the send; it stores after the send ran
        return 200, {"Content-Type": "application/rss+xml"}, feed

    http_server.routes["/widgets.xml"] = slow_feed
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
path = "d.sqlite"
[delivery]
method = "maildir"
maildir = "mail"
[[sources.feeds]]
name = "widgets"
url = "{http_server.url}/widgets.xml"
[[profiles]]
name = "me"
email = "me@example.org"
keywords = ["widget"]
max_items = 1000
""",
        encoding="utf-8",
    )

    def digest(*args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "digest", "--config", str(config), *args]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
        )

    assert _run(config, "fetch").returncode == 0
    fetcher = digest("fetch")
    try:
        time.sleep(1.0)
        sender = digest("send")
        _, err = sender.communicate(timeout=60)
        assert sender.returncode == 0, err
        _, err = fetcher.communicate(timeout=60)
        assert fetcher.returncode == 0, err
    finally:
        if fetcher.poll() is None:
            fetcher.kill()
            fetcher.wait(timeout=10)
    for _ in range(6):  # the papers may need more than one digest (100 KB each)
        done = _run(config, "send")
        assert done.returncode == 0, done.stderr
        if "nothing new" in done.stdout:
            break
    seen = _titles_in(tmp_path / "mail")
    assert sorted(seen) == sorted(f"Widget number {i:03d}" for i in range(301))
    assert {title: n for title, n in seen.items() if n > 1} == {}


def test_every_demo_match_is_in_the_demo_digest_or_the_next(tmp_path: Path) -> None:
    """Of the demo's matched papers, each is in the demo digest (in full or in the compact
    list) or in the digest the next send makes from the same store; none twice."""
    clock = seeds_clock()  # the demo's own clock, for the sends after it too
    result = run_demo(tmp_path / "out", clock=clock)
    [report] = result.sent
    assert report.rendered is not None
    assert len(report.rendered.html.encode()) <= CLIP
    settings = load_settings(data_path("config.example.toml"))
    store = Store.open(tmp_path / "out" / "demo.sqlite")
    [profile] = settings.profile_records()
    everything = list(store.papers_seen_since(datetime(1970, 1, 1, tzinfo=UTC)))
    matched = {m.paper.key for m in match_profiles(everything, [profile])["me"]}
    assert len(matched) == 112
    first = store.outbox("me")[0]
    assert first.paper_count > profile.max_items  # the compact list carried more than 50

    app = build_app(
        settings, store=store, mailer=MaildirMailer(tmp_path / "out" / "maildir"), clock=clock
    )
    again = send_profile(app, profile)
    assert again.error == "" and again.sent
    digests = _message_keys(store, "me")
    assert len(digests) == 2
    assert digests[0] & digests[1] == set()
    both = digests[0] | digests[1]
    assert both & matched == matched
    # The rest is "Suggested for you" (the example profile has a library): papers no rule
    # picked, at most `suggestions` a digest.
    assert 0 < len(both - matched) <= 2 * profile.suggestions
    third = send_profile(app, profile)
    if third.skipped != "nothing new":  # more suggestions, never a rule match again
        assert _message_keys(store, "me")[2].isdisjoint(both | matched)
    app.close()


def test_papers_beyond_max_items_are_listed_compactly(
    listing_settings: Callable[..., Settings],
) -> None:
    app = build_app(listing_settings(max_items=3, keywords=["widget"]), store=Store.open(None))
    app.clock = Clock(NOW)
    app.store.upsert_papers(_papers("Widget", 12), NOW)
    plan = plan_digest(app, app.settings.profile_records()[0])
    assert len(plan.digest.matches) == 3
    assert len(plan.digest.overflow) == 9 and plan.digest.more == 0
    html, text = plan.rendered.html, plan.rendered.text
    for i in range(12):
        assert f"number {i:03d}" in html and f"Widget number {i:03d}" in text
    assert "More that match" in html and "MORE THAT MATCH" in text
    assert len(plan.rendered.paper_keys) == 12


def test_what_does_not_fit_the_clip_size_stays_for_the_next_digest(
    listing_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    clock = Clock(NOW)
    settings = listing_settings(max_items=2, keywords=["widget"])
    app = build_app(
        settings, store=Store.open(None), mailer=MaildirMailer(tmp_path / "m"), clock=clock
    )
    app.clip_bytes = 20_000
    app.store.upsert_papers(_papers("Widget", 120), NOW)
    [profile] = settings.profile_records()
    delivered: list[set[str]] = []
    while (report := send_profile(app, profile)).sent:
        assert report.rendered is not None
        assert len(report.rendered.html.encode()) <= 20_000
        delivered.append(set(report.rendered.paper_keys))
        clock.now += timedelta(hours=1)
    assert len(delivered) > 1
    assert sum(len(d) for d in delivered) == len(set().union(*delivered)) == 120


def test_a_keyword_added_after_a_send_finds_the_papers_already_fetched(
    listing_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    clock = Clock(NOW)
    store = Store.open(None)
    store.upsert_papers(_papers("Widget", 2) + _papers("Gadget", 3), NOW - timedelta(hours=1))
    mailer = MaildirMailer(tmp_path / "m")
    before = listing_settings(keywords=["widget"])
    app = build_app(before, store=store, mailer=mailer, clock=clock)
    [profile] = before.profile_records()
    assert send_profile(app, profile).papers == 2

    clock.now += timedelta(hours=3)
    after = listing_settings(keywords=["widget", "gadget"])
    app = build_app(after, store=store, mailer=mailer, clock=clock)
    [profile] = after.profile_records()
    plan = plan_digest(app, profile)
    assert sorted(m.paper.title for m in plan.digest.matches) == [
        f"Gadget number {i:03d}" for i in range(3)
    ]


def test_a_paper_that_leaves_the_window_undelivered_is_expired_and_counted(
    listing_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    clock = Clock(NOW)
    settings = listing_settings(max_items=1, keywords=["widget"], window_days=3)
    store = Store.open(None)
    app = build_app(settings, store=store, mailer=MaildirMailer(tmp_path / "m"), clock=clock)
    app.clip_bytes = 5_500  # a few papers a digest
    store.upsert_papers(_papers("Widget", 30), NOW)
    [profile] = settings.profile_records()
    sent = 0
    for _day in range(5):
        report = send_profile(app, profile)
        sent += len(report.rendered.paper_keys) if report.rendered else 0
        clock.now += timedelta(days=1)
    expired = store.expired_counts()
    assert 0 < sent < 30
    assert expired == {"me": 30 - sent}
    history = _cli_history(settings, store)
    assert f"{30 - sent} expired" in history


def _cli_history(settings: Settings, store: Store) -> str:
    """`digest history` over a copy of the memory store, as a user runs it."""
    from click.testing import CliRunner

    from digest.cli import cli

    target = settings.path.parent / "h.sqlite"
    store.db.conn.execute("VACUUM INTO ?", [str(target)])
    settings.path.write_text('[[profiles]]\nname = "me"\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--config", str(settings.path), "--db", str(target), "history"]
    )
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("days", [0, 10_000])
def test_window_days_is_bounded(tmp_path: Path, days: int) -> None:
    settings = settings_from_dict({"profiles": [{"name": "me", "window_days": 7}]}, tmp_path)
    assert settings.profile_records()[0].window_days == 7
    with pytest.raises(ConfigError, match="window_days"):
        settings_from_dict({"profiles": [{"name": "me", "window_days": days}]}, tmp_path / "c")


class _SlowSource:
    """A source whose fetch takes an hour of the test's clock."""

    name = "slow"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def fetch(self, context: FetchContext) -> FetchResult:
        self.clock.now += timedelta(hours=1)
        return FetchResult(papers=tuple(_papers("Widget", 1)))


def test_papers_are_first_seen_when_stored_not_when_the_fetch_began(
    listing_settings: Callable[..., Settings],
) -> None:
    clock = Clock(NOW)
    app = build_app(
        listing_settings(), store=Store.open(None), sources=[_SlowSource(clock)], clock=clock
    )
    fetch(app)
    [paper] = app.store.papers_seen_since(NOW)
    assert paper.first_seen == NOW + timedelta(hours=1)


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config.parent,
        stdin=subprocess.DEVNULL,
    )


def test_match_preview_and_dry_run_tell_the_same_truth_after_a_send(tmp_path: Path) -> None:
    listings = tmp_path / "in.jsonl"
    listings.write_text(
        "".join(json.dumps({"title": f"Widget number {i:03d}"}) + "\n" for i in range(4)),
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
path = "d.sqlite"
[delivery]
method = "maildir"
maildir = "mail"
[[sources.files]]
path = "{listings}"
[[profiles]]
name = "me"
email = "me@example.org"
keywords = ["widget"]
""",
        encoding="utf-8",
    )
    assert _run(config, "fetch").returncode == 0
    before = _run(config, "match", "--format", "jsonl")
    assert len(before.stdout.splitlines()) == 4, before.stderr
    assert _run(config, "send").returncode == 0
    after = _run(config, "match", "--format", "jsonl")
    assert after.returncode == 0 and after.stdout == "", after.stdout
    assert "would send 0 papers" in _run(config, "send", "--dry-run").stdout
    everything = _run(config, "match", "--all", "--format", "jsonl")
    assert len(everything.stdout.splitlines()) == 4
    preview = _run(config, "preview", "--out", "pv")
    assert preview.returncode == 0, preview.stderr
    assert (tmp_path / "pv" / "me.txt").read_text(encoding="utf-8").startswith("Research digest")


def test_papers_released_by_a_failed_digest_come_back_even_after_their_window(
    listing_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A digest held in the outbox for days, then refused for good: its papers are candidates
    for the next digest although the window moved past them, and never count as expired."""
    clock = Clock(NOW)
    settings = listing_settings(keywords=["widget"], window_days=1)
    store = Store.open(None)
    app = build_app(settings, store=store, mailer=MaildirMailer(tmp_path / "m"), clock=clock)
    store.upsert_papers(_papers("Widget", 3), NOW)
    [profile] = settings.profile_records()
    plan = plan_digest(app, profile)
    from digest.app import expire_stale, queue_digest

    expire_stale(app, profile)
    entry, _ = queue_digest(app, plan)
    for _day in range(4):  # the digest waits in the outbox while the window moves on
        clock.now += timedelta(days=1)
        expire_stale(app, profile)
    assert store.expired_counts() == {}
    store.record_attempt(
        entry.id,
        clock.now,
        tried={"me@example.org": ("refused", "550 mailbox gone")},
        error="550 mailbox gone",
        give_up=True,
    )
    assert store.outbox_entry(entry.id).status == "failed"
    again = plan_digest(app, profile)
    assert sorted(m.paper.title for m in again.digest.papers) == [
        f"Widget number {i:03d}" for i in range(3)
    ]
