"""Ingest cleaning: only http(s) URLs are kept and control characters never reach the store,
from every source, and from `digest match --input`."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.app import build_app, fetch
from digest.models import Paper, paper_keys
from digest.settings import Settings
from digest.sources.clean import clean_paper, safe_url
from digest.store import Store

from .conftest import PROFILE, Clock, HttpServer

NOW = datetime(2024, 1, 4, 12, 0, tzinfo=UTC)
HOSTILE_URLS = [
    "javascript:alert(1)",
    " JaVaScRiPt:alert(document.cookie)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x00javascript:alert(1)",
    "\u200bjavascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://example.org/paper.pdf",
    "//evil.example/x",
    "/abs/2401.01234",
    "https:",
    "https:///path-without-host",
    "ｊavascript:alert(1)",
]


@pytest.mark.parametrize("url", HOSTILE_URLS, ids=[repr(u) for u in HOSTILE_URLS])
def test_anything_but_an_http_url_is_dropped(url: str) -> None:
    assert safe_url(url) == ""


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://arxiv.org/abs/2401.01234", "https://arxiv.org/abs/2401.01234"),
        ("HTTP://Example.org/A?b=1&c=2#d", "HTTP://Example.org/A?b=1&c=2#d"),
        ("  https://github.com/org/repo \n", "https://github.com/org/repo"),
        ("https://exa\tmple.org/p\x00ath", "https://example.org/path"),
    ],
    ids=["plain", "upper-case scheme", "surrounding space", "controls inside"],
)
def test_http_urls_are_kept_without_their_controls(url: str, kept: str) -> None:
    assert safe_url(url) == kept


def texts(paper: Paper) -> Iterator[str]:
    """Every string a paper holds, `extra` values included, however nested."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(k)
                yield from walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                yield from walk(v)

    yield from walk([paper.key, paper.title, paper.authors, paper.abstract, paper.categories])
    yield from walk([paper.url, paper.source, paper.listing_id, paper.arxiv_id, paper.doi])
    yield from walk([list(pair) for pair in paper.extra])


def unclean(char: str) -> bool:
    """A character no stored text may hold: controls, surrogates, bidi overrides, separators."""
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Zl", "Zp") or char in "\u202a\u202b\u202c\u202d\u202e"


def links(paper: Paper) -> list[str]:
    return [paper.url] + [
        value
        for name, value in paper.extra
        if isinstance(value, str) and (name.endswith("_url") or name == "project_page")
    ]


hostile_text = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from("\x00\x01\x07\t\n\r\x0b\x0c\x1b\x7f\x85\u2028\u2029\u202e\ud800"),
    )
)
hostile_url = st.one_of(st.sampled_from(HOSTILE_URLS), hostile_text, st.just("https://e.org/x"))
papers = st.builds(
    lambda title, authors, abstract, categories, url, code, project, note, listing: Paper(
        key=paper_keys("", "", title)[0] if title.strip() else "title:x",
        title=title,
        authors=tuple(authors),
        abstract=abstract,
        categories=tuple(categories),
        url=url,
        listing_id=listing,
        extra=(
            ("code_url", code),
            ("note", note),
            ("pdf_url", url),
            ("project_page", project),
            ("upvotes", 3),
        ),
    ),
    hostile_text,
    st.lists(hostile_text, max_size=4),
    hostile_text,
    st.lists(hostile_text, max_size=3),
    hostile_url,
    hostile_url,
    hostile_url,
    st.one_of(hostile_text, st.lists(hostile_text, max_size=3)),
    hostile_text,
)


@given(papers)
def test_a_cleaned_paper_holds_no_control_characters_and_only_http_links(paper: Paper) -> None:
    cleaned = clean_paper(paper)
    for text in texts(cleaned):
        assert not any(unclean(char) for char in text), repr(text)
    for one_line in (cleaned.title, *cleaned.authors, cleaned.abstract, *cleaned.categories):
        assert one_line == " ".join(one_line.split())
    for link in links(cleaned):
        assert link == "" or link.lower().startswith(("http://", "https://")), repr(link)
    assert "" not in cleaned.authors and "" not in cleaned.categories
    if cleaned.title == paper.title:
        assert cleaned.key == paper.key
    elif cleaned.title:
        assert cleaned.key == paper_keys("", "", cleaned.title)[0]
    assert cleaned.extra_value("upvotes") == 3
    assert clean_paper(cleaned) == cleaned


CLEAN_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"),
    exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffe\uffff",
)


# A name without TeX marks (a backslash, a brace or a tie are read as TeX: see TEX_NAMES).
CLEAN_NAME_CHARS = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"),
    exclude_characters="\\{}~\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffe\uffff",
)


@given(st.text(CLEAN_CHARS), st.text(CLEAN_NAME_CHARS))
def test_clean_text_is_left_as_it_is(word: str, name: str) -> None:
    title, author, note = (" ".join(text.split()) for text in (f"A {word} title", name, word))
    paper = Paper(
        key=paper_keys("", "", title)[0],
        title=title,
        authors=(f"{author} Li".strip(),),
        abstract=f"About {title}.",
        url="https://e.org/a",
        extra=(("code_url", "https://github.com/o/r"), ("note", note)),
    )
    assert clean_paper(paper) == paper


TEX_NAMES = [
    ('J\\"org Hoffmann', "Jörg Hoffmann"),
    ("Anders S{\\o}gaard", "Anders Søgaard"),
    ("Nikola Pi\\v{z}urica", "Nikola Pižurica"),
    ("Andr\\'e", "André"),
    ("Andr{\\'e}", "André"),
    ("Andr\\'{e}", "André"),
    ("\\`Agreda", "Àgreda"),
    ('M\\"uller', "Müller"),
    ('M\\"{u}ller', "Müller"),
    ("Fran\\c{c}ois", "François"),
    ("Fran\\c cois", "François"),
    ("Garc\\'{\\i}a", "García"),
    ("Garc\\'\\i a", "García"),
    ("Garc\\'ia", "García"),
    ("Stra\\ss e", "Straße"),
    ("Wei\\ss{}", "Weiß"),
    ("Gau\\ss Weber", "Gauß Weber"),
    ("{\\o}rsted", "ørsted"),
    ("Bj\\o rn", "Bjørn"),
    ("\\L{}ukasz Ka\\l u\\.za", "Łukasz Kałuża"),
    ("Pe\\~na", "Peña"),
    ("\\v{S}koda", "Škoda"),
    ("Dvo\\v{r}\\'ak", "Dvořák"),
    ("Erd\\H{o}s", "Erdős"),
    ('\\AA ngstr\\"om', "Ångström"),
    ("Ho\\`{a}ng", "Hoàng"),
    ("Nguy\\~{\\^e}n", "Nguyễn"),  # stacked accents
    ("{Van} Dyk", "Van Dyk"),
    ("AT\\&T Labs", "AT&T Labs"),
    ("R.~Smith", "R. Smith"),
    ("\\textit{et al.}", "et al."),
    ("100% Lab", "100% Lab"),  # no TeX: left as it is
    ("plain", "plain"),
]


@pytest.mark.parametrize(("tex", "text"), TEX_NAMES, ids=[t for t, _ in TEX_NAMES])
def test_tex_in_author_names_is_read_as_unicode(tex: str, text: str) -> None:
    paper = Paper(key="title:x", title="x", authors=(tex, "Bob Li"))
    cleaned = clean_paper(paper)
    assert cleaned.authors == (text, "Bob Li")
    assert clean_paper(cleaned) == cleaned


def test_tex_in_affiliations_is_read_as_unicode() -> None:
    paper = Paper(
        key="title:x",
        title="x",
        authors=("Ana", "Bob"),
        extra=(("affiliations", ['Universit\\"at Hamburg', "Instituto Superior T\\'ecnico"]),),
    )
    assert clean_paper(paper).extra_value("affiliations") == [
        "Universität Hamburg",
        "Instituto Superior Técnico",
    ]


def test_a_followed_author_written_in_tex_matches_from_files_and_feeds(
    http_server: HttpServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from digest.match import match_profiles

    feed = """<?xml version="1.0"?><rss version="2.0"><channel><title>j</title>
<item><title>Planning as heuristic search</title><link>https://j.example/1</link>
<author>J\\"org Hoffmann</author></item></channel></rss>"""
    http_server.routes["/feed.xml"] = lambda r, n: (200, {}, feed.encode())
    listing = tmp_path / "l.jsonl"
    line = {"id": "", "title": "Cross-lingual parsing", "authors": ["Anders S{\\o}gaard"]}
    listing.write_text(json.dumps(line) + "\n", encoding="utf-8")
    settings = make_settings(
        sources={
            "feeds": [{"name": "journal", "url": f"{http_server.url}/feed.xml"}],
            "files": [{"name": "mine", "path": str(listing)}],
        },
        profiles=[{"name": "me", "authors": ["Jörg Hoffmann", "Anders Søgaard"]}],
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    assert {r.source: r.error for r in fetch(app)} == {"journal": "", "mine": ""}
    stored = list(app.store.papers_seen_since(datetime(1970, 1, 1, tzinfo=UTC)))
    assert {a for p in stored for a in p.authors} == {"Jörg Hoffmann", "Anders Søgaard"}
    [matches] = match_profiles(stored, settings.profile_records()).values()
    assert {m.paper.title for m in matches} == {
        "Planning as heuristic search",
        "Cross-lingual parsing",
    }


def test_a_title_key_follows_the_cleaned_title() -> None:
    paper = Paper(key=paper_keys("", "", "Deep\x00Learning")[0], title="Deep\x00Learning")
    assert clean_paper(paper).key == paper_keys("", "", "DeepLearning")[0]


# --- end to end: every source, through the store --------------------------------------------

JS = "javascript:alert(1)"


def hostile_routes(server: HttpServer) -> None:
    api = f"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><entry>
<id>http://arxiv.org/abs/2401.00001v1</id><title>API paper</title>
<published>2024-01-03T18:00:00Z</published><summary>An abstract</summary>
<author><name>Ana G&#xf3;mez</name></author>
<link title="pdf" href="{JS}" rel="related"/>
</entry></feed>"""
    hf = [
        {
            "paper": {
                "id": "2401.00002",
                "title": "HF\u0000 paper\u202e",
                "authors": [{"name": "Bo\x07b Li"}],
                "githubRepo": JS,
                "projectPage": "data:text/html,<script>alert(1)</script>",
            }
        }
    ]
    feed = """<?xml version="1.0"?><rss version="2.0"><channel><title>j</title>
<item><title>Feed\x0b paper</title><link>vbscript:msgbox(1)</link>
<description>Text&#x1b;[31m red</description></item></channel></rss>"""
    server.routes["/api/query"] = lambda r, n: (200, {}, api.encode())
    server.routes["/api/daily_papers"] = lambda r, n: (200, {}, json.dumps(hf).encode())
    server.routes["/feed.xml"] = lambda r, n: (200, {}, feed.encode())


def hostile_listing(path: Path) -> Path:
    line = {
        "id": "",
        "title": "File\u0000 paper\r\nwith a break",
        "authors": ["Carol\x1b[2J Diaz"],
        "url": " javascript:alert(1)",
        "extra": {"code_url": "vbscript:x", "note": "fine\x00"},
    }
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


def test_no_source_stores_a_script_link_or_a_control_character(
    http_server: HttpServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    hostile_routes(http_server)
    settings = make_settings(
        sources={
            "arxiv": {
                "categories": [],
                "api_url": f"{http_server.url}/api/query",
                "pacing_seconds": 0,
                "author_days": 365,
            },
            "hf_daily": {"base_url": http_server.url, "pacing_seconds": 0},
            "feeds": [{"name": "journal", "url": f"{http_server.url}/feed.xml"}],
            "files": [{"name": "mine", "path": str(hostile_listing(tmp_path / "l.jsonl"))}],
        },
        profiles=[{**PROFILE, "authors": ["Ana Gómez"]}],
    )
    app = build_app(settings, store=Store.open(None), clock=Clock(NOW))
    reports = {r.source: r.error for r in fetch(app)}
    # (arXiv's API is read strictly: XML 1.0 cannot carry control characters at all.)
    assert reports == {"arxiv-authors": "", "hf_daily": "", "journal": "", "mine": ""}
    stored = list(app.store.papers_seen_since(datetime(1970, 1, 1, tzinfo=UTC)))
    assert {p.title for p in stored} == {
        "API paper",
        "HF paper",
        "Feed paper",
        "File paper with a break",
    }
    for paper in stored:
        for text in texts(paper):
            assert not any(unclean(char) for char in text), (paper.title, repr(text))
            assert not any(s in text.lower() for s in ("javascript:", "vbscript:", "data:")), text
    authors = {a for p in stored for a in p.authors}
    assert authors == {"Ana Gómez", "Bob Li", "Carol[2J Diaz"}


def test_match_input_cleans_the_listing(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["paper"]\n',
        encoding="utf-8",
    )
    listing = hostile_listing(tmp_path / "l.jsonl")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "digest",
            "--config",
            config,
            "match",
            "--format",
            "jsonl",
            "--input",
            str(listing),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert json.loads(line)["title"] == "File paper with a break"
