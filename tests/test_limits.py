"""Field limits at ingest: every stored text field is capped (digest/limits.py), for every source,
cut with a warning; an OpenAlex inverted index never expands past the abstract's cap; the README's
table lists the same numbers as the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import limits
from digest.models import Paper
from digest.sources import FetchResult
from digest.sources.arxiv import parse_api_feed, parse_listing_feed
from digest.sources.clean import clean_paper, clean_result
from digest.sources.feeds import parse_feed
from digest.sources.files import parse_listing_jsonl
from digest.sources.hf_daily import parse_daily_papers
from digest.sources.openalex import parse_works, rebuild_abstract

from .conftest import DATA
from .openalex_server import WORKS

ROOT = Path(__file__).resolve().parent.parent
BIG_TITLE = "Title " * 2_000  # 12,000 characters
BIG_ABSTRACT = "word " * 30_000  # 150,000 characters


def _first(pattern: str, text: str, value: str) -> str:
    """`text` with the first element matching `pattern` (a group around its content) holding
    `value` instead."""
    found = re.search(pattern, text, re.S)
    assert found, pattern
    return text[: found.start(1)] + value + text[found.end(1) :]


def _arxiv_api(title: str, abstract: str) -> list[Paper]:
    text = (DATA / "arxiv" / "api_page1.xml").read_text()
    text = _first(r"<entry>.*?<title>(.*?)</title>", text, title)
    text = _first(r"<entry>.*?<summary>(.*?)</summary>", text, abstract)
    return list(parse_api_feed(text.encode()).papers)


def _arxiv_listing(title: str, abstract: str) -> list[Paper]:
    text = (DATA / "arxiv" / "listing_cs.xml").read_text()
    text = _first(r"<item>\s*<title>(.*?)</title>", text, title)
    text = _first(
        r"<item>.*?<description>arXiv:\S+ Announce Type: new\s*(.*?)</description>",
        text,
        "Abstract: " + abstract,
    )
    return [listed.paper for listed in parse_listing_feed(text.encode())]


def _hf(title: str, abstract: str) -> list[Paper]:
    items = json.loads((DATA / "hf" / "daily_2024-01-04.json").read_text())
    items[0]["paper"]["title"] = title
    items[0]["paper"]["summary"] = abstract
    return list(parse_daily_papers(json.dumps(items).encode()))


def _feed(title: str, abstract: str) -> list[Paper]:
    text = (DATA / "feeds" / "journal_atom.xml").read_text()
    text = _first(r"<entry>\s*<title[^>]*>(.*?)</title>", text, title)
    text = _first(r"<entry>.*?<summary[^>]*>(.*?)</summary>", text, abstract)
    return list(parse_feed(text.encode(), "feed", "journal"))


def _files(title: str, abstract: str) -> list[Paper]:
    line = {"id": "2401.00001", "title": title, "abstract": abstract, "authors": ["A B"]}
    return list(parse_listing_jsonl(json.dumps(line).encode(), "listing.jsonl"))


def _openalex(title: str, abstract: str) -> list[Paper]:
    work = dict(WORKS[0])
    work["display_name"] = title
    index: dict[str, list[int]] = {}
    for position, word in enumerate(abstract.split()):
        index.setdefault(word, []).append(position)
    work["abstract_inverted_index"] = index
    return list(parse_works(json.dumps({"meta": {}, "results": [work]}).encode()).papers)


SOURCES: dict[str, Callable[[str, str], list[Paper]]] = {
    "arxiv-api": _arxiv_api,
    "arxiv-listing": _arxiv_listing,
    "hf_daily": _hf,
    "feed": _feed,
    "files": _files,
    "openalex": _openalex,
}


@pytest.mark.parametrize("parse", SOURCES.values(), ids=SOURCES.keys())
def test_every_source_cuts_a_long_title_and_abstract_with_a_warning(
    parse: Callable[[str, str], list[Paper]],
) -> None:
    papers = parse(BIG_TITLE, BIG_ABSTRACT)
    result = clean_result(FetchResult(papers=tuple(papers)))
    longest = max(result.papers, key=lambda p: len(p.abstract))
    assert len(longest.abstract) == limits.ABSTRACT_CHARS
    assert longest.abstract.endswith("…")
    assert max(len(p.title) for p in result.papers) == limits.TITLE_CHARS
    assert any("abstract" in w and "20,000 characters" in w for w in result.warnings)
    assert any("title" in w and "1,000 characters" in w for w in result.warnings)


def test_a_short_paper_passes_unchanged_and_without_a_warning() -> None:
    papers = _files("A Title", "An abstract.")
    result = clean_result(FetchResult(papers=tuple(papers)))
    assert result.papers == tuple(clean_paper(p) for p in papers)
    assert result.warnings == ()


def test_an_inverted_index_repeating_one_word_is_bounded_by_positions() -> None:
    index = {"spam": list(range(4_000_000)), "eggs": [4_000_000]}
    text = rebuild_abstract(index)
    assert len(text) <= limits.ABSTRACT_CHARS + 1  # one over: the cleaner cuts and says so
    assert text.startswith("spam spam")


def test_a_few_huge_words_are_bounded_by_characters() -> None:
    index = {"x" * 1_000_000: [0], "y" * 1_000_000: [1]}
    assert len(rebuild_abstract(index)) <= limits.ABSTRACT_CHARS + 1


_CHILD = """
import json, resource, sys
from pathlib import Path
from digest.sources.openalex import parse_works
from digest.sources import FetchResult
from digest.sources.clean import clean_result
payload = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] == "json":  # the payload's own cost: its 4,000,000 parsed positions
    parsed = json.loads(payload)
    report = {}
else:
    page = parse_works(payload)
    result = clean_result(FetchResult(papers=page.papers))
    report = {"abstract": len(result.papers[0].abstract), "warnings": list(result.warnings)}
report["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps(report))
"""


def _child(path: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_a_4m_position_abstract_costs_little_memory_and_is_stored_cut(tmp_path: Path) -> None:
    work = {**WORKS[0], "abstract_inverted_index": {"spam": "POSITIONS"}}
    head, _, tail = json.dumps({"meta": {}, "results": [work]}).partition('"POSITIONS"')
    path = tmp_path / "page.json"
    with path.open("w") as out:  # written in pieces: the test itself stays small
        out.write(head + "[")
        for start in range(0, 4_000_000, 100_000):
            sep = "," if start else ""
            out.write(sep + ",".join(map(str, range(start, start + 100_000))))
        out.write("]" + tail)
    payload = _child(path, "json")["peak_kb"]
    report = _child(path, "parse")
    extra_mb = (report["peak_kb"] - payload) / 1024
    print(f"payload parsed: {payload / 1024:.0f} MB; parse and clean: +{extra_mb:.0f} MB more")
    assert report["abstract"] == limits.ABSTRACT_CHARS
    assert any("abstract" in w for w in report["warnings"])
    # Before the bound: a 4,000,000-entry position table and a 20 MB string, ~500 MB more.
    assert extra_mb < 40


def test_authors_categories_ids_and_references_are_bounded_and_aligned() -> None:
    count = limits.AUTHORS + 10
    paper = Paper(
        key="doi:10.1/x",
        title="T",
        authors=tuple(
            f"Author {i} " + "n" * (limits.AUTHOR_CHARS if i == 0 else 0) for i in range(count)
        ),
        author_ids=tuple(f"A{i}" for i in range(count)),
        author_orcids=tuple("" for _ in range(count)),
        categories=(*(f"c{i}" for i in range(limits.CATEGORIES + 5)), "x" * 500),
        doi="10.1/x",
        listing_id="y" * (limits.ID_CHARS + 1),
        url="https://example.org/" + "p" * limits.URL_CHARS,
        referenced=tuple(f"W{i}" for i in range(limits.REFERENCES + 3)),
        extra=(("comment", "c" * 100_000), ("affiliations", ["a" * 10] * count)),
    )
    result = clean_result(FetchResult(papers=(paper,)))
    (kept,) = result.papers
    assert len(kept.authors) == len(kept.author_ids) == len(kept.author_orcids) == limits.AUTHORS
    assert kept.author_ids[5] == "A5" and kept.authors_truncated
    assert len(kept.authors[0]) == limits.AUTHOR_CHARS
    assert len(kept.categories) == limits.CATEGORIES
    assert kept.listing_id == "" and kept.url == ""
    assert len(kept.referenced) == limits.REFERENCES
    assert len(kept.extra_value("comment")) == limits.EXTRA_TEXT_CHARS
    assert len(kept.extra_value("affiliations")) <= limits.EXTRA_ITEMS
    words = " ".join(result.warnings)
    for name in (
        "authors",
        "author name",
        "categories",
        "listing id",
        "url",
        "references",
        "extra",
    ):
        assert name in words, name


def test_an_author_name_cleaned_to_nothing_keeps_the_ids_aligned() -> None:
    paper = Paper(
        key="doi:10.1/x",
        title="T",
        authors=("Ann One", "\x00\x01", "Bob Two"),
        author_ids=("A1", "A2", "A3"),
        author_orcids=("", "", "0000-0002-1825-0097"),
    )
    kept = clean_paper(paper)
    assert kept.authors == ("Ann One", "Bob Two")
    assert kept.author_ids == ("A1", "A3")
    assert kept.author_orcids == ("", "0000-0002-1825-0097")


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=3_000)


@given(
    title=texts,
    abstract=st.one_of(texts, st.builds(lambda w, n: (w + " ") * n, texts, st.integers(0, 60))),
    authors=st.lists(texts, max_size=20),
)
def test_whatever_the_text_every_field_fits_and_cleaning_is_idempotent(
    title: str, abstract: str, authors: list[str]
) -> None:
    paper = Paper(key="title:x", title=title or "t", abstract=abstract, authors=tuple(authors))
    once = clean_paper(paper)
    assert len(once.title) <= limits.TITLE_CHARS
    assert len(once.abstract) <= limits.ABSTRACT_CHARS
    assert all(len(a) <= limits.AUTHOR_CHARS for a in once.authors)
    assert clean_paper(once) == once


# --- the README's table of field limits is the code's --------------------------------------------

_ROW = re.compile(r"^\| (?P<what>[^|]+?) \| (?P<limit>[\d,]+)[^|]*\| `(?P<name>[A-Z_]+)` \|", re.M)


def test_the_readme_lists_every_field_limit_as_the_code_has_it() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = {m["name"]: int(m["limit"].replace(",", "")) for m in _ROW.finditer(readme)}
    constants = {
        name: value
        for name, value in vars(limits).items()
        if name.isupper() and isinstance(value, int)
    }
    assert rows == constants
