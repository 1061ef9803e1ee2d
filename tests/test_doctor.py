"""`digest doctor` against real servers: the SMTP fixture (STARTTLS + AUTH), a local HTTP server,
real SQLite files and Maildirs. Nothing is mocked and no mail is sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import tomlkit

from digest.cli import main
from digest.store import SCHEMA_VERSION, Store

from .conftest import (
    DATA,
    SMTP_PASSWORD,
    HttpServer,
    Recorded,
    Script,
    ScriptedSmtp,
    SmtpServer,
    free_port,
)

Reply = tuple[int, dict[str, str], bytes]
FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>"""


def ok(body: bytes = FEED) -> Callable[[Recorded, int], Reply]:
    return lambda request, count: (200, {"Content-Type": "application/xml"}, body)


def status(code: int) -> Callable[[Recorded, int], Reply]:
    return lambda request, count: (code, {}, b"no")


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config (quick HTTP settings, one profile, Maildir delivery unless told) to a file."""

    def write(**sections: Any) -> Path:
        data: dict[str, Any] = {
            "store": {"path": str(tmp_path / "digest.sqlite")},
            "http": {"attempts": 1, "backoff_seconds": 0.01, "connect_timeout": 2},
            "delivery": {"method": "maildir", "maildir": str(tmp_path / "mail")},
            "sources": {"files": [{"name": "listings", "path": str(DATA / "listings.jsonl")}]},
            "profiles": [
                {"name": "me", "email": "me@example.org", "keywords": ["KV cache"]},
            ],
        }
        data.update(sections)
        path = tmp_path / "config.toml"
        path.write_text(tomlkit.dumps(data))
        return path

    return write


def doctor(capsys: pytest.CaptureFixture[str], config: Path, *more: str) -> tuple[int, list[str]]:
    """Run `digest --config CONFIG doctor`: (exit code, output lines)."""
    try:
        main(["--config", str(config), *more, "doctor"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert SMTP_PASSWORD not in captured.out + captured.err
    return code, captured.out.splitlines()


def line(lines: list[str], name: str) -> str:
    """The one output line of the check called `name`."""
    found = [x for x in lines if x[2:].startswith(f"{name}: ")]
    assert len(found) == 1, lines
    return found[0]


def test_everything_passes(
    write_config: Callable[..., Path],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(delivery={"method": "smtp"}, smtp=smtp_server.smtp_settings())
    code, lines = doctor(capsys, config)
    assert code == 0, lines
    assert all(x.startswith("✓ ") for x in lines[:-1]) and lines[-1] == "All checks passed."
    assert line(lines, "config") == f"✓ config: {config} is valid (1 profile, 1 source)"
    assert "sends at 07:30 UTC (daily), next" in line(lines, "profile me")
    assert "does not exist yet" in line(lines, "database")
    assert line(lines, "smtp") == (
        f"✓ smtp: 127.0.0.1:{smtp_server.port} reachable (starttls), login accepted for 'reader'"
    )
    assert "listings in" in line(lines, "source listings")
    assert smtp_server.handler.messages == []  # nothing was sent
    assert not (config.parent / "digest.sqlite").exists()  # nor a database created


@pytest.mark.parametrize(
    ("overrides", "expected", "fix"),
    [
        ({"password": "wrong"}, "login refused for 'reader': 535", "check smtp.username"),
        ({"port": "closed"}, "connection refused", "check smtp.host and smtp.port"),
        ({"ca_file": None}, "TLS certificate not trusted", "set smtp.ca_file"),
        ({"security": "ssl"}, "TLS failed", "check smtp.security and smtp.port"),
        ({"password": None}, "no password is set", "DIGEST_SMTP__PASSWORD"),
        ({"host": ""}, "smtp.host is not set", 'method = "maildir"'),
    ],
    ids=[
        "wrong-password",
        "closed-port",
        "untrusted-ca",
        "tls-on-a-plain-port",
        "no-password",
        "no-host",
    ],
)
def test_smtp_problems_are_named_with_a_fix(
    write_config: Callable[..., Path],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    overrides: dict[str, Any],
    expected: str,
    fix: str,
) -> None:
    if overrides.get("port") == "closed":
        overrides = {"port": free_port()}
    smtp = {k: v for k, v in smtp_server.smtp_settings(**overrides).items() if v is not None}
    config = write_config(delivery={"method": "smtp"}, smtp=smtp)
    code, lines = doctor(capsys, config)
    assert code == 1
    smtp_line = line(lines, "smtp")
    assert smtp_line.startswith("✗ smtp: ") and expected in smtp_line
    assert " — " in smtp_line and fix in smtp_line.partition(" — ")[2]
    assert smtp_server.handler.messages == []


@pytest.mark.parametrize(
    "greeting", ["endless", "drip 220 " + "slow " * 40], ids=["endless-multiline", "drip"]
)
def test_a_server_that_never_finishes_its_greeting_ends_at_the_session_deadline(
    write_config: Callable[..., Path],
    scripted_smtp: ScriptedSmtp,
    capsys: pytest.CaptureFixture[str],
    greeting: str,
) -> None:
    scripted_smtp.scripts = [Script(greeting=greeting)]
    smtp = scripted_smtp.smtp_settings(deadline_seconds=1.5)
    code, lines = doctor(capsys, write_config(delivery={"method": "smtp"}, smtp=smtp))
    smtp_line = line(lines, "smtp")
    assert code == 1
    assert "no complete answer within the 1.5 s session deadline" in smtp_line
    assert "smtp.deadline_seconds" in smtp_line.partition(" — ")[2]


def test_password_from_the_environment_is_used_and_never_shown(
    write_config: Callable[..., Path],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smtp = smtp_server.smtp_settings()
    del smtp["password"]
    monkeypatch.setenv("DIGEST_SMTP__PASSWORD", SMTP_PASSWORD)
    code, lines = doctor(capsys, write_config(delivery={"method": "smtp"}, smtp=smtp))
    assert code == 0 and "login accepted" in line(lines, "smtp")


@pytest.mark.parametrize(
    ("route", "ok_expected", "expected"),
    [
        (ok(), True, "answered HTTP 200 with a feed of 0 papers"),
        (ok((DATA / "feeds" / "blog_rss2.xml").read_bytes()), True, "a feed of 3 papers"),
        (ok(b"<!DOCTYPE html><html><body>Log in</body></html>"), False, "not an RSS or Atom"),
        (ok(b"<rss><channel><item><title>cut"), False, "malformed feed"),
        (status(500), False, "HTTP 500"),
        (status(404), False, "HTTP 404"),
        (None, False, "connection failed"),
    ],
    ids=["200-empty", "200-papers", "200-html-page", "200-cut-short", "500", "404", "closed-port"],
)
def test_a_feed_source_answers_or_not(
    write_config: Callable[..., Path],
    http_server: HttpServer,
    capsys: pytest.CaptureFixture[str],
    route: Callable[[Recorded, int], Reply] | None,
    ok_expected: bool,
    expected: str,
) -> None:
    base = http_server.url if route else f"http://127.0.0.1:{free_port()}"
    if route:
        http_server.routes["/feed.xml"] = route
    config = write_config(
        sources={"feeds": [{"name": "journal", "url": f"{base}/feed.xml", "pacing_seconds": 0}]}
    )
    code, lines = doctor(capsys, config)
    feed = line(lines, "source journal")
    assert feed.startswith("✓ " if ok_expected else "✗ ") and expected in feed
    assert code == (0 if ok_expected else 1)
    if route:
        assert len(http_server.hits("/feed.xml")) == 1  # one request, no retries (attempts = 1)


def test_every_network_source_gets_one_light_request(
    write_config: Callable[..., Path],
    http_server: HttpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bodies = {
        "/rss/cs.LG": (DATA / "arxiv" / "listing_cs.xml").read_bytes(),
        "/api/query": (DATA / "arxiv" / "api_page1.xml").read_bytes(),
        "/api/daily_papers": (DATA / "hf" / "daily_2024-01-04.json").read_bytes(),
    }
    for path, body in bodies.items():
        http_server.routes[path] = ok(body)
    config = write_config(
        sources={
            "arxiv": {
                "categories": ["cs.LG"],
                "listing_url": f"{http_server.url}/rss/",
                "api_url": f"{http_server.url}/api/query",
                "pacing_seconds": 0,
            },
            "hf_daily": {"base_url": http_server.url, "pacing_seconds": 0},
        },
        profiles=[{"name": "me", "email": "me@example.org", "authors": ["Jane Doe"]}],
    )
    code, lines = doctor(capsys, config)
    assert code == 0, lines
    for name, read in (
        ("arxiv", "an arXiv listing of 5 papers"),
        ("arxiv-authors", "an arXiv API page of 2 papers"),
        ("hf_daily", "a Daily Papers page of 3 papers"),
    ):
        assert line(lines, f"source {name}").startswith("✓ ")
        assert f"answered HTTP 200 with {read}" in line(lines, f"source {name}")
    assert [r.path for r in http_server.requests] == [
        "/rss/cs.LG",
        "/api/query",
        "/api/daily_papers",
    ]
    query = parse_qs(http_server.hits("/api/query")[0].query)
    assert query["search_query"] == ['au:"Jane Doe"'] and query["max_results"] == ["1"]
    assert http_server.hits("/api/daily_papers")[0].query == "limit=1"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        pytest.param(
            "/atom/cs.LG",
            (DATA / "arxiv" / "listing_cs_atom.xml").read_bytes(),
            "answered HTTP 200 with an arXiv listing of 5 papers",
            id="atom-listing",
        ),
        pytest.param("/rss/cs.LG", b"<html><body>moved</body></html>", "HTML page", id="html"),
        pytest.param("/rss/cs.LG", b"<rss><channel><item>", "cut short", id="cut"),
        pytest.param(
            "/rss/cs.LG",
            b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
            "not an RSS 2.0 or Atom feed (root element <RDF>)",
            id="rdf",
        ),
    ],
)
def test_the_listing_answer_is_parsed_with_the_listing_parser(
    write_config: Callable[..., Path],
    http_server: HttpServer,
    capsys: pytest.CaptureFixture[str],
    path: str,
    body: bytes,
    expected: str,
) -> None:
    http_server.routes[path] = ok(body)
    base = path.rsplit("/", 1)[0] + "/"
    config = write_config(
        sources={
            "arxiv": {
                "categories": ["cs.LG"],
                "listing_url": f"{http_server.url}{base}",
                "follow_authors": False,
                "pacing_seconds": 0,
            }
        }
    )
    code, lines = doctor(capsys, config)
    listing = line(lines, "source arxiv")
    assert expected in listing
    assert code == (0 if listing.startswith("✓ ") else 1)
    if listing.startswith("✗ "):
        assert "answered HTTP 200" in listing and "check the URL" in listing


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no files match"),
        (b'{"title": "x"\n', "listings.jsonl:1"),
    ],
    ids=["missing", "bad-json"],
)
def test_files_sources_must_exist_and_parse(
    write_config: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    expected: str,
) -> None:
    listing = tmp_path / "in" / "listings.jsonl"
    if content is not None:
        listing.parent.mkdir()
        listing.write_bytes(content)
    config = write_config(sources={"files": [{"name": "mine", "path": str(listing)}]})
    code, lines = doctor(capsys, config)
    assert code == 1 and expected in line(lines, "source mine")


def test_maildir_delivery_checks_the_maildir_not_smtp(
    write_config: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = doctor(capsys, write_config())
    assert code == 0 and "does not exist yet" in line(lines, "maildir")
    assert not any(x[2:].startswith("smtp") for x in lines)

    (tmp_path / "mail").write_text("a file, not a directory")
    code, lines = doctor(capsys, write_config())
    assert code == 1 and "is not a directory" in line(lines, "maildir")


def _database(path: Path, version: int | None = None) -> None:
    Store.open(path).close()
    if version is not None:
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA user_version = {version}")
        conn.close()


@pytest.mark.parametrize(
    ("make", "ok_expected", "expected"),
    [
        (lambda p: None, True, "does not exist yet"),
        (lambda p: _database(p), True, f"integrity ok, schema {SCHEMA_VERSION}"),
        (lambda p: _database(p, 1), True, f"schema 1, upgraded to {SCHEMA_VERSION} on next use"),
        (lambda p: _database(p, 99), False, "schema 99 is newer than this digest knows"),
        (lambda p: p.write_bytes(b"this is not a database" * 100), False, "not a database"),
    ],
    ids=["missing", "current", "older", "newer", "corrupt"],
)
def test_database(
    write_config: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], object],
    ok_expected: bool,
    expected: str,
) -> None:
    db = tmp_path / "other.sqlite"
    make(db)
    code, lines = doctor(capsys, write_config(), "--db", str(db))
    database = line(lines, "database")
    assert database.startswith("✓ " if ok_expected else "✗ ") and expected in database
    assert code == (0 if ok_expected else 1)


def test_the_database_is_opened_through_the_apps_read_only_path(
    write_config: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "other.sqlite"
    _database(db)
    opened: list[dict[str, Any]] = []
    real_open = Store.open

    def recording_open(cls: type[Store], /, path: Any, **options: Any) -> Store:
        opened.append({"path": Path(path), **options})
        return real_open(path, **options)

    monkeypatch.setattr(Store, "open", classmethod(recording_open))
    code, lines = doctor(capsys, write_config(), "--db", str(db))
    assert code == 0 and line(lines, "database").startswith("✓ ")
    assert {"path": db, "read_only": True, "any_schema": True} in opened


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"name": "me", "keywords": ["x"]}, "no email address"),
        ({"name": "me", "email": "me@example.org"}, "digest profile add-keyword me TERM"),
    ],
)
def test_a_profile_that_cannot_be_sent_or_match(
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    profile: dict[str, Any],
    expected: str,
) -> None:
    code, lines = doctor(capsys, write_config(profiles=[profile]))
    assert code == 1 and expected in line(lines, "profile me")


def test_a_profile_shows_its_next_send_in_its_own_time_zone(
    write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    profile = {
        "name": "me",
        "email": "me@example.org",
        "keywords": ["x"],
        "send_at": "06:15",
        "timezone": "Asia/Tokyo",
        "days": ["sat"],
        "cadence": "weekly",
    }
    code, lines = doctor(capsys, write_config(profiles=[profile]))
    assert code == 0
    assert "sends at 06:15 Asia/Tokyo (weekly), next Sat " in line(lines, "profile me")
    assert line(lines, "profile me").endswith("06:15")


@pytest.mark.parametrize(
    ("text", "expected", "fix"),
    [
        (None, "config file not found", "digest init"),
        ("[smtp\n", "TOML syntax error", "fix the file"),
        ('[[profiles]]\nname = "me"\ntimezone = "Mars"\n', "unknown time zone 'Mars'", "fix"),
    ],
)
def test_a_bad_config_is_the_only_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, expected: str, fix: str
) -> None:
    config = tmp_path / "config.toml"
    if text is not None:
        config.write_text(text)
    code, lines = doctor(capsys, config)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"✗ config: {config}: ") and expected in lines[0]
    assert fix in lines[0].partition(" — ")[2]


@pytest.mark.parametrize(
    ("key", "fake", "ok_expected", "expected"),
    [
        pytest.param("good-k3y", {}, True, "API key accepted; 99000 of 100000 left today", id="ok"),
        pytest.param(
            "bad-k3y", {"refuse_key": "bad-k3y"}, False, "the API key was refused", id="refused"
        ),
        pytest.param("good-k3y", {"remaining": 0}, False, "allowance is used up", id="spent"),
        pytest.param("", {}, False, "no API key", id="no-key"),
    ],
)
def test_openalex_key_and_budget(
    write_config: Callable[..., Path],
    http_server: HttpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    fake: dict[str, Any],
    ok_expected: bool,
    expected: str,
) -> None:
    from .openalex_server import FakeOpenAlex

    FakeOpenAlex(**fake).install(http_server)
    if key:
        monkeypatch.setenv("DIGEST_SOURCES__OPENALEX__API_KEY", key)
    config = write_config(
        sources={"openalex": {"base_url": http_server.url, "daily_budget": 500}},
        fetch={"contact": "me@example.org"},
    )
    code, lines = doctor(capsys, config)
    found = line(lines, "source openalex")
    assert found.startswith("✓ " if ok_expected else "✗ ") and expected in found
    assert "daily_budget 500" in found or "refused" in found
    if key:
        assert key not in "\n".join(lines)
    [asked] = http_server.hits("/works/W2741809807")  # one free singleton request
    query = parse_qs(asked.query)
    assert query.get("api_key", [""]) == [key] if key else query["mailto"] == ["me@example.org"]
    assert code == (0 if ok_expected else 1)
