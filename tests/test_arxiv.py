"""arXiv parsers over the fixtures, and the arXiv sources over httpx.MockTransport."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import SourceError
from digest.http import PoliteClient
from digest.models import FollowedAuthor
from digest.settings import ArxivConfig
from digest.sources import FetchContext
from digest.sources.arxiv import (
    ArxivAuthorsSource,
    ArxivListingSource,
    detex,
    parse_api_feed,
    parse_listing_feed,
    split_creators,
)

from .conftest import DATA

ARXIV = DATA / "arxiv"
NOW = datetime(2024, 1, 4, 12, 0, tzinfo=UTC)


def test_listing_feed_all_four_announce_types() -> None:
    items = parse_listing_feed((ARXIV / "listing_cs.xml").read_bytes())
    assert [(i.announce, i.paper.listing_id) for i in items] == [
        ("new", "2401.01234v1"),
        ("cross", "2401.02345v1"),
        ("replace", "2309.00001v3"),
        ("replace-cross", "2312.09999v2"),
    ]
    first = items[0].paper
    assert (
        first.title == "QuantSpec: Self-Speculative Decoding with Hierarchical Quantized KV Cache"
    )
    assert first.authors == ("Rishabh Tiwari", "André Martins", "Bob Li")
    assert first.extra_value("affiliations") == [
        "University of California, Berkeley, EECS",
        "Instituto Superior Técnico",
        "",
    ]
    assert first.abstract.startswith("Large Language Models are increasingly deployed on edge")
    assert "Announce Type" not in first.abstract and "\n" not in first.abstract
    assert (first.key, first.arxiv_id, first.version) == ("arxiv:2401.01234", "2401.01234", 1)
    assert first.categories == ("cs.LG", "cs.CL")
    assert first.published == date(2024, 1, 4)
    assert first.url == "https://arxiv.org/abs/2401.01234"
    assert items[2].paper.authors == ("Jane Müller", "José García")


def test_weekend_feed_is_empty_not_an_error() -> None:
    assert parse_listing_feed((ARXIV / "listing_weekend.xml").read_bytes()) == ()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"<rss><channel><item>", "malformed XML"),
        (b"<html><body>Service unavailable</body></html>", "not an arXiv RSS feed"),
        (b"<rss><channel><item><title>No id</title></item></channel></rss>", "without an arXiv id"),
    ],
)
def test_bad_listing_payloads(data: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=f"^feed-url: .*{problem}"):
        parse_listing_feed(data, origin="feed-url")


@pytest.mark.parametrize(
    ("creators", "expected"),
    [
        ("Ana Gómez", (("Ana Gómez", ""),)),
        ("A One, B Two", (("A One", ""), ("B Two", ""))),
        ("A One (MIT, CSAIL), B Two", (("A One", "MIT, CSAIL"), ("B Two", ""))),
        (
            "A One (Univ. of X (Dept. Y), Z), B Two",
            (("A One", "Univ. of X (Dept. Y), Z"), ("B Two", "")),
        ),
        ("A One, B Two and C Three", (("A One", ""), ("B Two", ""), ("C Three", ""))),
        ("A One and B Two", (("A One", ""), ("B Two", ""))),
        ("Andr\\'e Martins", (("André Martins", ""),)),
        ('J\\"urgen M\\"uller', (("Jürgen Müller", ""),)),
        ("A One (Research and Development Lab)", (("A One", "Research and Development Lab"),)),
        ("  A   One ,  B Two  ", (("A One", ""), ("B Two", ""))),
        ("", ()),
    ],
)
def test_split_creators(creators: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert split_creators(creators) == expected


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        ("Andr\\'e", "André"),
        ('M\\"uller', "Müller"),
        ("Fran\\c{c}ois", "François"),
        ("Fran\\c cois", "François"),
        ("Gar\\'{\\i}a", "Garía"),
        ("Gar\\'{i}a", "Garía"),
        ("Stra\\ss e", "Straße"),
        ("{\\o}rsted", "ørsted"),
        ("Pe\\~na", "Peña"),
        ("\\v{S}koda", "Škoda"),
        ("Erd\\H{o}s", "Erdős"),
        ("plain", "plain"),
    ],
)
def test_detex(tex: str, text: str) -> None:
    assert detex(tex) == text


@given(
    st.lists(
        st.from_regex(r"[A-Z][a-z]{1,8} [A-Z][a-z]{1,10}", fullmatch=True), min_size=1, max_size=8
    )
)
def test_split_creators_round_trips_simple_names(names: list[str]) -> None:
    assert [name for name, _ in split_creators(", ".join(names))] == names


def test_api_pages_parse_by_namespace_whatever_the_prefix_and_order() -> None:
    one = parse_api_feed((ARXIV / "api_page1.xml").read_bytes())
    two = parse_api_feed((ARXIV / "api_page2.xml").read_bytes())
    assert (one.total, one.start, one.per_page, len(one.papers)) == (3, 0, 2, 2)
    assert (two.total, two.start, two.per_page, len(two.papers)) == (3, 2, 2, 1)
    first, second = one.papers
    assert first.title == "Continual Learning for Vision Transformers"
    assert first.abstract == "We study catastrophic forgetting in vision transformers."
    assert first.categories == ("cs.CV", "cs.LG")
    assert first.extra_value("comment") == "12 pages, 4 figures"
    assert first.extra_value("pdf_url") == "https://arxiv.org/pdf/2401.02345v1"
    assert first.extra_value("affiliations") == ["Apple", ""]
    assert (second.doi, second.version) == ("10.1000/icml.2023.42", 2)
    assert second.extra_value("journal_ref") == "ICML 2023"
    [third] = two.papers
    assert third.title == "Dropout as an Implicit Gating Mechanism"
    assert third.authors == ("Iman Mirzadeh", "José García")
    assert third.categories == ("stat.ML", "cs.LG")
    assert third.extra_value("primary_category") == "stat.ML"
    assert third.extra_value("pdf_url") == "https://arxiv.org/pdf/2311.04444v1"
    assert third.extra_value("affiliations") == ["Apple, WSU", ""]
    assert third.published == date(2023, 11, 8)


def test_api_error_entry_reports_its_summary() -> None:
    with pytest.raises(SourceError, match=r"arXiv API error: incorrect id format for 1234\.12345"):
        parse_api_feed((ARXIV / "api_error.xml").read_bytes())


def test_api_unknown_id_is_zero_entries() -> None:
    page = parse_api_feed((ARXIV / "api_empty.xml").read_bytes())
    assert (page.papers, page.total) == ((), 0)


def _client(handler: httpx.MockTransport) -> PoliteClient:
    return PoliteClient(transport=handler, default_interval=0.0, sleep=lambda s: None)


def test_listing_source_keeps_new_and_cross_and_updates_replacements() -> None:
    requested: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(request)
        return httpx.Response(
            200, content=(ARXIV / "listing_cs.xml").read_bytes(), headers={"ETag": '"e"'}
        )

    config = ArxivConfig(categories=["cs.LG", "cs.CL"], listing_url="https://rss.test/rss")
    result = ArxivListingSource(config).fetch(
        FetchContext(now=NOW, client=_client(httpx.MockTransport(handler)))
    )
    assert str(requested[0].url) == "https://rss.test/rss/cs.LG+cs.CL"
    assert [p.arxiv_id for p in result.papers] == ["2401.01234", "2401.02345"]
    assert [p.arxiv_id for p in result.updates] == ["2309.00001", "2312.09999"]
    assert result.validators["https://rss.test/rss/cs.LG+cs.CL"].etag == '"e"'

    no_cross = ArxivListingSource(config.model_copy(update={"include_cross": False}))
    result = no_cross.fetch(FetchContext(now=NOW, client=_client(httpx.MockTransport(handler))))
    assert [p.arxiv_id for p in result.papers] == ["2401.01234"]


def test_authors_source_pages_through_every_spelling() -> None:
    queries: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        queries.append(query)
        page = "api_page1.xml" if query["start"] == ["0"] else "api_page2.xml"
        return httpx.Response(200, content=(ARXIV / page).read_bytes())

    config = ArxivConfig(api_url="https://api.test/query", max_results=2, author_days=365)
    author = FollowedAuthor("Seyed Iman Mirzadeh", ("Iman Mirzadeh",))
    result = ArxivAuthorsSource(config, [author]).fetch(
        FetchContext(now=NOW, client=_client(httpx.MockTransport(handler)))
    )
    assert [q["search_query"][0] for q in queries] == [
        'au:"Seyed Iman Mirzadeh"',
        'au:"Seyed Iman Mirzadeh"',
        'au:"Iman Mirzadeh"',
        'au:"Iman Mirzadeh"',
    ]
    assert [q["start"][0] for q in queries] == ["0", "2", "0", "2"]
    assert queries[0]["sortBy"] == ["submittedDate"]
    assert sorted(p.arxiv_id for p in result.papers) == ["2311.04444", "2312.05555", "2401.02345"]


def test_authors_source_stops_at_papers_older_than_the_window() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=(ARXIV / "api_page1.xml").read_bytes())

    config = ArxivConfig(api_url="https://api.test/query", max_results=2, author_days=14)
    result = ArxivAuthorsSource(config, [FollowedAuthor("Seyed Iman Mirzadeh")]).fetch(
        FetchContext(now=NOW, client=_client(httpx.MockTransport(handler)))
    )
    assert [p.arxiv_id for p in result.papers] == ["2401.02345"]
    assert len(calls) == 1


def test_api_http_400_error_feed_fails_the_source_with_its_summary() -> None:
    handler = httpx.MockTransport(
        lambda r: httpx.Response(400, content=(ARXIV / "api_error.xml").read_bytes())
    )
    config = ArxivConfig(api_url="https://api.test/query")
    with pytest.raises(SourceError, match="incorrect id format"):
        ArxivAuthorsSource(config, [FollowedAuthor("A B")]).fetch(
            FetchContext(now=NOW, client=_client(handler))
        )
