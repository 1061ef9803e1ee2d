"""The OpenAlex source: parsing works (inverted-index abstracts, URL ids, arXiv DOIs and
landing pages, truncated author lists, missing ORCIDs), and fetching from a real HTTP server on
127.0.0.1 (cursor paging, XPAC, 429 with Retry-After, the daily budget, the key kept secret)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from digest.errors import SourceError
from digest.http import HostPolicy, PoliteClient
from digest.models import FollowedAuthor, Paper, Profile
from digest.settings import OpenAlexConfig
from digest.sources import FetchContext
from digest.sources.openalex import OpenAlexSource, parse_works, rebuild_abstract
from digest.store import Store

from .conftest import HttpServer
from .openalex_server import WORKS, FakeOpenAlex

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
FOLLOWED = FollowedAuthor("Wei Chen", openalex="A5023888391")
READER = Profile("me", authors=(FOLLOWED,), cites=("arxiv:2402.17193",))


def page(*works: dict[str, Any], cursor: str | None = None) -> bytes:
    return json.dumps(
        {"meta": {"count": len(works), "next_cursor": cursor}, "results": works}
    ).encode()


@pytest.mark.parametrize(
    ("index", "text"),
    [
        pytest.param({"b": [1], "a": [0], "c": [2]}, "a b c", id="in-order"),
        pytest.param({"the": [0, 2], "cat": [1], "mat": [3]}, "the cat the mat", id="word-twice"),
        pytest.param({"first": [0], "second": [0], "x": [1]}, "first x", id="position-twice"),
        pytest.param({"a": [0], "c": [5]}, "a c", id="gap"),
        pytest.param(None, "", id="null"),
        pytest.param({"a": ["0"], "b": [1], "c": None}, "b", id="odd-positions"),
    ],
)
def test_an_abstract_is_rebuilt_from_its_inverted_index(index: Any, text: str) -> None:
    assert rebuild_abstract(index) == text


def test_a_preprint_is_known_by_its_arxiv_id_and_its_authors_by_their_ids() -> None:
    [paper] = parse_works(page(WORKS[0])).papers
    assert paper.key == "arxiv:2411.00001" and paper.arxiv_id == "2411.00001"
    assert paper.doi == ""  # arXiv's DataCite DOI names the arXiv id, nothing more
    assert paper.authors == ("Wei Chen", "Ann Lee")
    assert paper.author_ids == ("A5023888391", "A5011111111")
    assert paper.author_orcids == ("", "0000-0002-1825-0097")  # a missing ORCID is ""
    assert paper.referenced == ("W4392000009",)
    assert paper.abstract == "We study graph transformers on large graph data."
    assert paper.extra_value("openalex_id") == "W4404000001"
    assert paper.source == "openalex" and paper.url == "https://arxiv.org/abs/2411.00001"


def test_a_journal_version_names_its_arxiv_id_from_a_landing_page() -> None:
    [paper] = parse_works(page(WORKS[6])).papers
    assert paper.identity_keys[:2] == ("arxiv:2401.01234", "doi:10.5555/quantspec.2024")
    assert paper.url == "https://proceedings.example.org/quantspec"


def test_truncated_authors_null_abstract_and_id_less_author() -> None:
    [paper] = parse_works(page(WORKS[2])).papers
    assert paper.authors_truncated and paper.abstract == ""
    assert paper.authors == ("Maria García", "J. Smith")
    assert paper.author_ids == ("A5022222222", "")
    assert paper.key == "doi:10.5555/citing.2026.3"


def test_a_work_without_a_title_is_skipped_and_counted() -> None:
    parsed = parse_works(page(WORKS[5], cursor="abc"))
    assert parsed.papers == () and parsed.skipped == 1 and parsed.next_cursor == "abc"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"[]", "expected an object with a 'results' list", id="array"),
        pytest.param(b'{"results": [1]}', "result 1: expected an object", id="not-object"),
        pytest.param(b'{"results": [{"display_name": "x"}]}', "without an OpenAlex id", id="no-id"),
        pytest.param(
            b'{"results": [{"id": "W1", "display_name": "x", "publication_date": "soon"}]}',
            "not an ISO date",
            id="bad-date",
        ),
        pytest.param(b"{", "not JSON", id="truncated"),
    ],
)
def test_a_malformed_page_fails_whole(data: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        parse_works(data, origin="openalex")


def config(server: HttpServer, **values: Any) -> OpenAlexConfig:
    return OpenAlexConfig(**{"base_url": server.url, "per_page": 1, "pacing_seconds": 0, **values})


def client() -> PoliteClient:
    return PoliteClient(attempts=3, backoff=0.01, default_interval=0, deadline=10)


def fetch(source: OpenAlexSource) -> Any:
    with client() as http:
        return source.fetch(FetchContext(now=NOW, client=http))


def test_followed_ids_and_citing_works_arrive_paged_with_xpac(http_server: HttpServer) -> None:
    fake = FakeOpenAlex().install(http_server)
    store = Store.open(None)
    source = OpenAlexSource(config(http_server), [READER], store, contact="me@example.org")
    result = fetch(source)
    keys = {p.key for p in result.papers}
    # The followed Wei Chen's recent preprint (XPAC), and the journal paper citing the watched
    # one; not his 2019 paper (before the lookback), not the untitled work, not the namesake.
    assert keys == {"arxiv:2411.00001", "doi:10.5555/citing.2026.3"}
    assert result.warnings == ()
    works = [parse_qs(r.query) for r in http_server.hits("/works")]
    assert all(q["include_xpac"] == ["true"] and q["mailto"] == ["me@example.org"] for q in works)
    assert any(q["cursor"] != ["*"] for q in works)  # per_page 1: the cursor was followed
    filters = [q["filter"][0] for q in works]
    assert "doi:10.48550/arxiv.2402.17193" in filters  # the watched paper, resolved ...
    assert "cites:W4392000009,from_publication_date:2026-11-08" in filters
    assert store.resolved_works(["arxiv:2402.17193"]) == {
        "arxiv:2402.17193": {"W4392000009": "The Watched Paper"}
    }
    assert store.openalex_usage(NOW.date()) == len(works)
    assert fake.seen_keys and not any(fake.seen_keys)
    fetch(source)  # ... once: the next fetch does not ask again
    again = [parse_qs(r.query)["filter"][0] for r in http_server.hits("/works")[len(works) :]]
    assert "doi:10.48550/arxiv.2402.17193" not in again


def test_a_429_is_waited_out_as_retry_after_says(http_server: HttpServer) -> None:
    FakeOpenAlex(throttle_first=1).install(http_server)
    slept: list[float] = []
    source = OpenAlexSource(config(http_server), [Profile("me", authors=(FOLLOWED,))])
    with PoliteClient(attempts=3, backoff=0.01, default_interval=0, sleep=slept.append) as http:
        result = source.fetch(FetchContext(now=NOW, client=http))
    assert {p.key for p in result.papers} == {"arxiv:2411.00001"}
    assert 1.0 in slept  # Retry-After: 1


def test_the_daily_budget_stops_the_fetch_and_says_so(http_server: HttpServer) -> None:
    FakeOpenAlex().install(http_server)
    store = Store.open(None)
    store.add_openalex_usage(NOW.date(), 2)  # spent earlier today
    source = OpenAlexSource(config(http_server, daily_budget=3), [READER], store)
    result = fetch(source)
    assert len(http_server.hits("/works")) == 1
    assert any("daily budget of 3 OpenAlex requests is used up" in w for w in result.warnings)
    assert store.openalex_usage(NOW.date()) == 3
    tomorrow = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    with client() as http:
        later = source.fetch(FetchContext(now=tomorrow, client=http))
    assert len(later.papers) >= 1  # a new day, a new budget


def test_the_server_saying_nothing_remains_stops_the_fetch(http_server: HttpServer) -> None:
    FakeOpenAlex(remaining=0).install(http_server)
    source = OpenAlexSource(config(http_server), [READER])
    result = fetch(source)
    assert len(http_server.hits("/works")) == 1
    assert any("allowance is used up" in w for w in result.warnings)


def test_the_api_key_is_sent_and_never_shown(http_server: HttpServer) -> None:
    secret = "k3y-very-secret"
    fake = FakeOpenAlex(refuse_key=secret).install(http_server)
    source = OpenAlexSource(config(http_server, api_key=secret), [READER])
    with pytest.raises(SourceError) as caught:
        fetch(source)
    assert secret in fake.seen_keys
    assert secret not in str(caught.value) and "HTTP 401" in str(caught.value)
    assert secret not in repr(config(http_server, api_key=secret))


def test_max_pages_stops_paging_with_a_warning(http_server: HttpServer) -> None:
    FakeOpenAlex().install(http_server)
    profile = Profile("me", authors=(FOLLOWED,))
    source = OpenAlexSource(config(http_server, max_pages=1), [profile])
    result = fetch(source)
    assert len(result.papers) == 1
    assert any("stopped after 1 pages" in w for w in result.warnings)


def test_lookup_finds_stored_papers_by_their_arxiv_doi(http_server: HttpServer) -> None:
    FakeOpenAlex().install(http_server)
    from digest.models import Paper

    asked = [
        Paper("arxiv:2411.00002", "Protein Folding", arxiv_id="2411.00002"),
        Paper("arxiv:2499.00009", "Not in OpenAlex", arxiv_id="2499.00009"),
    ]
    source = OpenAlexSource(config(http_server, per_page=50), [READER])
    with client() as http:
        found, warnings = source.lookup(FetchContext(now=NOW, client=http), asked)
    assert [p.key for p in found] == ["arxiv:2411.00002"] and warnings == []
    assert found[0].author_ids == ("A5099999999",)
    [query] = [parse_qs(r.query) for r in http_server.hits("/works")]
    assert query["filter"] == ["doi:10.48550/arxiv.2411.00002|10.48550/arxiv.2499.00009"]


def test_days_are_utc_dates() -> None:
    assert NOW.date() == date(2026, 11, 22)


def test_author_search_lists_candidates_as_a_table(
    http_server: HttpServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from digest.cli import main

    FakeOpenAlex().install(http_server)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[fetch]\ncontact = "me@example.org"\n[sources.openalex]\nbase_url = "{http_server.url}"\n'
        'pacing_seconds = 0\n[[profiles]]\nname = "me"\n'
    )
    try:
        main(["--config", str(config), "author", "search", "Wei Chen"])
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "A50" in line]
    assert len(rows) == 2
    assert "A5023888391" in rows[0] and "Stanford University" in rows[0] and "142" in rows[0]
    assert "Graph Neural" in out and "Extra Topic" not in out  # the top three topics
    assert "Graph Transformers" in out  # a recent title
    assert "0000-0001-5109-3700" in rows[1] and "Protein Folding" in rows[1]
    [search] = [parse_qs(r.query) for r in http_server.hits("/authors")]
    assert search["search"] == ["Wei Chen"] and search["mailto"] == ["me@example.org"]


def test_the_api_key_stays_out_of_the_logs_even_at_debug(
    http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    secret = "k3y-never-logged"
    FakeOpenAlex(throttle_first=1).install(http_server)
    source = OpenAlexSource(config(http_server, api_key=secret), [READER])
    with (
        caplog.at_level(logging.DEBUG),
        PoliteClient(attempts=3, backoff=0.01, default_interval=0, sleep=lambda _: None) as http,
    ):
        source.fetch(FetchContext(now=NOW, client=http))
    assert "api_key" in caplog.text  # httpx logged the requests ...
    assert secret not in caplog.text  # ... without the key


# What a hostile or broken server may put in a name: terminal escapes (colour, a hyperlink, a
# title change, CSI as one C1 byte), bidi overrides and isolates, and rich's own markup.
HOSTILE = (
    "\x1b[31mRed\x1b[0m \x1b]8;;https://evil.example\x1b\\Link\x1b]8;;\x1b\\ "
    "\x1b]0;owned\x07\x9b2J \u202eesrever\u202c \u2066iso\u2069 [bold]markup[/bold]"
)
ESCAPES = ("\x1b", "\x07", "\x9b", "\u202e", "\u202c", "\u2066", "\u2069")


def _hostile_authors(count: int, long_name_chars: int = 0) -> bytes:
    def author(i: int) -> dict[str, Any]:
        return {
            "id": f"https://openalex.org/A{5000000000 + i}",
            "display_name": "X" * long_name_chars if i == 1 and long_name_chars else HOSTILE,
            "works_count": i,
            "last_known_institutions": [{"display_name": "Inst \x1b[5mblink\x1b[0m" * 3}],
            "topics": [{"display_name": "Topic\u202e" + "T" * (5000 if i < 3 else 5)}],
        }

    results = [author(i) for i in range(count)]
    return json.dumps({"meta": {"count": count}, "results": results}).encode()


def _search(http_server: HttpServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> str:
    from digest.cli import main

    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.openalex]\nbase_url = "{http_server.url}"\npacing_seconds = 0\n'
        '[[profiles]]\nname = "me"\n'
    )
    try:
        main(["--config", str(config), "author", "search", "Wei Chen", "--limit", "10"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    return capsys.readouterr().out


def test_author_search_prints_no_escapes_from_the_server(
    http_server: HttpServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeOpenAlex().install(http_server)
    works = [{**WORKS[0], "title": "A \x1b[2Jtitle\u202e", "authorships": []}]
    http_server.routes["/authors"] = lambda _r, _c: (200, {}, _hostile_authors(3))
    http_server.routes["/works"] = lambda _r, _c: (
        200,
        {},
        json.dumps({"meta": {"count": 1, "next_cursor": None}, "results": works}).encode(),
    )
    out = _search(http_server, tmp_path, capsys)
    assert not [c for c in ESCAPES if c in out], [hex(ord(c)) for c in ESCAPES if c in out]
    assert "[bold]" in out  # shown as written, not taken for rich's markup
    assert "Red" in out and "esrever" in out


def test_author_search_takes_at_most_the_page_asked_and_cuts_long_names(
    http_server: HttpServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeOpenAlex().install(http_server)
    http_server.routes["/authors"] = lambda _r, _c: (
        200,
        {},
        _hostile_authors(10_000, long_name_chars=1_000_000),
    )
    out = _search(http_server, tmp_path, capsys)  # 10,000 ids once made the URL too long
    rows = [line for line in out.splitlines() if "A50000" in line]
    assert len(rows) == 10, len(rows)
    assert len(out.encode()) < 40_000, len(out.encode())
    [works] = [parse_qs(r.query) for r in http_server.hits("/works")]
    assert len(works["filter"][0].split("|")) == 10


def test_a_search_url_too_long_is_one_line_not_a_traceback(
    http_server: HttpServer, tmp_path: Any
) -> None:
    import subprocess
    import sys

    FakeOpenAlex().install(http_server)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sources.openalex]\nbase_url = "{http_server.url}"\npacing_seconds = 0\n'
        '[[profiles]]\nname = "me"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "author", "search", "W" * 70_000],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1 and len(result.stderr) < 600


# --- the source's budgets: a repeated cursor, and one deadline for the whole source ------------


def test_a_repeated_cursor_stops_paging_and_keeps_what_was_read(http_server: HttpServer) -> None:
    work = WORKS[0]  # the followed Wei Chen's recent preprint

    def same_cursor(request: Any, count: int) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, page(work, cursor="SAME")

    http_server.routes["/works"] = same_cursor
    store = Store.open(None)
    profile = Profile("me", authors=(FOLLOWED,))
    source = OpenAlexSource(config(http_server, max_pages=1000), [profile], store)
    result = fetch(source)
    requests = len(http_server.hits("/works"))
    print(f"requests with a repeated cursor and max_pages = 1000: {requests}")
    assert requests == 2  # `*`, then SAME, which named SAME again
    assert [p.title for p in result.papers] == [work["display_name"]]
    assert any("repeated the cursor" in w and "after 2 pages" in w for w in result.warnings)
    assert store.openalex_usage(NOW.date()) == 2


class FakeClock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_429s_are_waited_out_only_within_the_source_deadline(http_server: HttpServer) -> None:
    def throttled(request: Any, count: int) -> tuple[int, dict[str, str], bytes]:
        return 429, {"Retry-After": "300"}, b'{"error": "Rate limit"}'

    http_server.routes["/works"] = throttled
    clock = FakeClock()
    source = OpenAlexSource(config(http_server, deadline_seconds=600), [READER])
    with PoliteClient(
        attempts=4, default_interval=0, sleep=clock.sleep, monotonic=clock.monotonic
    ) as http:
        result = source.fetch(FetchContext(now=NOW, client=http))
    held = clock.now - 1000.0
    print(f"held by 429s: {held:g} s (slept {clock.slept})")
    assert held <= 600
    assert result.papers == ()
    assert any("[sources.openalex] deadline_seconds" in w for w in result.warnings)


def test_the_deadline_stops_the_source_between_queries_and_keeps_what_was_read(
    http_server: HttpServer,
) -> None:
    FakeOpenAlex().install(http_server)
    clock = FakeClock()
    source = OpenAlexSource(config(http_server, deadline_seconds=250), [READER])
    policy = {http_server.url: HostPolicy("openalex", 100)}
    with PoliteClient(
        attempts=1, policies=policy, sleep=clock.sleep, monotonic=clock.monotonic
    ) as http:
        result = source.fetch(FetchContext(now=NOW, client=http))
    assert len(http_server.hits("/works")) == 3  # at 0, 100 and 200 s; the next would be 300
    assert clock.now - 1000.0 <= 250
    assert any("deadline_seconds" in w for w in result.warnings)


def test_the_fetch_and_its_lookups_share_one_deadline(http_server: HttpServer) -> None:
    FakeOpenAlex().install(http_server)
    clock = FakeClock()
    source = OpenAlexSource(config(http_server, deadline_seconds=250), [READER])
    with PoliteClient(attempts=1, sleep=clock.sleep, monotonic=clock.monotonic) as http:
        context = FetchContext(now=NOW, client=http)
        assert source.session(context) is source.session(context)
        source.fetch(context)
        clock.sleep(300)  # the deadline passed during the fetch's own work
        found, warnings = source.lookup(
            context, [Paper("arxiv:2411.00002", "P", arxiv_id="2411.00002")]
        )
    assert found == [] and any("deadline_seconds" in w for w in warnings)
