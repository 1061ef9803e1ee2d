"""A profile's Atom feed from a real `digest serve` (uvicorn on 127.0.0.1, stopped and joined),
read as feed readers read it: lemon24/reader (add the URL, update, read the entries) and
feedparser; a new arXiv version of a delivered paper is an updated entry, never a second one;
conditional GET answers 304; a wrong, missing or revoked key is the same 404 as an unknown
profile; the key never reaches a log; `digest preview --atom` writes the same feed. The store
is real SQLite, delivered through the outbox's own calls; every clock is injected."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import feedparser  # type: ignore[import-untyped]
import httpx
import pytest
from click.testing import CliRunner
from lxml import etree

from digest.app import build_app
from digest.cli import cli
from digest.feed_entries import current_key
from digest.preview import open_preview_app, write_atom
from digest.serve import ServeOptions, make_server, running
from digest.settings import load_settings
from digest.store import Store

from .conftest import FIXED_NOW, Clock
from .test_feed import A, _paper, atom_errors, deliver

SECRET = "feed-test-secret-0123456789abcdef"
CONFIG = """
[store]
path = "d.sqlite"

[server]
feed_days = 30

[[profiles]]
name = "me"
keywords = ["KV cache"]
authors = ["Ada Lovelace"]

[[profiles]]
name = "you"
keywords = ["forgetting"]
"""


@dataclass
class Site:
    """A config, its store with deliveries, the server's clock and options, and its port."""

    config: Path
    db: Path
    clock: Clock
    options: ServeOptions
    port: int

    def url(self, key: str, profile: str = "me") -> str:
        return f"http://127.0.0.1:{self.port}/{profile}/feed.atom?key={key}"

    def key(self, profile: str = "me") -> str:
        """The profile's key as `digest feed-key` prints it."""
        printed = feed_key_cli(self.config, profile)
        return printed.rpartition("?key=")[2]

    def store(self) -> Store:
        return Store.open(self.db)


def feed_key_cli(config: Path, *args: str) -> str:
    """`digest --config CONFIG feed-key ARGS`'s last line (the URL), in this process."""
    result = CliRunner().invoke(cli, ["--config", str(config), "feed-key", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("DIGEST_SERVER__SECRET", SECRET)
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    db = tmp_path / "d.sqlite"
    store = Store.open(db)
    try:
        deliver(store, "me", [_paper(1), _paper(2, authors=("Ada Lovelace",))], FIXED_NOW)
        deliver(store, "me", [_paper(3, title="Old news")], FIXED_NOW - timedelta(days=31))
        deliver(store, "you", [_paper(4, title="On forgetting")], FIXED_NOW)
    finally:
        store.close()
    clock = Clock(FIXED_NOW + timedelta(hours=1))
    options = ServeOptions(config, None, clock=clock)
    with running(options) as (_, port):
        yield Site(config, db, clock, options, port)


def new_version(site: Site, n: int, title: str) -> None:
    """A new arXiv version of paper `n`, with a new title, stored a day later."""
    site.clock.now += timedelta(days=1)
    store = site.store()
    try:
        store.upsert_papers([replace(_paper(n), version=2, title=title)], site.clock.now)
    finally:
        store.close()


def test_a_feed_reader_reads_the_delivered_papers_and_a_new_version_updates_one(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reader import make_reader

    url = site.url(site.key())
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        reader.add_feed(url)
        reader.update_feeds()
        first = {entry.id: entry for entry in reader.get_entries()}
        assert sorted(first) == [
            "tag:digest,2026:arxiv:2401.00001",
            "tag:digest,2026:arxiv:2401.00002",
        ]
        entry = first["tag:digest,2026:arxiv:2401.00001"]
        assert entry.title == "Paper 1 on KV caches"
        assert entry.summary == (
            "Because you follow Ada Lovelace; matches “KV cache” (title). "
            "In your digest of Sun 22 Nov 2026."
        )
        assert entry.link == "https://arxiv.org/abs/2401.00001"
        assert entry.authors_str == "Ada Lovelace"

        new_version(site, 1, "Paper 1 on KV caches, revised")
        # Its schedule (wall-clock time, an hour by default) has not come round: ask now.
        reader.update_feeds(scheduled=False)
        second = {entry.id: entry for entry in reader.get_entries()}
    finally:
        reader.close()
    assert sorted(second) == sorted(first)  # updated, not duplicated
    revised = second["tag:digest,2026:arxiv:2401.00001"]
    assert revised.title == "Paper 1 on KV caches, revised"
    assert revised.updated is not None and entry.updated is not None
    assert entry.updated == FIXED_NOW and revised.updated == site.clock.now  # the new version
    assert second["tag:digest,2026:arxiv:2401.00002"].title == "Paper 2 on KV caches"


def test_feedparser_reads_it_without_complaint_and_it_is_valid_atom(site: Site) -> None:
    with httpx.Client(timeout=30) as client:
        answer = client.get(site.url(site.key()))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert atom_errors(answer.content) == []
    parsed = feedparser.parse(answer.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert [e.id for e in parsed.entries] == [
        "tag:digest,2026:arxiv:2401.00001",
        "tag:digest,2026:arxiv:2401.00002",
    ]
    self_link = etree.fromstring(answer.content).find(A + "link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == f"http://127.0.0.1:{site.port}/me/feed.atom"  # no key


def test_a_conditional_get_is_304_until_the_feed_changes(site: Site) -> None:
    url = site.url(site.key())
    with httpx.Client(timeout=30) as client:
        first = client.get(url)
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert modified == "Sun, 22 Nov 2026 06:00:00 GMT"
        renders = site.options.cache.renders
        by_etag = client.get(url, headers={"If-None-Match": etag})
        by_date = client.get(url, headers={"If-Modified-Since": modified})
        again = client.get(url)
        assert site.options.cache.renders == renders  # rendered once, served to all
        new_version(site, 2, "Paper 2, revised")
        changed = client.get(url, headers={"If-None-Match": etag, "If-Modified-Since": modified})
    for answer in (by_etag, by_date):
        assert answer.status_code == 304 and answer.content == b""
        assert answer.headers["etag"] == etag
    assert again.status_code == 200 and again.content == first.content
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.headers["last-modified"] == "Mon, 23 Nov 2026 07:00:00 GMT"


def test_wrong_missing_and_revoked_keys_are_the_same_404_as_no_profile(site: Site) -> None:
    key = site.key()
    with httpx.Client(timeout=30) as client:
        good = client.get(site.url(key))
        refused = [
            client.get(site.url("x" * 32)),
            client.get(site.url(key[:-1])),
            client.get(f"http://127.0.0.1:{site.port}/me/feed.atom"),
            client.get(site.url(key, profile="you")),  # another profile's feed, this key
            client.get(site.url(key, profile="nobody")),
            client.get(site.url("k" * 5000)),
        ]
        revoked_url = feed_key_cli(site.config, "me", "--revoke")
        after = client.get(site.url(key))
        renewed = client.get(site.url(revoked_url.rpartition("?key=")[2]))
        others = client.get(site.url(site.key("you"), profile="you"))
    assert good.status_code == 200
    assert revoked_url.rpartition("?key=")[2] != key
    for answer in [*refused, after]:
        assert answer.status_code == 404
        assert answer.text == refused[0].text and "nobody" not in answer.text
    assert renewed.status_code == 200 and renewed.content == good.content
    assert others.status_code == 200  # revoking one profile's key leaves the others


def test_the_key_never_reaches_a_log(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    key = site.key()
    assert make_server(site.options).config.access_log is False
    with caplog.at_level(logging.DEBUG), httpx.Client(timeout=30) as client:
        assert client.get(site.url(key)).status_code == 200
        assert client.get(site.url(key[:-1] + "A")).status_code == 404
        assert client.get(site.url(key, profile="nobody")).status_code == 404
    # The test's own client (httpx) logs the URLs it asks for; the server's side logs nothing.
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith("http")]
    assert any(key in r.getMessage() for r in caplog.records)  # the capture works
    assert not [line for line in server_side if key in line or key[:16] in line]


def test_the_feed_lists_at_most_feed_entries_and_only_feed_days(site: Site) -> None:
    site.config.write_text(CONFIG.replace("feed_days = 30", "feed_days = 32\nfeed_entries = 2"))
    with httpx.Client(timeout=30) as client:
        body = client.get(site.url(site.key())).content
    assert [e.findtext(A + "title") for e in etree.fromstring(body).findall(A + "entry")] == [
        "Paper 1 on KV caches",
        "Paper 2 on KV caches",
    ]
    site.config.write_text(CONFIG.replace("feed_days = 30", "feed_days = 32"))
    with httpx.Client(timeout=30) as client:
        body = client.get(site.url(site.key())).content
    assert len(etree.fromstring(body).findall(A + "entry")) == 3  # "Old news" is 31 days old


def test_preview_atom_writes_the_served_feed(site: Site, tmp_path: Path) -> None:
    settings = load_settings(site.config)
    app = open_preview_app(settings, None)
    app.clock = site.clock
    try:
        written = write_atom(app, tmp_path / "me.atom", "me")
    finally:
        app.close()
    assert written == ("me", 2)
    with httpx.Client(timeout=30) as client:
        served = client.get(site.url(site.key())).content
    on_file = (tmp_path / "me.atom").read_bytes()
    assert atom_errors(on_file) == []
    # The same entries; only the feed's own links differ (no public_url: relative in the file).
    assert _entries(on_file) == _entries(served)
    assert etree.fromstring(on_file).find(A + "link[@rel='self']").get("href") == "/me/feed.atom"


def _entries(body: bytes) -> list[bytes]:
    return [etree.tostring(entry) for entry in etree.fromstring(body).findall(A + "entry")]


def test_preview_atom_from_the_command_line(site: Site, tmp_path: Path) -> None:
    env = {"DIGEST_SERVER__SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    args = ("--config", str(site.config), "preview", "--atom", "f.atom")
    done = _digest(*args, cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "pass --profile NAME" in done.stderr and "Traceback" not in done.stderr
    done = _digest(*args, "--profile", "you", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "f.atom" in done.stdout and "(you: " in done.stdout
    assert atom_errors((tmp_path / "f.atom").read_bytes()) == []


def test_feed_key_needs_a_database_and_names_an_unknown_profile(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    env = {"DIGEST_SERVER__SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    done = _digest("--config", str(config), "feed-key", "me", cwd=tmp_path, env=env)
    assert done.returncode == 4 and "no database yet" in done.stderr
    assert not (tmp_path / "d.sqlite").exists()
    done = _digest("--config", str(config), "feed-key", "nobody", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "nobody" in done.stderr and "Traceback" not in done.stderr


def test_the_key_printed_is_the_one_the_server_checks(site: Site) -> None:
    printed = feed_key_cli(site.config, "me")
    assert printed.startswith("http://127.0.0.1:8642/me/feed.atom?key=")
    app = build_app(load_settings(site.config), db_path=site.db)
    try:
        assert printed.endswith("?key=" + current_key(app, "me"))
    finally:
        app.close()


def _digest(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from tests.children import child_env

    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=child_env(env),
        timeout=120,
    )


def test_the_demo_pipelines_deliveries_are_the_feed(tmp_path: Path) -> None:
    """The seeds fetched, matched, rendered and delivered (`digest demo`'s pipeline, to a
    Maildir), then served: one entry per delivered paper, each saying why, valid Atom."""
    from digest.app import data_path, run_demo, seeds_clock

    clock = seeds_clock()
    result = run_demo(tmp_path, clock=clock)
    [report] = result.sent
    db = tmp_path / "demo.sqlite"
    options = ServeOptions(data_path("config.example.toml"), db, clock=clock)
    app = open_preview_app(load_settings(data_path("config.example.toml")), db)
    try:
        key = current_key(app, "me")
    finally:
        app.close()
    with running(options) as (_, port), httpx.Client(timeout=60) as client:
        answer = client.get(f"http://127.0.0.1:{port}/me/feed.atom?key={key}")
    assert answer.status_code == 200
    assert atom_errors(answer.content) == []
    entries = etree.fromstring(answer.content).findall(A + "entry")
    assert len(entries) == report.papers > 50
    summaries = [entry.findtext(A + "summary") or "" for entry in entries]
    assert sum(s.startswith("Because you follow") for s in summaries) == report.followed
    assert all(s.endswith("In your digest of Sun 22 Nov 2026.") for s in summaries)


def test_behind_a_proxy_the_urls_are_under_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SERVER__SECRET", SECRET)
    public = "https://lab.example.org/digest"
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.replace("[server]\n", f'[server]\npublic_url = "{public}"\n'))
    store = Store.open(tmp_path / "d.sqlite")
    try:
        deliver(store, "me", [_paper(1)], FIXED_NOW)
    finally:
        store.close()
    printed = feed_key_cli(config, "me")
    assert printed.startswith(f"{public}/me/feed.atom?key=")
    path = printed.removeprefix(public)  # what the proxy forwards
    options = ServeOptions(config, None, clock=Clock(FIXED_NOW))
    with running(options) as (_, port), httpx.Client(timeout=30) as client:
        answer = client.get(f"http://127.0.0.1:{port}{path}", headers={"Host": "lab.example.org"})
        foreign = client.get(f"http://127.0.0.1:{port}{path}", headers={"Host": "evil.example"})
    assert answer.status_code == 200 and foreign.status_code == 421
    doc = etree.fromstring(answer.content)
    links = {link.get("rel"): link.get("href") for link in doc.findall(A + "link")}
    assert links == {"self": f"{public}/me/feed.atom", "alternate": f"{public}/me"}
