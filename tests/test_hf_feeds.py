"""Hugging Face Daily Papers and generic RSS/Atom feeds: parsers and sources."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from digest.errors import SourceError
from digest.http import PoliteClient, Validators
from digest.settings import HfDailyConfig
from digest.sources import FetchContext
from digest.sources.feeds import FeedSource, find_doi, parse_feed, plain_text, split_authors
from digest.sources.hf_daily import HfDailySource, daily_dates, parse_daily_papers

from .conftest import DATA

NOW = datetime(2024, 1, 4, 12, 0, tzinfo=UTC)


def test_daily_papers_keep_signals_and_omit_nulls() -> None:
    first, second, third = parse_daily_papers((DATA / "hf" / "daily_2024-01-04.json").read_bytes())
    assert (first.key, first.listing_id, first.source) == (
        "arxiv:2401.01234",
        "2401.01234",
        "hf_daily",
    )
    assert first.authors == ("Rishabh Tiwari", "André Martins", "Bob Li")
    assert first.published == date(2024, 1, 3)
    assert dict(first.extra) == {
        "upvotes": 42,
        "comments": 3,
        "code_url": "https://github.com/example/quantspec",
        "github_stars": 120,
        "project_page": "https://example.org/quantspec",
        "ai_keywords": ["speculative decoding", "KV cache", "quantization"],
        "hf_url": "https://huggingface.co/papers/2401.01234",
    }
    assert dict(second.extra) == {
        "upvotes": 7,
        "comments": 0,
        "hf_url": "https://huggingface.co/papers/2401.03456",
    }
    assert second.authors == ("Zoë Kowalski",)
    assert third.authors == () and third.upvotes == 0


def test_weekend_is_empty() -> None:
    assert parse_daily_papers((DATA / "hf" / "daily_weekend.json").read_bytes()) == ()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"<html>", "not JSON"),
        (b'{"error": "rate limited"}', "expected a JSON array"),
        (b'[{"paper": {"title": "no id"}}]', "item 1: paper without id or title"),
        (b'[{"title": "no paper object"}]', "item 1: no 'paper' object"),
    ],
)
def test_malformed_daily_papers(data: bytes, problem: str) -> None:
    with pytest.raises(SourceError, match=f"^hf: {problem}"):
        parse_daily_papers(data, origin="hf")


@pytest.mark.parametrize(
    ("last", "today", "max_days", "expected"),
    [
        (None, date(2024, 1, 4), 7, [date(2024, 1, 4)]),
        (date(2024, 1, 4), date(2024, 1, 4), 7, [date(2024, 1, 4)]),
        (date(2024, 1, 1), date(2024, 1, 4), 7, [date(2024, 1, d) for d in (1, 2, 3, 4)]),
        (date(2023, 12, 1), date(2024, 1, 4), 3, [date(2024, 1, d) for d in (2, 3, 4)]),
        # Over a weekend: Friday's success, Monday's run asks for Fri, Sat, Sun, Mon.
        (date(2024, 1, 5), date(2024, 1, 8), 7, [date(2024, 1, d) for d in (5, 6, 7, 8)]),
    ],
)
def test_daily_dates(last: date | None, today: date, max_days: int, expected: list[date]) -> None:
    assert list(daily_dates(last, today, max_days)) == expected


def test_hf_source_catches_up_every_missed_day_and_pages() -> None:
    asked: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append((request.url.params["date"], request.url.params["p"]))
        if request.url.params["date"] == "2024-01-04" and request.url.params["p"] == "0":
            return httpx.Response(200, content=(DATA / "hf" / "daily_2024-01-04.json").read_bytes())
        return httpx.Response(200, content=b"[]")

    client = PoliteClient(
        transport=httpx.MockTransport(handler), default_interval=0, sleep=lambda s: None
    )
    source = HfDailySource(HfDailyConfig(base_url="https://hf.test", page_size=3))
    result = source.fetch(
        FetchContext(now=NOW, client=client, last_success=datetime(2024, 1, 2, 9, tzinfo=UTC))
    )
    assert asked == [
        ("2024-01-02", "0"),
        ("2024-01-03", "0"),
        ("2024-01-04", "0"),
        ("2024-01-04", "1"),
    ]
    assert len(result.papers) == 3


def test_journal_atom_feed() -> None:
    first, second = parse_feed((DATA / "feeds" / "journal_atom.xml").read_bytes(), "o", "jmlr")
    assert first.title == "Orthogonal Gradient Descent & Continual Learning"
    assert first.abstract == "We project gradients orthogonally to avoid catastrophic forgetting."
    assert first.authors == ("Mehrdad Farajtabar", "Navid Azizan")
    assert (first.doi, first.key) == ("10.5555/jmlr.2024.001", "doi:10.5555/jmlr.2024.001")
    assert first.published == date(2024, 1, 3) and first.categories == ("continual learning",)
    assert first.source == "jmlr" and first.url == "https://journal.example.org/articles/2024-001"
    assert second.doi == "" and second.key.startswith("title:")


def test_rss_entry_linking_to_arxiv_gets_the_arxiv_identity() -> None:
    rss = b"""<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <channel><title>Lab blog</title><link>https://lab.example</link><description>d</description>
    <item><title>Our new paper</title><link>https://arxiv.org/abs/2401.01234v2</link>
    <dc:creator>A One, B Two and C Three</dc:creator>
    <pubDate>Thu, 04 Jan 2024 10:00:00 GMT</pubDate>
    <description>&lt;b&gt;Bold&lt;/b&gt; claim.</description>
    </item></channel></rss>"""
    [paper] = parse_feed(rss, "blog", "blog")
    assert (paper.key, paper.version) == ("arxiv:2401.01234", 2)
    assert paper.authors == ("A One", "B Two", "C Three")
    assert paper.abstract == "Bold claim."


@pytest.mark.parametrize(
    ("candidates", "doi"),
    [
        (("doi:10.1000/ABC",), "10.1000/abc"),
        (("https://doi.org/10.1101/2024.01.01.123456",), "10.1101/2024.01.01.123456"),
        (("http://dx.doi.org/10.5555/x.y.",), "10.5555/x.y"),
        (("", "https://example.org/article"), ""),
        (("https://example.org/a", "10.48550/arXiv.2401.01234"), "10.48550/arxiv.2401.01234"),
    ],
)
def test_find_doi(candidates: tuple[str, ...], doi: str) -> None:
    assert find_doi(*candidates) == doi


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("A One", ("A One",)),
        ("A One; B Two", ("A One", "B Two")),
        ("A One, B Two and C Three", ("A One", "B Two", "C Three")),
        ("", ()),
    ],
)
def test_split_authors(value: str, names: tuple[str, ...]) -> None:
    assert split_authors(value) == names


def test_plain_text() -> None:
    assert plain_text("<p>A &amp; B</p>\n<i>c</i>") == "A & B c"


@pytest.mark.parametrize("data", [b"<rss><channel><item>", b"<html><body>hi</body></html>"])
def test_malformed_feeds_fail(data: bytes) -> None:
    with pytest.raises(SourceError, match=r"^feed: "):
        parse_feed(data, "feed", "f")


def test_feed_source_conditional_get() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("If-None-Match") == '"v"':
            return httpx.Response(304)
        return httpx.Response(
            200, headers={"ETag": '"v"'}, content=(DATA / "feeds" / "journal_atom.xml").read_bytes()
        )

    client = PoliteClient(
        transport=httpx.MockTransport(handler), default_interval=0, sleep=lambda s: None
    )
    source = FeedSource("jmlr", "https://j.test/feed")
    first = source.fetch(FetchContext(now=NOW, client=client))
    assert len(first.papers) == 2 and first.validators["https://j.test/feed"] == Validators('"v"')
    second = source.fetch(FetchContext(now=NOW, client=client, validators=first.validators))
    assert second.papers == () and second.validators == {}
