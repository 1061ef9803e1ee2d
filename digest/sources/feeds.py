"""Generic RSS 1.0/2.0 and Atom feeds (journals, bioRxiv, blogs), parsed with feedparser.

`parse_feed` is a pure function over bytes and the response's HTTP context (its URL after
redirects, Content-Type and Content-Location: the base of relative links and the charset);
`FeedSource` fetches with a conditional GET.

feedparser is lenient on purpose: it reads feeds that are not well-formed XML and flags them
`bozo`, but it reports only the first problem, and its fallback parser turns a document cut
short or broken in the middle into a shorter list of entries, the last one partial. So every
feed is also checked with a strict XML parser (`well_formed_problem`, in `feed_payload` with
the other steps over the payload's bytes), forgiving only what loses nothing: undeclared
entities (`&nbsp;`), a bare `&` (`?a=1&b=2`), control characters and references to them
(stripped at ingest anyway), an XML declaration not quite at the start and a wrong encoding
declaration (feedparser decodes it). Anything else, a cut anywhere included, fails the feed
whole.
"""

from __future__ import annotations

import io
import re
import xml.parsers.expat
from dataclasses import replace
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import feedparser  # type: ignore[import-untyped]

from digest import limits
from digest.errors import SourceError
from digest.http import Fetched
from digest.models import Paper, paper_keys, parse_arxiv_id
from digest.sources.base import (
    TRUNCATED_XML,
    FetchContext,
    FetchResult,
    ProbeRequest,
    client_needed,
)
from digest.sources.feed_payload import http_charset, repaired_utf8, well_formed_problem

_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption"}
    | {"figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol"}
    | {"p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
)
_HIDDEN_TAGS = frozenset({"script", "style"})

_DOI_ID = re.compile(r"(?:doi:\s*|info:doi/|urn:doi:)?(10\.\d{4,9}/\S+)", re.I)
_DOI_PATH = re.compile(r"/doi/(?:(?:abs|full|pdf|epdf|fullhtml|reader)/)?(10\.\d{4,9}/.+)", re.I)
_DOI_HOSTS = frozenset({"doi.org", "dx.doi.org", "www.doi.org"})
_ARXIV_HOSTS = frozenset({"arxiv.org", "www.arxiv.org", "export.arxiv.org"})
_ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(.+)", re.I)
_ARXIV_OAI = re.compile(r"(?:oai:arxiv\.org:|arxiv:)(.+)", re.I)
_ARXIV_PATH = re.compile(r"/(?:abs|pdf)/(.+?)(?:\.pdf)?/?")

_ET_AL = re.compile(r",?\s*\bet\.?\s+al\b\.?", re.I)
_NAME_SEP = re.compile(r"\s*(,|&|\band\b)\s*")
_LIST_SEP = re.compile(r"\s*;\s*(?:(?:and|&)\s+)?")
_INITIALS = re.compile(r"[A-Z]\.?(?:-?[A-Z]\.?)*(?:\s+[A-Z]\.?(?:-?[A-Z]\.?)*)*")
_SUFFIX = re.compile(r"(?:Jr|Sr|II|III|IV)\.?")
_EMAIL = re.compile(r"\S+@\S+")
_PARTICLES = frozenset(
    {"da", "de", "del", "della", "der", "di", "do", "dos", "du", "la", "le", "ten", "ter"}
    | {"van", "von"}
)


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment: entities decoded, script/style dropped, block
    elements separated by a space, inline ones (`<i>`, `<sub>`, `<a>`) joined as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def plain_text(value: str) -> str:
    """HTML to one line of text: tags dropped, entities unescaped, whitespace collapsed."""
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    # Words are split from no more text than any field may keep (the cleaner cuts to each cap
    # and says so): a response of one long run of words does not become millions of strings.
    text = limits.read_prefix("".join(extractor.parts), limits.ABSTRACT_CHARS)
    return " ".join(text.split())


def find_doi(*candidates: str) -> str:
    """The DOI of the first candidate that names one, lower case; "" if none does.

    A candidate is an identifier (`10.…`, `doi:10.…`, `info:doi/10.…`) or a URL: a doi.org
    link, or a publisher link with a `/doi/10.…` path (ACM, Wiley, SAGE, Taylor & Francis).
    """
    for candidate in candidates:
        found = _doi_match(candidate)
        if found:
            return found.group(1).rstrip(".,;").lower()
    return ""


def _doi_match(candidate: str) -> re.Match[str] | None:
    """The DOI one candidate names (in group 1): an identifier, a doi.org link or a publisher
    link's `/doi/…` path."""
    text = (candidate or "").strip()
    if not text.lower().startswith(("http://", "https://")):
        return _DOI_ID.fullmatch(text)
    parts = urlsplit(text)
    path = unquote(parts.path)
    if parts.hostname in _DOI_HOSTS:
        return _DOI_ID.fullmatch(path.lstrip("/"))
    return _DOI_PATH.search(path)


def find_arxiv_id(*candidates: str) -> tuple[str, int]:
    """(arXiv id without version, version or 0) of the first candidate naming an arXiv paper:
    an arxiv.org abs/pdf link, `oai:arXiv.org:…`, `arXiv:…`, or an arXiv DOI (10.48550/…)."""
    for candidate in candidates:
        text = _arxiv_id_text(candidate)
        arxiv_id, version = parse_arxiv_id(text) if text else ("", 0)
        if arxiv_id:
            return arxiv_id, version
    return "", 0


def _arxiv_id_text(candidate: str) -> str:
    """What may be an arXiv id in one candidate: the path of an arxiv.org abs/pdf link, or what
    follows `oai:arXiv.org:`, `arXiv:` or the arXiv DOI prefix; "" otherwise."""
    text = (candidate or "").strip()
    if not text.lower().startswith(("http://", "https://")):
        found = _ARXIV_OAI.fullmatch(text) or _ARXIV_DOI.fullmatch(text)
    else:
        parts = urlsplit(text)
        found = _ARXIV_PATH.fullmatch(parts.path) if parts.hostname in _ARXIV_HOSTS else None
    return found.group(1) if found else ""


def split_authors(value: str) -> tuple[str, ...]:
    """The names in one author string, as `First Last`.

    Handles `A One, B Two and C Three`, `A One; B Two`, `Smith, John; Doe, Jane` and bioRxiv's
    `Smith, J. A., Doe, B.`; a single `Smith, John` is one name; `et al.` is dropped.
    """
    text = _ET_AL.sub("", " ".join(value.split())).strip(" ,;")
    if not text:
        return ()
    if ";" in text:
        return tuple(name for chunk in _LIST_SEP.split(text) if (name := _uninvert(chunk)))
    names, comma_only = _comma_separated(text)
    return _last_first_pairs(names, comma_only) or tuple(names)


def _comma_separated(text: str) -> tuple[list[str], list[bool]]:
    """The names of a list separated by `,`, `&` and `and` (a `Jr.` or `III` kept with the name
    before it), and for each whether only commas separate it from the name before."""
    names: list[str] = []
    comma_only: list[bool] = []
    separator = ""
    for number, part in enumerate(_NAME_SEP.split(text)):
        if number % 2:  # a separator: ",", "&" or "and"
            separator = "," if part == "," and separator in ("", ",") else "and"
        elif part and names and _SUFFIX.fullmatch(part):
            names[-1] = f"{names[-1]} {part}"
            separator = ""
        elif part:
            names.append(part)
            comma_only.append(separator == ",")
            separator = ""
    return names, comma_only


def _last_first_pairs(names: list[str], comma_only: list[bool]) -> tuple[str, ...]:
    """`names` read as "Last, First, Last, First" and turned to `First Last`; () when they are
    not: every other name a bare surname, its given names after a comma alone."""
    # Single-word authors are rare enough that an even list of them is read this way.
    surnames, given = names[0::2], names[1::2]
    if len(surnames) != len(given) or not all(_is_surname(name) for name in surnames):
        return ()
    if not all(comma_only[1::2]):
        return ()
    return tuple(f"{first} {last}" for last, first in zip(surnames, given, strict=True))


def _uninvert(name: str) -> str:
    """`Smith, John` → `John Smith`; anything else unchanged."""
    name = name.strip(" ,")
    if name.count(",") != 1:
        return name
    last, first = (part.strip() for part in name.split(","))
    if _SUFFIX.fullmatch(first):
        return f"{last} {first}"
    return f"{first} {last}" if first and last else last or first


def _is_surname(piece: str) -> bool:
    """One word (particles such as `van der` aside) that is not itself initials."""
    words = [w for w in piece.split() if w not in _PARTICLES]
    return len(words) == 1 and not _INITIALS.fullmatch(words[0])


def _readable_payload(data: bytes, content_type: str) -> bytes:
    """The payload feedparser reads: `repaired_utf8` unless the server names another charset
    (the server's charset rules)."""
    if http_charset(content_type) in ("", "utf-8", "utf8"):
        return repaired_utf8(data)
    return data


def _http_context(url: str, content_type: str, content_location: str) -> dict[str, str]:
    """The response headers feedparser reads: the charset, and the base of relative links
    (Content-Location, resolved against the URL the body came from, else that URL)."""
    headers: dict[str, str] = {}
    if content_type:
        headers["content-type"] = content_type
    base = urljoin(url, content_location) if content_location else url
    if base:
        headers["content-location"] = base
    return headers


def parse_feed(
    data: bytes,
    origin: str,
    source_name: str,
    *,
    url: str = "",
    content_type: str = "",
    content_location: str = "",
) -> tuple[Paper, ...]:
    """Parse an RSS 1.0/2.0 or Atom feed into papers, in feed order.

    `url` (where the body came from, after redirects) and the response's Content-Type and
    Content-Location headers are the HTTP context: relative links resolve against them and a
    charset named only in Content-Type is honoured.

    SourceError naming `origin` when the payload is empty, is not a feed, is malformed with
    nothing readable in it, or was cut short. Entries with neither title nor link are skipped;
    one with a link but no title gets its link as title.
    """
    if not data.strip():
        raise SourceError(f"{origin}: empty response, not a feed")
    data = _readable_payload(data, content_type)
    headers = _http_context(url, content_type, content_location)
    # A BytesIO, never the bytes themselves: feedparser would try bytes as a file name first.
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers)
    fault = _lenient_fault(parsed, data) or _strict_fault(data, str(parsed.get("encoding") or ""))
    if fault:
        raise SourceError(f"{origin}: {fault}")
    return _papers_of(parsed, source_name)


def _lenient_fault(parsed: Any, data: bytes) -> str:
    """What feedparser's reading says is wrong with the feed (a cut; a fault with nothing
    readable; no feed root at all); "" when it read a feed."""
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if getattr(_inner(problem), "code", None) in TRUNCATED_XML:
        return f"malformed feed, cut short: {_describe(problem, data)}"
    readable = parsed.get("entries") or parsed.get("feed", {}).get("title")
    if problem is not None and not readable:
        return f"malformed feed: {_describe(problem, data)}"
    if not parsed.get("version"):  # no <rss>, <rdf:RDF> or <feed> root: HTML, other XML
        return "not an RSS or Atom feed"
    return ""


def _strict_fault(data: bytes, encoding: str) -> str:
    """What the strict XML check finds wrong with the feed (`well_formed_problem`), or ""."""
    strict = well_formed_problem(data, encoding)
    if strict is None:
        return ""
    cut = ", cut short" if strict.code in TRUNCATED_XML else ""
    message = " ".join(xml.parsers.expat.ErrorString(strict.code).split())
    return f"malformed feed{cut}: {message} (line {strict.lineno})"


def _papers_of(parsed: Any, source_name: str) -> tuple[Paper, ...]:
    """The papers of a feed's entries, in feed order, each with the feed's title."""
    entries: list[Any] = parsed.get("entries") or []
    atom = _field(parsed, "version").startswith("atom")
    papers = (_paper_of(entry, source_name, atom) for entry in entries)
    # The channel's own title, which the digest shows as the source's name.
    title = plain_text(_field(parsed.get("feed", {}), "title"))
    named = (("feed_title", title),) if title else ()
    return tuple(
        replace(paper, extra=tuple(sorted((*paper.extra, *named))))
        for paper in papers
        if paper is not None
    )


def _inner(problem: Any) -> Any:
    """The exception a SAX error wraps (expat's, with its `code`), or None."""
    get = getattr(problem, "getException", None)
    return get() if callable(get) else None


def _describe(problem: Any, data: bytes) -> str:
    """One line: the parser's message and the line of the payload it stopped at."""
    if hasattr(problem, "getLineNumber"):
        # feedparser puts an XML declaration on a line of its own in front of a payload that
        # has none, and the parser counts lines from there.
        added = 0 if data.removeprefix(b"\xef\xbb\xbf").startswith(b"<?xml") else 1
        line = max(1, problem.getLineNumber() - added)
        message = f"{problem.getMessage()} (line {line})"
    else:
        message = str(problem)
    return " ".join(message.split())


def _field(mapping: Any, key: str) -> str:
    """The value at `key` of a feedparser mapping as a string; "" when missing or empty."""
    return str(mapping.get(key) or "")


def _dicts(entry: Any, key: str) -> list[dict[str, Any]]:
    """The mappings in the list at `key` of an entry (`links`, `authors`); others are skipped."""
    return [item for item in entry.get(key) or [] if isinstance(item, dict)]


def _link_of(entry: Any, atom: bool) -> str:
    """The entry's link. In Atom, only a `<link>` element: feedparser otherwise hands over the
    entry's `<id>` as its link (a `tag:` or `urn:` id, or a relative one made into a URL)."""
    if not atom:
        return _field(entry, "link").strip()
    links = _dicts(entry, "links")
    alternate = [link for link in links if link.get("rel", "alternate") == "alternate"]
    return _first_href(alternate or links)


def _first_href(links: list[dict[str, Any]]) -> str:
    """The first non-blank `href` of `links`, stripped; "" when none has one."""
    for link in links:
        href = _field(link, "href").strip()
        if href:
            return href
    return ""


def _paper_of(entry: Any, source_name: str, atom: bool = False) -> Paper | None:
    """The paper of one feed entry; None for an entry with neither title nor link."""
    link = _link_of(entry, atom)
    title = plain_text(_field(entry, "title")) or link
    if not title:
        return None
    entry_id = _field(entry, "id").strip() or link
    arxiv_id, version = find_arxiv_id(link, entry_id)
    abstract, stated_doi = _abstract_and_doi(entry)
    doi = find_doi(
        _field(entry, "prism_doi"), _field(entry, "dc_identifier"), link, entry_id, stated_doi
    )
    authors, truncated = _authors_of(entry)
    return Paper(
        key=paper_keys(arxiv_id, doi, title)[0],
        title=title,
        authors=authors,
        abstract=abstract,
        categories=_categories_of(entry),
        published=_date_of(entry),
        url=link,
        source=source_name,
        listing_id=entry_id,
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
        authors_truncated=truncated,
    )


# What journal feeds (Nature's, Springer's) put before the abstract: "Nature Catalysis,
# Published online: 03 January 2024; doi:10.1038/s41929-023-01087-5".
_BOILERPLATE = re.compile(
    r"^[^;]{1,120}?,\s*Published online:\s*[^;]{1,40};\s*doi:\s*(?P<doi>10\.\d{4,9}/\S+)\s*",
    re.I,
)


def _abstract_and_doi(entry: Any) -> tuple[str, str]:
    """The abstract without a journal's boilerplate head, and the DOI that head states."""
    abstract = _abstract_of(entry)
    head = _BOILERPLATE.match(abstract)
    if head is None:
        return abstract, ""
    return abstract[head.end() :], head["doi"]


def _abstract_of(entry: Any) -> str:
    """The entry's summary as text, else the first of its contents with any text."""
    summary = plain_text(_field(entry, "summary"))
    if summary:
        return summary
    for content in entry.get("content") or []:
        text = plain_text(_field(content, "value"))
        if text:
            return text
    return ""


def _authors_of(entry: Any) -> tuple[tuple[str, ...], bool]:
    """The entry's author names, split and deduplicated, and whether the feed cut the list
    short (`et al.`)."""
    raw = [value for value in _author_values(entry) if _names_someone(value)]
    names = [name for value in raw for name in split_authors(value)]
    truncated = any(_ET_AL.search(value) for value in raw)
    return tuple(dict.fromkeys(names)), truncated


def _author_values(entry: Any) -> list[str]:
    """The entry's author strings: each author's name, else the one flat `author` string."""
    # `author` is a flat string of the same (feedparser fills `authors` whenever it fills it),
    # and an address-only author has no name: `{"email": …}`.
    details = _dicts(entry, "authors")
    if details:
        return [_field(author, "name") for author in details]
    return [_field(entry, "author")]


def _names_someone(value: str) -> bool:
    """Whether an author string names someone: not blank, and not an e-mail address alone."""
    stripped = value.strip()
    return bool(stripped) and not _EMAIL.fullmatch(stripped)


def _categories_of(entry: Any) -> tuple[str, ...]:
    """The entry's tags as text, each once, in feed order."""
    terms = (plain_text(_field(tag, "term")) for tag in entry.get("tags") or [])
    return tuple(dict.fromkeys(term for term in terms if term))


def _date_of(entry: Any) -> date | None:
    """The date as the feed wrote it (in its own time zone); feedparser's `*_parsed` values are
    converted to UTC, which moves a late-evening or early-morning date by a day."""
    for name in ("published", "updated", "created"):
        # dict.get: FeedParserDict.get("updated") falls back to `published` with a warning.
        raw = str(dict.get(entry, name) or "").strip()
        if not raw:
            continue
        written = _written_date(raw)
        if written is not None:
            return written
        moment = dict.get(entry, f"{name}_parsed")
        if moment:
            return date(moment.tm_year, moment.tm_mon, moment.tm_mday)
    return None


def _written_date(raw: str) -> date | None:
    """The date of an ISO 8601 or RFC 822 timestamp in its own time zone; None for others."""
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(raw).date()
    except (TypeError, ValueError, IndexError):
        return None


class FeedSource:
    """Any RSS or Atom feed, fetched with a conditional GET."""

    def __init__(self, name: str, url: str) -> None:
        self._name = name
        self.url = url

    @property
    def name(self) -> str:
        """The feed's name in the config."""
        return self._name

    def fetch(self, context: FetchContext) -> FetchResult:
        """The feed's entries; nothing when the server says it has not changed (304)."""
        got = client_needed(context).get(self.url, validators=context.validators.get(self.url))
        if got.not_modified:
            return FetchResult()
        papers = parse_feed(
            got.content,
            origin=self.url,
            source_name=self.name,
            url=got.final_url or self.url,
            content_type=got.content_type,
            content_location=got.content_location,
        )
        return FetchResult(papers=papers, validators={self.url: got.validators})

    def probe(self) -> ProbeRequest:
        """The feed (doctor)."""
        return ProbeRequest(self.url)

    def read_probe(self, got: Fetched) -> tuple[str, int]:
        """The answer read as this feed would be (doctor)."""
        papers = parse_feed(
            got.content,
            origin=got.url,
            source_name=self.name,
            url=got.final_url or got.url,
            content_type=got.content_type,
            content_location=got.content_location,
        )
        return "a feed", len(papers)
