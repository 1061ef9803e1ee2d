"""arXiv: the daily announcement feeds per category, and the API (followed authors, backfill).

Parsers are pure functions over bytes and read XML by namespace, never by prefix or element
order (the 2026 API responses reordered elements, changed prefixes, switched links to https and
sometimes mark the PDF link by its type alone).

- `parse_listing_feed`: the announcement feed, https://rss.arxiv.org/rss/cs.LG+cs.CL (RSS 2.0,
  since 2024) or https://rss.arxiv.org/atom/cs.LG+cs.CL (the same in Atom). One item per
  announced paper, with `arxiv:announce_type` new, cross, replace or replace-cross and an
  optional `arxiv:DOI`; authors are one `dc:creator` string (`split_creators`; TeX in names is
  read later, by `clean_paper`). A weekend or holiday feed has no items.
- `parse_api_feed`: an http://export.arxiv.org/api/query page (Atom with opensearch totals).
  The API answers a bad query with HTTP 400 and a feed holding one entry titled `Error`: that
  becomes SourceError carrying its summary. An unknown id is a valid feed with zero entries.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime

from digest import limits
from digest.errors import SourceError
from digest.http import Fetched, PoliteClient
from digest.models import FollowedAuthor, Paper, paper_keys, parse_arxiv_id
from digest.settings import ArxivConfig
from digest.sources.base import (
    TRUNCATED_XML,
    FetchContext,
    FetchResult,
    ProbeRequest,
    client_needed,
)

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
# Older API responses named the opensearch namespace this way; accepted as well.
_OPENSEARCH_NAMESPACES = (OPENSEARCH, "{http://a9.com/-/spec/opensearchrss/1.0/}")
DC = "{http://purl.org/dc/elements/1.1/}"
API_PAGE_LIMIT = 20  # never page forever: at most this many API pages per query

# --- author lists ---------------------------------------------------------------------------------

# Author separators outside parentheses: a comma (`A, B`), an Oxford `, and` (`A, B, and C`), or
# ` and ` (`A and B`, `A, B and C`). Parentheses are matched to track the depth.
_CREATOR_TOKEN = re.compile(r"[()]|\s*,\s*(?:and\s+)?|\s+and\s+|^and\s+")
# The legend of numbered affiliations: `A (1), B (1, 2) ((1) MIT, (2) Stanford)`.
_LEGEND_START = re.compile(r"\(\d+\)")
_LEGEND_ENTRY = re.compile(r"\((\d+)\)\s*(.*?)\s*(?:[,;]\s*)?(?=\(\d+\)|$)")
_LEGEND_REFS = re.compile(r"\d+(?:\s*(?:,|;|&|and)\s*\d+)*")


def split_creators(creators: str) -> tuple[tuple[str, str], ...]:
    """Split an arXiv `dc:creator` string into ((name, affiliation or ""), ...).

    `Ana Gómez (MIT, CSAIL), Andr\\'e Martins and Bob Li` → (("Ana Gómez", "MIT, CSAIL"),
    ("Andr\\'e Martins", ""), ("Bob Li", "")): authors are separated by commas and ` and ` outside
    parentheses; a parenthesised part (which may hold commas, ` and ` and nested parentheses) is
    the affiliation, several are joined with "; ". Numbered affiliations with a legend after the
    last author (`A (1), B (2) ((1) MIT, (2) Stanford)`) are resolved. TeX escapes are left as
    written: `clean_paper` reads them for every source. Unbalanced parentheses are plain text.
    """
    text = " ".join(creators.split())
    authors: list[tuple[str, list[str]]] = []
    for piece in _split_outside_parens(text):
        name, groups = _name_and_groups(piece)
        authors.append((name, groups))
    legend: dict[str, str] = {}
    if authors and authors[-1][1] and _LEGEND_START.match(authors[-1][1][-1]):
        legend = {n: a for n, a in _LEGEND_ENTRY.findall(authors[-1][1].pop())}
    result = []
    for name, groups in authors:
        if not name:
            continue  # a stray `(MIT)` or an empty piece between two commas
        affiliations = [_resolve(group, legend) for group in groups]
        result.append((name, "; ".join(a for a in affiliations if a)))
    return tuple(result)


def _split_outside_parens(text: str) -> list[str]:
    step = 1 if _balanced(text) else 0  # unbalanced parentheses do not protect anything
    parts, depth, last = [], 0, 0
    for token in _CREATOR_TOKEN.finditer(text):
        if token[0] == "(":
            depth += step
        elif token[0] == ")":
            depth -= step
        elif depth == 0:
            parts.append(text[last : token.start()])
            last = token.end()
    parts.append(text[last:])
    return [part.strip() for part in parts if part.strip()]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


def _name_and_groups(piece: str) -> tuple[str, list[str]]:
    """`A One (MIT, CSAIL) (Google)` → ("A One", ["MIT, CSAIL", "Google"])."""
    if not _balanced(piece):
        return piece, []
    name: list[str] = []
    groups: list[str] = []
    current: list[str] = []
    depth = 0
    for char in piece:
        if char == "(":
            depth += 1
            if depth == 1:
                current = []
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                groups.append(" ".join("".join(current).split()))
                name.append(" ")
                continue
        (current if depth else name).append(char)
    return " ".join("".join(name).split()), groups


def _resolve(group: str, legend: dict[str, str]) -> str:
    if legend and _LEGEND_REFS.fullmatch(group):
        numbers = re.findall(r"\d+", group)
        return "; ".join(legend.get(number, number) for number in numbers)
    return group


# --- XML ------------------------------------------------------------------------------------------

_HTML_START = re.compile(rb"\s*(?:<\?xml[^>]*>\s*)?<(?:!doctype\s+html|html)\b", re.I)


def _parse_xml(data: bytes, origin: str, expected: str) -> ET.Element:
    """The root element of `data`; SourceError naming `origin` when it is not XML at all."""
    if not data.strip():
        raise SourceError(f"{origin}: empty response, expected {expected}")
    if _HTML_START.match(data):
        raise SourceError(f"{origin}: got an HTML page, not {expected}")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        cut = " (cut short)" if exc.code in TRUNCATED_XML else ""
        raise SourceError(f"{origin}: malformed XML{cut}: {exc}") from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _collapse(text: str | None) -> str:
    """Whitespace runs, line breaks included, become one space; ends are stripped. No more is
    read than any field may keep (the cleaner cuts to each field's cap and says so)."""
    return " ".join(limits.read_prefix(text or "", limits.ABSTRACT_CHARS).split())


def _text(element: ET.Element, path: str) -> str:
    return _collapse(element.findtext(path))


# --- listing feed (RSS 2.0 or Atom) --------------------------------------------------------------

_DESCRIPTION_HEAD = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>\S+)\s*(?:Abstract:\s*)?", re.I
)
_OAI_PREFIX = re.compile(r"^oai:arXiv\.org:", re.I)
_ARXIV_URL = re.compile(r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)", re.I)


@dataclass(frozen=True, slots=True)
class ListedPaper:
    """One item of a listing feed, with how it was announced."""

    paper: Paper
    announce: str  # "new" | "cross" | "replace" | "replace-cross"


@dataclass(frozen=True, slots=True)
class _Item:
    """What one listing item says, read the same from RSS 2.0 and from Atom."""

    title: str
    description: str
    ids: tuple[str, ...]  # where the arXiv id may be, most trusted first
    categories: tuple[str, ...]
    published: date | None


def parse_listing_feed(data: bytes, origin: str = "arxiv listing") -> tuple[ListedPaper, ...]:
    """Parse an arXiv announcement feed, items in feed order: the RSS 2.0 form
    (https://rss.arxiv.org/rss/…) or the Atom form (https://rss.arxiv.org/atom/…).

    A weekend or holiday feed has no items: an empty tuple. A payload that is not XML, neither
    of the two forms, or has an item without an arXiv id or title raises SourceError naming
    `origin`.
    """
    root = _parse_xml(data, origin, "an RSS or Atom feed")
    channel = root.find("channel")
    if root.tag == "rss" and channel is not None:
        return tuple(_listed(_rss_item(item), item, origin) for item in channel.findall("item"))
    if root.tag == f"{ATOM}feed":
        entries = root.findall(f"{ATOM}entry")
        return tuple(_listed(_atom_item(entry), entry, origin) for entry in entries)
    raise SourceError(f"{origin}: not an RSS 2.0 or Atom feed (root element <{_local(root.tag)}>)")


def _rss_item(item: ET.Element) -> _Item:
    description = item.findtext("description") or ""
    return _Item(
        title=_text(item, "title"),
        description=description,
        ids=(_text(item, "guid"), _head_id(description), _text(item, "link")),
        categories=tuple(t for c in item.findall("category") if (t := _collapse(c.text))),
        published=_rss_date(item.findtext("pubDate")),
    )


def _atom_item(entry: ET.Element) -> _Item:
    description = entry.findtext(f"{ATOM}summary") or ""
    links = [
        (link.get("href") or "").strip()
        for link in entry.findall(f"{ATOM}link")
        if link.get("rel", "alternate") == "alternate"
    ]
    return _Item(
        title=_text(entry, f"{ATOM}title"),
        description=description,
        ids=(_text(entry, f"{ATOM}id"), _head_id(description), *links),
        categories=tuple(
            t for c in entry.findall(f"{ATOM}category") if (t := _collapse(c.get("term")))
        ),
        published=_iso_date(entry.findtext(f"{ATOM}published"))
        or _iso_date(entry.findtext(f"{ATOM}updated")),
    )


def _head_id(description: str) -> str:
    head = _DESCRIPTION_HEAD.match(description)
    return head["id"] if head else ""


def _listed(item: _Item, element: ET.Element, origin: str) -> ListedPaper:
    """The paper of one item; `element` holds the extension elements both forms share."""
    head = _DESCRIPTION_HEAD.match(item.description)
    listing_id = ""
    for candidate in item.ids:
        candidate = _OAI_PREFIX.sub("", candidate)
        if parse_arxiv_id(candidate)[0]:
            listing_id = _ARXIV_URL.sub("", candidate)
            break
    arxiv_id, version = parse_arxiv_id(listing_id)
    if not arxiv_id or not item.title:
        missing = "an arXiv id" if not arxiv_id else "a title"
        shown = (item.title or listing_id)[:80]
        raise SourceError(f"{origin}: an item without {missing} ({shown!r})")
    announce = (_text(element, f"{ARXIV}announce_type") or (head["type"] if head else "")).lower()
    announce = announce or "new"
    creators = split_creators(element.findtext(f"{DC}creator") or "")
    extra: dict[str, object] = {"announce_type": announce}
    if any(affiliation for _, affiliation in creators):
        extra["affiliations"] = [affiliation for _, affiliation in creators]
    # `arxiv:DOI` may hold several DOIs separated by spaces: the first is the paper's.
    doi = _DOI_PREFIX.sub("", (_text(element, f"{ARXIV}DOI").split(" ") or [""])[0]).lower()
    paper = Paper(
        key=paper_keys(arxiv_id, doi, item.title)[0],
        title=item.title,
        authors=tuple(name for name, _ in creators),
        abstract=_collapse(_DESCRIPTION_HEAD.sub("", item.description)),
        categories=tuple(dict.fromkeys(item.categories)),
        published=item.published,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        source="arxiv",
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        # A new submission is its first version even when the feed leaves the version out.
        version=version or (1 if announce == "new" else 0),
        doi=doi,
        extra=tuple(sorted(extra.items())),
    )
    return ListedPaper(paper, announce)


def _rss_date(value: str | None) -> date | None:
    """The calendar date of an RFC 822 date, in its own time zone (arXiv's announcement day)."""
    try:
        return parsedate_to_datetime(value).date() if value else None
    except (TypeError, ValueError):
        return None


# --- API feed (Atom + opensearch) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiPage:
    """One page of API results with its opensearch totals."""

    papers: tuple[Paper, ...]
    total: int  # opensearch:totalResults
    start: int  # opensearch:startIndex
    per_page: int  # opensearch:itemsPerPage


_DOI_PREFIX = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.I)


def parse_api_feed(data: bytes, origin: str = "arxiv api") -> ApiPage:
    """Parse an arXiv API Atom response; the error feed (HTTP 400) becomes SourceError with the
    error's summary. Zero entries (an unknown id, a query without results) is a valid page."""
    root = _parse_xml(data, origin, "an Atom feed")
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"{origin}: not an Atom feed (root element <{_local(root.tag)}>)")
    entries = root.findall(f"{ATOM}entry")
    for entry in entries:
        if _is_error(entry, len(entries)):
            problem = _text(entry, f"{ATOM}summary") or _text(entry, f"{ATOM}id")
            raise SourceError(f"{origin}: arXiv API error: {problem}")
    papers = tuple(_api_paper(entry, origin) for entry in entries)
    start = _opensearch(root, "startIndex", origin, 0)
    per_page = _opensearch(root, "itemsPerPage", origin, len(papers))
    return ApiPage(
        papers=papers,
        total=_opensearch(root, "totalResults", origin, start + len(papers)),
        start=start,
        per_page=per_page,
    )


def _is_error(entry: ET.Element, entries: int) -> bool:
    if "arxiv.org/api/errors" in _text(entry, f"{ATOM}id"):
        return True
    return entries == 1 and _text(entry, f"{ATOM}title") == "Error"


def _opensearch(root: ET.Element, name: str, origin: str, default: int) -> int:
    for namespace in _OPENSEARCH_NAMESPACES:
        found = root.find(f"{namespace}{name}")
        if found is not None:
            value = _collapse(found.text)
            if not value.isdigit():
                raise SourceError(f"{origin}: opensearch:{name} is not a number: {value[:40]!r}")
            return int(value)
    return default


def _api_paper(entry: ET.Element, origin: str) -> Paper:
    raw_id = _text(entry, f"{ATOM}id")
    arxiv_id, version = parse_arxiv_id(raw_id)
    title = _text(entry, f"{ATOM}title")
    if not arxiv_id:
        raise SourceError(f"{origin}: an entry whose id is not an arXiv id: {raw_id[:80]!r}")
    if not title:
        raise SourceError(f"{origin}: an entry without a title ({raw_id})")
    authors, affiliations = [], []
    for author in entry.findall(f"{ATOM}author"):
        name = _text(author, f"{ATOM}name")
        if name:
            authors.append(name)
            places = (_collapse(a.text) for a in author.findall(f"{ARXIV}affiliation"))
            affiliations.append("; ".join(p for p in places if p))
    pdf_url = doi_link = ""
    for link in entry.findall(f"{ATOM}link"):
        href = (link.get("href") or "").strip()
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = pdf_url or _https(href)
        elif link.get("title") == "doi":
            doi_link = doi_link or href
    primary = entry.find(f"{ARXIV}primary_category")
    primary_term = (primary.get("term") or "").strip() if primary is not None else ""
    terms = [(c.get("term") or "").strip() for c in entry.findall(f"{ATOM}category")]
    # `arxiv:doi` may hold several DOIs separated by spaces: the first is the paper's.
    doi = (_text(entry, f"{ARXIV}doi") or _DOI_PREFIX.sub("", doi_link)).split(" ")[0]
    updated = _iso_date(entry.findtext(f"{ATOM}updated"))
    extra: dict[str, object] = {
        "primary_category": primary_term,
        "comment": _text(entry, f"{ARXIV}comment"),
        "journal_ref": _text(entry, f"{ARXIV}journal_ref"),
        "pdf_url": pdf_url,
        "updated": updated.isoformat() if updated else "",
        "affiliations": affiliations if any(affiliations) else None,
    }
    return Paper(
        key=paper_keys(arxiv_id, "", title)[0],
        title=title,
        authors=tuple(authors),
        abstract=_text(entry, f"{ATOM}summary"),
        categories=tuple(dict.fromkeys(t for t in [primary_term, *terms] if t)),
        published=_iso_date(entry.findtext(f"{ATOM}published")),
        # The abs page without a version always shows the newest one.
        url=f"https://arxiv.org/abs/{arxiv_id}",
        source="arxiv-api",
        listing_id=f"{arxiv_id}v{version}" if version else arxiv_id,
        arxiv_id=arxiv_id,
        version=version,
        doi=_DOI_PREFIX.sub("", doi).lower(),
        extra=tuple(sorted((k, v) for k, v in extra.items() if v)),
    )


def _https(url: str) -> str:
    return "https://" + url.removeprefix("http://") if url.startswith("http://") else url


def _iso_date(text: str | None) -> date | None:
    """The date of an ISO 8601 timestamp (`2024-01-03T18:00:00Z`), as written."""
    value = (text or "").strip()
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None


# --- fetching -------------------------------------------------------------------------------------


class ArxivListingSource:
    """The daily announcements of the configured categories (one listing feed for all).

    New and (if configured) cross-listed papers are new; replacements only update papers already
    stored. With `since` in the context, backfills from the API by submission date instead.
    """

    name = "arxiv"

    def __init__(self, config: ArxivConfig) -> None:
        self.config = config

    @property
    def url(self) -> str:
        """The listing feed URL for all configured categories at once."""
        return self.config.listing_url.rstrip("/") + "/" + "+".join(self.config.categories)

    def fetch(self, context: FetchContext) -> FetchResult:
        """Read today's announcements (a 304 brings nothing), or backfill with `since`."""
        client = client_needed(context)
        if context.since is not None:
            categories = " OR ".join(f"cat:{c}" for c in self.config.categories)
            window = f"submittedDate:[{context.since:%Y%m%d}0000 TO {context.now:%Y%m%d}2359]"
            papers, warning = query_api(client, self.config, f"({categories}) AND {window}")
            return FetchResult(papers, warnings=(warning,) if warning else ())
        got = client.get(self.url, validators=context.validators.get(self.url))
        if got.not_modified:
            return FetchResult()
        listed = parse_listing_feed(got.content, origin=self.url)
        wanted = {"new", "cross"} if self.config.include_cross else {"new"}
        return FetchResult(
            papers=tuple(item.paper for item in listed if item.announce in wanted),
            updates=tuple(item.paper for item in listed if item.announce.startswith("replace")),
            validators={self.url: got.validators},
        )

    def probe(self) -> ProbeRequest:
        """The listing feed (doctor)."""
        return ProbeRequest(self.url)

    def read_probe(self, got: Fetched) -> tuple[str, int]:
        """The answer read as a listing (doctor)."""
        return "an arXiv listing", len(parse_listing_feed(got.content, origin=got.url))


class ArxivAuthorsSource:
    """Recent submissions of every followed author, by API `au:` queries, so a followed author's
    paper in a category you do not subscribe to still arrives."""

    name = "arxiv-authors"

    def __init__(self, config: ArxivConfig, authors: Sequence[FollowedAuthor]) -> None:
        self.config = config
        self.spellings = tuple(dict.fromkeys(n for a in authors for n in a.names))

    def fetch(self, context: FetchContext) -> FetchResult:
        """Every spelling of every followed author, newest first, back to `author_days` ago."""
        client = client_needed(context)
        oldest = context.since or (context.now - timedelta(days=self.config.author_days)).date()
        found: dict[str, Paper] = {}
        warnings: list[str] = []
        for spelling in self.spellings:
            query = 'au:"{}"'.format(spelling.replace('"', ""))
            papers, warning = query_api(client, self.config, query, oldest=oldest)
            for paper in papers:
                found.setdefault(paper.key, paper)
            warnings.extend([warning] if warning else [])
        return FetchResult(papers=tuple(found.values()), warnings=tuple(warnings))

    def probe(self) -> ProbeRequest:
        """One API query for the first followed spelling, one result (doctor)."""
        spelling = self.spellings[0].replace('"', "") if self.spellings else "digest"
        return ProbeRequest(
            self.config.api_url, {"search_query": f'au:"{spelling}"', "max_results": 1}
        )

    def read_probe(self, got: Fetched) -> tuple[str, int]:
        """The answer read as an API page (doctor)."""
        return "an arXiv API page", len(parse_api_feed(got.content, origin=got.url).papers)


def query_api(
    client: PoliteClient, config: ArxivConfig, query: str, *, oldest: date | None = None
) -> tuple[tuple[Paper, ...], str]:
    """All results of an API query, newest first, paged with `start`/`max_results`; stops at
    the last page, or at the first paper published before `oldest`. The second value is a
    warning when API_PAGE_LIMIT pages stopped it with results left ("" otherwise)."""
    papers: list[Paper] = []
    start = 0
    origin = f"{config.api_url} ({query})"
    for _ in range(API_PAGE_LIMIT):
        params: dict[str, str | int] = {
            "search_query": query,
            "start": start,
            "max_results": config.max_results,
            "sortBy": "submittedDate",
            "sortOrder": "descending",
        }
        got = client.get(config.api_url, params=params, accept=(200, 400))
        page = parse_api_feed(got.content, origin=origin)
        fresh = [p for p in page.papers if not (oldest and p.published and p.published < oldest)]
        papers.extend(fresh)
        start = page.start + len(page.papers)
        if not page.papers or start >= page.total or len(fresh) < len(page.papers):
            return tuple(papers), ""
    warning = (
        f"{origin}: stopped after {API_PAGE_LIMIT} pages of {config.max_results} "
        f"({start} of {page.total} results)"
    )
    return tuple(papers), warning
