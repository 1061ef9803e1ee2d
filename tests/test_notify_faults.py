"""The chat fault matrix: each fault of each chat server shape on 127.0.0.1 (JSON webhook,
Mattermost incoming webhook, ntfy), beside a real SMTP server, through the real send path.

Per case: a store with 5 papers for a profile with an email address and a notify target (or
the target alone); `send_profile` while the chat server misbehaves, then sends against a
healthy one. At the end no paper is lost (every paper delivered to the profile, and to the chat
target), none doubled (one outbox row, one Message-ID, the email sent once: the retry goes to
the failed target only), and the target's token is nowhere in the output, the logs or the
database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.app import build_app, fetch, send_profile
from digest.settings import settings_from_dict
from digest.store import Store

from .chat_servers import FAULTS, TOKEN, ChatServer, Fault, chat_server
from .conftest import FIVE_PAPERS, Clock, SmtpServer

KINDS = ("json", "mmost", "ntfy")
ENV = "LAB_CHAT"


@pytest.fixture
def five_jsonl(tmp_path: Path) -> Path:
    listing = tmp_path / "five.jsonl"
    listing.write_text("".join(json.dumps(paper) + "\n" for paper in FIVE_PAPERS))
    return listing


def config(tmp_path: Path, listing: Path, smtp: SmtpServer, *, email: bool) -> dict[str, Any]:
    """Five papers for profile `me`, its email (or not) and the chat target in $LAB_CHAT."""
    profile: dict[str, Any] = {"name": "me", "keywords": ["KV cache"], "notify": [{"env": ENV}]}
    if email:
        profile["email"] = ["me@example.org"]
    return {
        "store": {"path": str(tmp_path / "digest.sqlite")},
        "sources": {"files": [{"name": "five", "path": str(listing)}]},
        "profiles": [profile],
        "smtp": smtp.smtp_settings(),
        "delivery": {"attempts": 2, "retry_backoff_seconds": 0},
        "server": {"public_url": "https://digest.example.org"},
    }


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with chat_server() as server:
        yield server


def _everything_said(store: Store) -> str:
    """Every text the database holds."""
    return "\n".join(store.db.conn.iterdump())


CASES = [(kind, fault, email) for kind in KINDS for fault in FAULTS for email in (True, False)]


@pytest.mark.parametrize(
    ("kind", "fault", "email"),
    CASES,
    ids=[f"{k}-{f}-{'email' if e else 'chat-only'}" for k, f, e in CASES],
)
def test_no_paper_lost_or_doubled_and_no_secret_shown(
    tmp_path: Path,
    five_jsonl: Path,
    smtp_server: SmtpServer,
    chat: ChatServer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    fault: Fault,
    email: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    chat.body_limit = 450
    monkeypatch.setenv(ENV, chat.url(kind))
    settings = settings_from_dict(
        config(tmp_path, five_jsonl, smtp_server, email=email), tmp_path / "config.toml"
    )
    app = build_app(settings, store=Store.open(None), clock=clock)
    assert not [r for r in fetch(app) if r.error]
    [profile] = app.settings.profile_records()

    chat.fault = fault
    first = send_profile(app, profile)
    chat.fault = ""
    posts_during_fault = len(chat.posts)
    for _ in range(2):
        clock.now += timedelta(hours=1)
        send_profile(app, profile)

    store = app.store
    [row] = store.outbox("me")  # one digest, one Message-ID: nothing doubled
    every_key = {key for (key,) in store.db.execute("SELECT paper_key FROM outbox_papers")}
    assert len(every_key) == len(FIVE_PAPERS)
    assert store.delivered_keys("me") == every_key  # nothing lost
    assert row.status == "sent"
    assert {r.address: r.status for r in store.outbox_recipients(row.id)} == {
        **({"me@example.org": "sent"} if email else {}),
        f"notify:{ENV}": "sent",
    }
    # The email went out once; the retries went to the chat target alone.
    assert len(smtp_server.handler.messages) == (1 if email else 0)
    if email:
        assert smtp_server.handler.messages[0]["Message-ID"] == row.message_id
    # The chat has the digest; twice only after a timeout (that post may have arrived).
    accepted = chat.accepted
    assert accepted and all("KV cache trick number 1" in post.text for post in accepted)
    if fault == "413":  # a shorter message: the top papers, then the count of the rest
        assert "more)" in accepted[0].text and len(chat.posts) >= 2
    assert len(accepted) == 1 or fault == "timeout"
    if fault != "413":
        assert posts_during_fault >= 1 and len(chat.posts) > posts_during_fault
        assert first.error or first.notes  # the failure was reported
        assert f"notify:{ENV}" in (first.error + " ".join(first.notes))
    # The token is nowhere but in the server's own records.
    out, err = capsys.readouterr()
    for text in (out, err, caplog.text, _everything_said(store), repr(first)):
        assert TOKEN not in text


def test_a_target_refused_for_good_does_not_hold_the_email(
    tmp_path: Path,
    five_jsonl: Path,
    smtp_server: SmtpServer,
    chat: ChatServer,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 4xx (here 413 even for the shortest message) refuses the target; the email is
    delivered, the row is done, and history says which target refused."""
    chat.body_limit = 10
    chat.fault = "413"
    monkeypatch.setenv(ENV, chat.url("mmost"))
    settings = settings_from_dict(
        config(tmp_path, five_jsonl, smtp_server, email=True), tmp_path / "config.toml"
    )
    app = build_app(settings, store=Store.open(None), clock=clock)
    fetch(app)
    [profile] = app.settings.profile_records()
    report = send_profile(app, profile)
    [row] = app.store.outbox("me")
    assert row.status == "sent" and len(smtp_server.handler.messages) == 1
    assert len(app.store.delivered_keys("me")) == 5
    states = {r.address: r for r in app.store.outbox_recipients(row.id)}
    assert states[f"notify:{ENV}"].status == "refused"
    assert "413" in row.last_error and f"notify:{ENV}" in row.last_error
    assert "413" in " ".join(report.notes)
    clock.now += timedelta(hours=1)
    send_profile(app, profile)
    assert 3 <= len(chat.posts) <= 5  # ever shorter, down to the footer; never again
    assert chat.posts[-1].text.endswith("[Full digest](https://digest.example.org/me) (5 more)")


def test_a_failing_target_never_holds_another_and_only_it_is_retried(
    tmp_path: Path,
    five_jsonl: Path,
    smtp_server: SmtpServer,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = config(tmp_path, five_jsonl, smtp_server, email=True)
    data["profiles"][0]["notify"] = [{"env": "GOOD"}, {"env": "BAD"}]
    with chat_server() as good, chat_server("500") as bad:
        monkeypatch.setenv("GOOD", good.url("ntfy"))
        monkeypatch.setenv("BAD", bad.url("mmost"))
        app = build_app(settings_from_dict(data, tmp_path / "config.toml"), clock=clock)
        fetch(app)
        [profile] = app.settings.profile_records()
        report = send_profile(app, profile)
        [row] = app.store.outbox("me")
        assert row.status == "partial" and len(app.store.delivered_keys("me")) == 5
        assert report.waiting == 1 and "notify:BAD: answered 500" in " ".join(report.notes)
        assert len(good.accepted) == 1 and len(smtp_server.handler.messages) == 1
        bad.fault = ""
        clock.now += timedelta(hours=1)
        send_profile(app, profile)
        assert app.store.outbox("me")[0].status == "sent"
        assert len(bad.accepted) == 1 and len(good.accepted) == 1
        assert len(smtp_server.handler.messages) == 1
