"""Chat and push targets (`notify`): the settings, the short message and how it is fitted, the
apprise edge against servers on 127.0.0.1 (JSON webhook, Mattermost, ntfy), `digest doctor`'s
check, the next email's health line, and `digest fetch` + `send` end to end on the seeds (a
profile with only `notify`, one with email and ntfy). The fault matrix is test_notify_faults."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.app import build_app, fetch, send_profile
from digest.errors import ConfigError
from digest.models import Digest, Match, NotifyTarget, Paper, Profile, Reason
from digest.notify import (
    TOP_PAPERS,
    ChatMessage,
    NotifyError,
    chat_message,
    check_target,
    fit,
    send_chat,
)
from digest.settings import settings_from_dict
from digest.store import Store

from .chat_servers import TOKEN, ChatServer, chat_server, seed_config
from .children import child_env
from .conftest import FIVE_PAPERS, Clock
from .test_cli import digest as run_digest

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with chat_server() as server:
        yield server


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify", "error"),
    [
        (["ntfy://ntfy.sh/topic"], "notify: a URL holds its token: read it from the environment"),
        ([{"env": "A", "file": "x.url"}], "notify[0]: give exactly one of `env`"),
        ([{}], "notify[0]: give exactly one of `env`"),
        ([{"env": "A"}, {"env": "A"}], "notify: notify target name 'A' is used twice"),
        ([{"file": "my url.txt"}], "notify[0]: 'my url' is not a usable name"),
        ([{"env": "1A"}], "notify[0].env: '1A' has characters that are not allowed"),
        ([{"env": "A", "url": "x"}], "notify[0].url"),
        ([{"env": f"V{n}"} for n in range(11)], "notify"),
    ],
)
def test_bad_notify_config_is_one_line(notify: list[Any], error: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({"profiles": [{"name": "me", "notify": notify}]}, tmp_path / "c.toml")
    message = str(caught.value)
    assert error in message and "\n" not in message and "ntfy.sh" not in message


def test_notify_targets_become_labelled_records(tmp_path: Path) -> None:
    notify = [{"env": "LAB_MATTERMOST"}, {"file": "urls/ntfy.url"}, {"env": "X", "name": "phone"}]
    settings = settings_from_dict(
        {"profiles": [{"name": "me", "notify": notify}]}, tmp_path / "config.toml"
    )
    [profile] = settings.profile_records()
    assert profile.emails == ()
    assert profile.notify == (
        NotifyTarget("notify:LAB_MATTERMOST", env="LAB_MATTERMOST"),
        NotifyTarget("notify:ntfy", file=tmp_path / "urls" / "ntfy.url"),
        NotifyTarget("notify:phone", env="X"),
    )


# --- the message ---------------------------------------------------------------------------------


def _match(n: int, title: str = "") -> Match:
    paper = Paper(f"arxiv:2411.{n:05d}", title or f"Paper {n}", arxiv_id=f"2411.{n:05d}")
    return Match(paper, (Reason("keyword", "KV cache", "title", "KV cache"),), 1.0)


def _digest(count: int, *titles: str) -> Digest:
    matches = tuple(_match(n, titles[n] if n < len(titles) else "") for n in range(count))
    return Digest(Profile("lab group"), matches, NOW)


def test_chat_message_names_the_top_papers_and_links_the_rest() -> None:
    message = chat_message(
        _digest(8, "A *bold* [claim] about $\\alpha$"), "Research digest: 8", "https://d.org/x/"
    )
    assert message.title == "Research digest: 8" and message.total == 8
    assert len(message.items) == TOP_PAPERS
    assert message.items[0] == (
        r"- [A \*bold\* \[claim\] about α](https://arxiv.org/abs/2411.00000)"
        " — matches “KV cache”"
    )
    assert message.link == "https://d.org/x/lab%20group"
    body = fit(message, 10_000)
    assert body.endswith("[Full digest](https://d.org/x/lab%20group) (3 more)")
    assert ChatMessage.from_json(message.to_json()) == message
    assert ChatMessage.from_json("") is None and ChatMessage.from_json('{"title": 1}') is None


@pytest.mark.parametrize(
    ("count", "link", "footer"),
    [
        (0, "", "Nothing new."),
        (3, "", "- [Paper 2](https://arxiv.org/abs/2411.00002) — matches “KV cache”"),
        (7, "", "… and 2 more"),
        (7, "https://d.org", "[Full digest](https://d.org/lab%20group) (2 more)"),
    ],
)
def test_the_last_line(count: int, link: str, footer: str) -> None:
    assert fit(chat_message(_digest(count), "T", link), 10_000).splitlines()[-1] == footer


def test_a_nothing_new_digest_says_why() -> None:
    empty = Digest(Profile("me"), (), NOW, empty_reason="12 papers fetched, none matched")
    assert fit(chat_message(empty, "T", "https://d.org"), 10_000) == (
        "Nothing new: 12 papers fetched, none matched.\n[Full digest](https://d.org/me)"
    )


# Paper lines as `chat_message` makes them: each names its rank (no line inside another).
_items = st.lists(st.text(alphabet="ab *[]()—", min_size=1, max_size=300), max_size=8).map(
    lambda texts: tuple(f"- <{n}> {text}" for n, text in enumerate(texts))
)


@given(
    items=_items,
    extra=st.integers(0, 50),
    link=st.sampled_from(["", "https://d.org/me"]),
    limit=st.integers(0, 3000),
)
def test_fit_never_exceeds_the_limit_and_keeps_the_order(
    items: tuple[str, ...], extra: int, link: str, limit: int
) -> None:
    message = ChatMessage("T", items, len(items) + extra, link)
    body = fit(message, limit)
    assert len(body) <= limit
    full = fit(message, 10**6)
    if len(full) <= limit:
        assert body == full
    kept = [item for item in items if item in body]
    assert kept == list(items[: len(kept)])  # the top papers first, none skipped


# --- the edge, against servers on 127.0.0.1 ------------------------------------------------------


def test_each_service_gets_markdown_within_its_limit(chat: ChatServer) -> None:
    titles = ["A very long title " * 20] * 5
    message = chat_message(_digest(40, *titles), "Research digest, Sun 22 Nov: 40", "https://d.org")
    for kind in ("json", "mmost", "ntfy"):
        send_chat("notify:x", chat.url(kind), message)
    posted = {post.path: post for post in chat.accepted}
    as_json = json.loads(posted[f"/hook/{TOKEN}"].body)
    assert as_json["title"] == message.title and as_json["message"].startswith("- [A very long")
    mattermost = json.loads(posted[f"/hooks/{TOKEN}"].body)["text"]
    assert mattermost.startswith(message.title)  # Mattermost has no title: it leads the text
    assert len(mattermost) <= 4000
    ntfy = posted["/"]
    assert ntfy.headers["X-Markdown"] == "yes" and ntfy.headers["Authorization"].endswith(TOKEN)
    assert "[Full digest](https://d.org/lab%20group) (35 more)" in ntfy.text


def test_apprise_logs_nothing_of_ours_even_at_debug(
    chat: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat.fault = "500"
    message = chat_message(_digest(2), "T", "")
    for kind in ("json", "mmost", "ntfy"):
        with pytest.raises(NotifyError) as caught:
            send_chat("notify:x", chat.url(kind), message)
        assert str(caught.value) == "notify:x: answered 500 Internal Server Error (retried later)"
    assert TOKEN not in caplog.text and "127.0.0.1" not in caplog.text


def test_an_answer_dripped_for_ever_is_given_up_at_the_deadline(chat: ChatServer) -> None:
    """Each byte comes within the read timeout, so only the post's own deadline ends it
    (2 x (connect 1 s + read 1 s) + 1 s): it may have arrived, so it is ambiguous."""
    chat.fault = "drip"
    started = time.monotonic()
    with pytest.raises(NotifyError) as caught:
        send_chat("notify:x", chat.url("json"), chat_message(_digest(1), "T", ""))
    took = time.monotonic() - started
    assert caught.value.ambiguous and not caught.value.permanent
    assert (
        str(caught.value) == "notify:x: no answer within 5 s; it may have arrived (retried later)"
    )
    assert 4.5 < took < 8


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("ok", ""),
        ("unset", "notify:t: the environment variable T_URL is not set"),
        ("empty-file", "notify:t: {file} is empty"),
        ("no-file", "notify:t: cannot read {file}: No such file or directory"),
        ("bad-scheme", "notify:t: not a URL apprise accepts (check its scheme and parts)"),
        ("bad-parts", "notify:t: not a URL apprise accepts (check its scheme and parts)"),
    ],
)
def test_check_target_never_sends_nor_shows_the_url(
    chat: ChatServer, tmp_path: Path, setup: str, problem: str
) -> None:
    file = tmp_path / "t.url"
    urls = {"ok": chat.url("ntfy"), "bad-scheme": f"nosuch://{TOKEN}", "bad-parts": "mmost://"}
    if setup == "empty-file":
        file.write_text("\n")
    if setup in urls:
        file.write_text(urls[setup])
    target = (
        NotifyTarget("notify:t", env="T_URL")
        if setup == "unset"
        else NotifyTarget("notify:t", file=file)
    )
    assert check_target(target, {}) == problem.format(file=file)
    assert TOKEN not in problem and chat.posts == []


# --- health line, e2e ----------------------------------------------------------------------------


def test_the_next_email_names_a_target_still_failing(
    tmp_path: Path, chat: ChatServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tmp_path / "papers.jsonl"
    listing.write_text("".join(json.dumps(paper) + "\n" for paper in FIVE_PAPERS[:3]))
    monkeypatch.setenv("LAB_CHAT", chat.url("mmost"))
    data = {
        "store": {"path": str(tmp_path / "digest.sqlite")},
        "sources": {"files": [{"name": "five", "path": str(listing)}]},
        "profiles": [
            {
                "name": "me",
                "email": "me@example.org",
                "keywords": ["KV cache"],
                "notify": [{"env": "LAB_CHAT"}],
            }
        ],
        "delivery": {"method": "maildir", "maildir": str(tmp_path / "mail"), "attempts": 1},
    }
    app = build_app(settings_from_dict(data, tmp_path / "config.toml"), clock=clock)
    fetch(app)
    [profile] = app.settings.profile_records()
    chat.fault = "500"
    first = send_profile(app, profile)
    assert first.rendered is not None and "notify:LAB_CHAT" not in first.rendered.text
    listing.write_text("".join(json.dumps(paper) + "\n" for paper in FIVE_PAPERS))
    clock.now += timedelta(days=1)
    fetch(app)
    second = send_profile(app, profile)
    assert second.rendered is not None
    assert "notify:LAB_CHAT could not be read since 2026-11-22 06:00 UTC: answered 500" in (
        " ".join(second.rendered.text.split())
    )
    assert len(app.store.outbox("me")) == 2 and len(app.store.delivered_keys("me")) == 5


def test_end_to_end_on_the_seeds_chat_only_and_email_plus_ntfy(tmp_path: Path) -> None:
    config = seed_config(tmp_path, tmp_path / "ntfy.url")
    with chat_server() as mattermost, chat_server() as ntfy:
        (tmp_path / "ntfy.url").write_text(ntfy.url("ntfy") + "\n")
        env = child_env({"LAB_MATTERMOST": mattermost.url("mmost"), "HOME": str(tmp_path)})
        doctor = run_digest("--config", str(config), "doctor", env=env)
        assert "✓ notify:LAB_MATTERMOST (lab): apprise accepts the URL" in doctor.stdout
        assert "✓ notify:phone (me): apprise accepts the URL" in doctor.stdout
        assert mattermost.posts == [] and ntfy.posts == []  # the doctor posts nothing
        assert run_digest("--config", str(config), "fetch", env=env).returncode == 0
        sent = run_digest("-vv", "--config", str(config), "send", env=env)
        assert sent.returncode == 0, sent.stderr
        history = run_digest("--config", str(config), "history", "--format", "jsonl", env=env)
        again = run_digest("--config", str(config), "send", env=env)
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert sorted((r["profile"], r["status"]) for r in rows) == [("lab", "sent"), ("me", "sent")]
    [lab_post] = mattermost.accepted
    lab = next(r for r in rows if r["profile"] == "lab")
    assert f"{lab['papers']} on your topics" in json.loads(lab_post.body)["text"]
    assert "[Full digest](https://digest.example.org/lab)" in lab_post.text
    # `me` got as many chat posts as emails (the second send took what the first email had no
    # room for), each with its own papers.
    assert "· lab: nothing new" in again.stdout and len(mattermost.posts) == 1
    emails = list((tmp_path / "mail" / "new").iterdir())
    assert len(ntfy.accepted) == len(emails) == 1 + again.stdout.count("✓ me: sent")
    assert all("[Full digest](https://digest.example.org/me)" in p.text for p in ntfy.accepted)
    assert len({p.text.splitlines()[0] for p in ntfy.accepted}) == len(ntfy.accepted)
    for output in (doctor, sent, history, again):
        assert TOKEN not in output.stdout + output.stderr
    store = Store.open(tmp_path / "d.sqlite")
    try:
        assert TOKEN not in "\n".join(store.db.conn.iterdump())
    finally:
        store.close()


def test_doctor_names_a_missing_target_and_skips_smtp_for_chat_only(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[store]\npath = "d.sqlite"\n[[profiles]]\nname = "lab"\nkeywords = ["x"]\n'
        'notify = [{ env = "LAB_MATTERMOST" }]\n'
    )
    result = run_digest("--config", str(config), "doctor", env=child_env({"HOME": str(tmp_path)}))
    assert (
        "✗ notify:LAB_MATTERMOST (lab): notify:LAB_MATTERMOST: the environment variable"
        " LAB_MATTERMOST is not set — set LAB_MATTERMOST" in result.stdout
    )
    assert "smtp" not in result.stdout and result.returncode != 0
    shown = run_digest("--config", str(config), "profile", "show", env=child_env({}))
    assert "  email       (none)\n  notify      notify:LAB_MATTERMOST\n" in shown.stdout


def _five_paper_app(tmp_path: Path, clock: Clock, **profile: Any) -> Any:
    listing = tmp_path / "papers.jsonl"
    listing.write_text("".join(json.dumps(paper) + "\n" for paper in FIVE_PAPERS))
    data = {
        "store": {"path": str(tmp_path / "digest.sqlite")},
        "sources": {"files": [{"name": "five", "path": str(listing)}]},
        "profiles": [{"name": "me", "keywords": ["KV cache"], **profile}],
        "delivery": {"attempts": 1},
    }
    app = build_app(settings_from_dict(data, tmp_path / "config.toml"), clock=clock)
    fetch(app)
    return app


def test_a_profile_needs_email_or_notify_to_send(tmp_path: Path, clock: Clock) -> None:
    app = _five_paper_app(tmp_path, clock)
    with pytest.raises(ConfigError, match=r"\.email: needed to send \(or `notify` targets\)$"):
        send_profile(app, app.settings.profile_records()[0])


def test_a_target_whose_variable_is_unset_waits_and_loses_nothing(
    tmp_path: Path, clock: Clock, chat: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAB_CHAT", raising=False)
    app = _five_paper_app(tmp_path, clock, notify=[{"env": "LAB_CHAT"}])
    [profile] = app.settings.profile_records()
    report = send_profile(app, profile)
    assert report.error == "notify:LAB_CHAT: the environment variable LAB_CHAT is not set"
    [row] = app.store.outbox("me")
    assert row.status == "pending" and app.store.delivered_keys("me") == set()
    monkeypatch.setenv("LAB_CHAT", chat.url("json"))
    clock.now += timedelta(hours=1)
    send_profile(app, profile)
    assert app.store.outbox("me")[0].status == "sent" and len(chat.accepted) == 1
    assert len(app.store.delivered_keys("me")) == 5
