"""End to end: every network source against a real HTTP server on 127.0.0.1 serving the
fixtures, with injected 429 (Retry-After), 503 and a stalled response."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from digest.app import build_app, fetch
from digest.settings import Settings
from digest.sources import FetchContext, FetchResult
from digest.sources.arxiv import parse_api_feed, parse_listing_feed
from digest.sources.feeds import parse_feed
from digest.sources.hf_daily import parse_daily_papers
from digest.store import Store
from tests.children import child_env

from .conftest import DATA, PROFILE, Clock, HttpServer, Recorded

PACING = 0.3
NOW = datetime(2024, 1, 4, 12, 0, tzinfo=UTC)


def body(path: Path, etag: str = "") -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/xml"}
    if etag:
        headers["ETag"] = etag
    return 200, headers, path.read_bytes()


def serve_fixtures(server: HttpServer) -> None:
    """Routes with one injected fault each, on the first request."""

    def listing(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes]:
        if count == 1:
            return 429, {"Retry-After": "1"}, b"slow down"
        if request.headers.get("If-None-Match") == '"listing-1"':
            return 304, {"ETag": '"listing-1"'}, b""
        return body(DATA / "arxiv" / "listing_cs.xml", '"listing-1"')

    def api(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes]:
        if count == 1:
            return 503, {}, b"busy"
        start = parse_qs(request.query).get("start", ["0"])[0]
        return body(DATA / "arxiv" / ("api_page1.xml" if start == "0" else "api_page2.xml"))

    def daily(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes] | None:
        if count == 1:
            return None  # stalled: the client times out and tries again
        return (
            200,
            {"Content-Type": "application/json"},
            (DATA / "hf" / "daily_2024-01-04.json").read_bytes(),
        )

    def journal(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes]:
        if request.headers.get("If-None-Match") == '"journal-1"':
            return 304, {}, b""
        return body(DATA / "feeds" / "journal_atom.xml", '"journal-1"')

    server.stall_seconds = 1.5
    server.routes.update(
        {
            "/rss/cs.LG+cs.CL": listing,
            "/api/query": api,
            "/api/daily_papers": daily,
            "/journal.xml": journal,
        }
    )


def arxiv_config(server: HttpServer, **values: Any) -> dict[str, Any]:
    """`[sources.arxiv]` pointing at the local server, for categories cs.LG and cs.CL."""
    return {
        "categories": ["cs.LG", "cs.CL"],
        "listing_url": f"{server.url}/rss/",
        "api_url": f"{server.url}/api/query",
        **values,
    }


def settings_for(server: HttpServer, make_settings: Callable[..., Settings]) -> Settings:
    followed = [a["name"] if isinstance(a, dict) else a for a in expected_api_authors()[:1]]
    return make_settings(
        http={"read_timeout": 0.5, "connect_timeout": 2, "attempts": 3, "backoff_seconds": 0.05},
        sources={
            "arxiv": arxiv_config(server, pacing_seconds=PACING, max_results=2, author_days=365),
            "hf_daily": {"base_url": server.url, "pacing_seconds": 0.05},
            "feeds": [{"name": "journal", "url": f"{server.url}/journal.xml", "pacing_seconds": 0}],
        },
        profiles=[{**PROFILE, "authors": followed}],
    )


def expected_api_authors() -> list[Any]:
    page = parse_api_feed((DATA / "arxiv" / "api_page1.xml").read_bytes())
    return [page.papers[0].authors[0]]


def expected_keys() -> set[str]:
    """Every paper the fixtures hold, by identity: what the store must hold once each."""
    papers = [
        item.paper
        for item in parse_listing_feed((DATA / "arxiv" / "listing_cs.xml").read_bytes())
        if item.announce in ("new", "cross")
    ]
    for name in ("api_page1.xml", "api_page2.xml"):
        papers += parse_api_feed((DATA / "arxiv" / name).read_bytes()).papers
    papers += parse_daily_papers((DATA / "hf" / "daily_2024-01-04.json").read_bytes())
    papers += parse_feed((DATA / "feeds" / "journal_atom.xml").read_bytes(), "j", "journal")
    return {p.identity_keys[0] for p in papers}


def test_fetch_all_sources_politely_and_resiliently(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    serve_fixtures(http_server)
    clock = Clock(NOW)
    app = build_app(settings_for(http_server, make_settings), store=Store.open(None), clock=clock)

    reports = {r.source: r for r in fetch(app)}

    assert {name: r.error for name, r in reports.items()} == {
        "arxiv": "",
        "arxiv-authors": "",
        "hf_daily": "",
        "journal": "",
    }
    # Retries happened: 429 then 200; 503 then 200; a stall then 200.
    assert len(http_server.hits("/rss/cs.LG+cs.CL")) == 2
    assert len(http_server.hits("/api/daily_papers")) == 2
    assert len(http_server.hits("/api/query")) >= 3
    # arXiv requests (feed and API together) were at least PACING apart, by the server's clock.
    arxiv = sorted(r.at for r in http_server.requests if r.path.startswith(("/rss", "/api/query")))
    gaps = [b - a for a, b in pairwise(arxiv)]
    assert min(gaps) >= PACING - 0.02, gaps
    assert gaps[0] >= 1.0  # the 429 asked for one second
    # Every request named the project.
    assert all(r.headers["User-Agent"].startswith("digest/") for r in http_server.requests)
    # Each paper stored once, merged across sources.
    assert app.store.count_papers() == len(expected_keys())

    # A second fetch asks whether the feeds changed and stores nothing new.
    clock.now += timedelta(hours=1)
    again = {r.source: r for r in fetch(app)}
    assert http_server.hits("/rss/cs.LG+cs.CL")[-1].headers["If-None-Match"] == '"listing-1"'
    assert http_server.hits("/journal.xml")[-1].headers["If-None-Match"] == '"journal-1"'
    assert all(r.counts.new == 0 for r in again.values()), again
    assert again["arxiv"].fetched == 0 and again["journal"].fetched == 0


def test_a_malformed_payload_fails_its_source_only(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    http_server.routes["/rss/cs.LG+cs.CL"] = lambda r, n: (200, {}, b"<rss><channel><item>")
    http_server.routes["/journal.xml"] = lambda r, n: body(DATA / "feeds" / "journal_atom.xml")
    settings = make_settings(
        sources={
            "arxiv": arxiv_config(http_server, pacing_seconds=0, follow_authors=False),
            "feeds": [{"name": "journal", "url": f"{http_server.url}/journal.xml"}],
        }
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    reports = {r.source: r for r in fetch(app)}
    assert reports["arxiv"].error and not reports["journal"].error
    assert reports["journal"].counts.new > 0
    [failing] = app.store.failing_sources()
    assert failing.name == "arxiv" and failing.failing_since == NOW
    assert app.store.validators("arxiv") == {}


def test_digest_fetch_prints_a_table_and_records_failures(
    http_server: HttpServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    http_server.routes["/journal.xml"] = lambda r, n: body(DATA / "feeds" / "journal_atom.xml")
    http_server.routes["/broken.xml"] = lambda r, n: (200, {}, b"<rss><channel><item>")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
path = "d.sqlite"
[[sources.feeds]]
name = "journal"
url = "{http_server.url}/journal.xml"
[[sources.feeds]]
name = "broken"
url = "{http_server.url}/broken.xml"
""",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "fetch"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({"COLUMNS": "200", "PATH": ""}),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        "source" in ln and "requests" in ln and "new" in ln and "errors" in ln for ln in lines
    )
    [journal] = [ln for ln in lines if "journal" in ln]
    cells = [cell.strip() for cell in journal.split("│")[1:-1]]
    assert cells[:6] == ["journal", "1", "2", "2", "0", ""]  # source, requests, fetched, new, …
    [broken] = [ln for ln in lines if "broken" in ln]
    assert "malformed feed" in broken
    store = Store.open(tmp_path / "d.sqlite")
    assert [s.name for s in store.failing_sources()] == ["broken"]
    assert store.count_papers() == 2
    store.close()


def test_backfill_queries_the_api_by_submission_date(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    from datetime import date

    http_server.routes["/api/query"] = lambda r, n: body(DATA / "arxiv" / "api_empty.xml")
    settings = make_settings(
        sources={"arxiv": arxiv_config(http_server, pacing_seconds=0, follow_authors=False)}
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    [report] = fetch(app, "arxiv", since=date(2024, 1, 1))
    assert report.error == ""
    [request] = http_server.hits("/api/query")
    query = parse_qs(request.query)["search_query"][0]
    assert query == "(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202401010000 TO 202401042359]"
    assert http_server.hits("/rss/cs.LG+cs.CL") == []


HUGE_NUMBER = b"9" * 5000
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
HOSTILE_JSON = [
    pytest.param(
        b'[{"paper": {"id": "2401.00001", "title": "T", "upvotes": ' + HUGE_NUMBER + b"}}]",
        "JSON holds a number of more than 4300 digits",
        id="5000-digit-integer",
    ),
    pytest.param(DEEP_ARRAY, "JSON nested too deeply", id="array-100000-deep"),
    pytest.param(
        b'[{"paper": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}]",
        "JSON nested too deeply",
        id="object-100000-deep",
    ),
]


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text


@pytest.mark.parametrize(("payload", "problem"), HOSTILE_JSON)
def test_a_hostile_hugging_face_reply_fails_that_source_only(
    http_server: HttpServer, make_settings: Callable[..., Settings], payload: bytes, problem: str
) -> None:
    http_server.routes["/api/daily_papers"] = lambda r, n: (200, {}, payload)
    http_server.routes["/journal.xml"] = lambda r, n: body(DATA / "feeds" / "journal_atom.xml")
    settings = make_settings(
        sources={
            "hf_daily": {"base_url": http_server.url, "pacing_seconds": 0},
            "feeds": [{"name": "journal", "url": f"{http_server.url}/journal.xml"}],
        }
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    reports = {r.source: r for r in fetch(app)}
    assert one_line(reports["hf_daily"].error) and problem in reports["hf_daily"].error
    assert f"{http_server.url}/api/daily_papers" in reports["hf_daily"].error
    assert reports["journal"].error == "" and reports["journal"].counts.new == 2
    assert app.store.count_papers() == 2
    assert [s.name for s in app.store.failing_sources()] == ["hf_daily"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param(
            b'{"title": "T", "extra": {"n": ' + HUGE_NUMBER + b"}}",
            "JSON holds a number of more than 4300 digits",
            id="5000-digit-integer",
        ),
        pytest.param(
            b'{"title": "T", "extra": ' + DEEP_ARRAY + b"}", "JSON nested too deeply", id="deep"
        ),
    ],
)
def test_a_hostile_listing_file_fails_that_source_only(
    tmp_path: Path, make_settings: Callable[..., Settings], line: bytes, problem: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"title": "Would be stored"}\n' + line + b"\n")
    settings = make_settings(
        sources={
            "files": [
                {"name": "bad", "path": str(bad)},
                {"name": "good", "path": str(DATA / "listings.jsonl")},
            ]
        }
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    bad_report, good_report = fetch(app)
    assert one_line(bad_report.error) and f"{bad}:2: {problem}" in bad_report.error
    assert good_report.error == "" and good_report.counts.new == 6
    assert app.store.count_papers() == 6


class BuggySource:
    """A source with a programming error in it."""

    name = "buggy"

    def fetch(self, context: FetchContext) -> FetchResult:
        pages: dict[str, bytes] = {}
        return FetchResult(papers=parse_daily_papers(pages.get("today")))  # type: ignore[arg-type]


def test_a_bug_in_one_source_fails_it_alone_and_keeps_its_traceback_for_v(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(sources={"files": [{"name": "good", "path": str(DATA / "*.jsonl")}]})
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    app.sources.insert(0, BuggySource())
    with caplog.at_level(logging.INFO, logger="digest.fetching"):
        buggy, good = fetch(app)
    assert one_line(buggy.error) and "TypeError" in buggy.error and "-v" in buggy.error
    assert good.error == "" and good.counts.new == 6
    assert [s.name for s in app.store.failing_sources()] == ["buggy"]
    [traced] = [r for r in caplog.records if r.exc_info]
    assert traced.levelno == logging.INFO and traced.exc_info is not None
    assert traced.exc_info[0] is TypeError


def test_http_limits_from_the_settings_fail_that_source_only(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    big = b"<rss><channel>" + b"<!-- padding -->" * 80_000 + b"</channel></rss>"  # ~1.2 MB
    http_server.routes["/big.xml"] = lambda r, n: (200, {}, big)
    http_server.routes["/journal.xml"] = lambda r, n: body(DATA / "feeds" / "journal_atom.xml")
    settings = make_settings(
        http={"max_response_mb": 1, "deadline_seconds": 5},
        sources={
            "feeds": [
                {"name": "big", "url": f"{http_server.url}/big.xml"},
                {"name": "journal", "url": f"{http_server.url}/journal.xml"},
            ]
        },
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    big_report, journal = fetch(app)
    assert big_report.error == (
        f"GET {http_server.url}/big.xml: the server announced 1.2 MB, more than 1 MB "
        "([http] max_response_mb)"
    )
    assert journal.error == "" and app.store.count_papers() == 2


def serve_daily_papers(server: HttpServer, total: int) -> None:
    """Hugging Face Daily Papers with `total` papers on every date, paged by `p` and `limit`."""

    def daily(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes]:
        query = parse_qs(request.query)
        page, limit = int(query["p"][0]), int(query["limit"][0])
        numbers = range(page * limit, min((page + 1) * limit, total))
        items = [{"paper": {"id": f"2401.{n:05d}", "title": f"Paper {n}"}} for n in numbers]
        return 200, {"Content-Type": "application/json"}, json.dumps(items).encode()

    server.routes["/api/daily_papers"] = daily


def test_hugging_face_is_paged_until_the_server_says_done(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    serve_daily_papers(http_server, 2_200)
    hf = {"base_url": http_server.url, "pacing_seconds": 0, "page_size": 100}
    app = build_app(
        make_settings(sources={"hf_daily": hf}), store=Store.open(None), clock=Clock(NOW)
    )
    [report] = fetch(app)
    assert (report.error, report.warnings) == ("", ())
    assert app.store.count_papers() == 2_200
    assert len(http_server.hits("/api/daily_papers")) == 23  # 22 full pages, then a short one


def test_a_listing_cut_short_by_a_limit_says_so(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    serve_daily_papers(http_server, 2_200)
    hf = {"base_url": http_server.url, "pacing_seconds": 0, "page_size": 100, "max_pages": 5}
    app = build_app(
        make_settings(sources={"hf_daily": hf}), store=Store.open(None), clock=Clock(NOW)
    )
    [report] = fetch(app)
    assert report.error == "" and app.store.count_papers() == 500
    assert report.warnings == (
        f"{http_server.url}/api/daily_papers?date=2024-01-04: stopped after 5 pages of 100 "
        "papers ([sources.hf_daily] max_pages); the rest of that day is not fetched",
    )


def test_an_arxiv_backfill_cut_short_by_the_page_limit_says_so(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    def api(request: Recorded, count: int) -> tuple[int, dict[str, str], bytes]:
        start = int(parse_qs(request.query)["start"][0])
        entries = "".join(
            f"<entry><id>http://arxiv.org/abs/2401.{n:05d}v1</id><title>Paper {n}</title>"
            "<published>2024-01-03T18:00:00Z</published></entry>"
            for n in range(start, start + 2)
        )
        opensearch = 'xmlns:os="http://a9.com/-/spec/opensearch/1.1/"'
        feed = (
            f'<feed xmlns="http://www.w3.org/2005/Atom" {opensearch}>'
            f"<os:totalResults>5000</os:totalResults><os:startIndex>{start}</os:startIndex>"
            f"<os:itemsPerPage>2</os:itemsPerPage>{entries}</feed>"
        )
        return 200, {}, feed.encode()

    http_server.routes["/api/query"] = api
    arxiv = arxiv_config(http_server, pacing_seconds=0, follow_authors=False, max_results=2)
    app = build_app(
        make_settings(sources={"arxiv": arxiv}), store=Store.open(None), clock=Clock(NOW)
    )
    [report] = fetch(app, "arxiv", since=date(2024, 1, 1))
    assert report.error == "" and app.store.count_papers() == 40
    [warning] = report.warnings
    assert warning.startswith(f"{http_server.url}/api/query ((cat:cs.LG OR cat:cs.CL) AND ")
    assert warning.endswith(": stopped after 20 pages of 2 (40 of 5000 results)")


def test_digest_fetch_shows_a_warning_in_its_table(http_server: HttpServer, tmp_path: Path) -> None:
    import subprocess
    import sys

    serve_daily_papers(http_server, 300)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
path = "d.sqlite"
[sources.hf_daily]
base_url = "{http_server.url}"
page_size = 100
max_pages = 2
pacing_seconds = 0
""",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "fetch"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({"COLUMNS": "400", "PATH": ""}),
    )
    assert result.returncode == 0, result.stderr
    [row] = [ln for ln in result.stdout.splitlines() if "hf_daily" in ln]
    assert "warning: " in row and "stopped after 2 pages of 100 papers" in row
    assert "stopped after 2 pages" in result.stderr  # the log, for cron's mail


def test_one_paper_from_the_arxiv_listing_hugging_face_and_openalex_is_stored_once(
    http_server: HttpServer, make_settings: Callable[..., Settings]
) -> None:
    """QuantSpec is in the arXiv listing, on Hugging Face and in OpenAlex as its journal version
    (a journal DOI, the arXiv id only in an arxiv.org location): one stored paper."""
    from .openalex_server import FakeOpenAlex

    serve_fixtures(http_server)
    FakeOpenAlex().install(http_server)
    tiwari = {"name": "Rishabh Tiwari", "openalex": "A5044444444"}
    settings = make_settings(
        http={"read_timeout": 0.5, "connect_timeout": 2, "attempts": 3, "backoff_seconds": 0.05},
        sources={
            "arxiv": arxiv_config(http_server, pacing_seconds=0, follow_authors=False),
            "hf_daily": {"base_url": http_server.url, "pacing_seconds": 0},
            "openalex": {"base_url": http_server.url, "pacing_seconds": 0},
        },
        profiles=[{**PROFILE, "authors": [tiwari]}],
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    reports = {r.source: r for r in fetch(app)}
    assert {name: r.error for name, r in reports.items()} == {
        "arxiv": "",
        "hf_daily": "",
        "openalex": "",
    }
    assert reports["openalex"].counts.new == 0  # nothing new: it enriched the stored paper
    stored = app.store.get_paper("arxiv:2401.01234")
    assert stored is not None
    assert app.store.get_paper("doi:10.5555/quantspec.2024") == stored
    assert set(stored.sources) == {"arxiv", "hf_daily", "openalex"}
    assert stored.author_ids == ("A5044444444", "A5055555555", "A5066666666")
    assert stored.upvotes > 0 and stored.extra_value("openalex_id") == "W4390000123"
    listing = parse_listing_feed((DATA / "arxiv" / "listing_cs.xml").read_bytes())
    hf = parse_daily_papers((DATA / "hf" / "daily_2024-01-04.json").read_bytes())
    keys = {i.paper.identity_keys[0] for i in listing if i.announce in ("new", "cross")}
    assert app.store.count_papers() == len(keys | {p.identity_keys[0] for p in hf})
