"""arXiv: the daily announcement feeds per category, and the API (followed authors, backfill).

Parsers are pure functions over bytes and read XML by namespace, never by prefix or element
order (the 2026 API responses reordered elements and changed prefixes).
"""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime

from digest.errors import SourceError
from digest.http import PoliteClient
from digest.models import FollowedAuthor, Paper, paper_keys, parse_arxiv_id
from digest.settings import ArxivConfig
from digest.sources import FetchContext, FetchResult, client_needed

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
DC = "{http://purl.org/dc/elements/1.1/}"
API_PAGE_LIMIT = 20  # never page forever: at most this many API pages per query

# TeX accent commands and the combining mark each one puts on the next letter.
_ACCENTS = {
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    '"': "\u0308",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
}
_LETTERS = {
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "i": "ı",
    "j": "ȷ",
}
_TEX_ACCENT = re.compile(r"\\([`'^\"~=.]|[uvHckr](?![A-Za-z]))\s*\{?\\?([A-Za-z])\}?")
_TEX_LETTER = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|[oOlLij])(?![A-Za-z])\s?")
_DESCRIPTION_HEAD = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*(?:Abstract:\s*)?", re.I)


def detex(text: str) -> str:
    """TeX accent escapes to Unicode: `Andr\\'e` → André, `M\\"uller` → Müller, `\\ss` → ß."""
    text = _TEX_ACCENT.sub(lambda m: unicodedata.normalize("NFC", m[2] + _ACCENTS[m[1]]), text)
    text = _TEX_LETTER.sub(lambda m: _LETTERS[m[1]], text)
    return text.replace("{", "").replace("}", "") if "\\" not in text else text


def _collapse(text: str | None) -> str:
    return " ".join((text or "").split())


def split_creators(creators: str) -> tuple[tuple[str, str], ...]:
    """`A (MIT, CSAIL), B and C` → ((A, "MIT, CSAIL"), (B, ""), (C, "")): split at commas and
    `and` outside parentheses; the parenthesised part is the affiliation."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in _collapse(creators):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    names: list[tuple[str, str]] = []
    for part in parts:
        for piece in re.split(r"\s+and\s+(?![^()]*\))", part.strip()):
            piece = piece.strip()
            if not piece:
                continue
            found = re.fullmatch(r"(.*?)\s*\((.*)\)", piece)
            name, affiliation = (found[1], found[2]) if found else (piece, "")
            names.append((detex(name.strip()), detex(_collapse(affiliation))))
    return tuple(names)


def _parse_xml(data: bytes, origin: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise SourceError(f"{origin}: malformed XML: {exc}") from None


@dataclass(frozen=True, slots=True)
class ListedPaper:
    """One item of a listing feed, with how it was announced."""

    paper: Paper
    announce: str  # "new" | "cross" | "replace" | "replace-cross"


def parse_listing_feed(data: bytes, origin: str = "arxiv listing") -> tuple[ListedPaper, ...]:
    """Parse an arXiv announcement feed (RSS 2.0). A weekend feed has no items: empty."""
    root = _parse_xml(data, origin)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise SourceError(f"{origin}: not an arXiv RSS feed")
    return tuple(_listed(item, origin) for item in channel.iter("item"))


def _listed(item: ET.Element, origin: str) -> ListedPaper:
    guid = item.findtext("guid") or ""
    description = item.findtext("description") or ""
    listing_id = ""
    for candidate in (
        guid.removeprefix("oai:arXiv.org:"),
        description.split()[0:1],
        item.findtext("link") or "",
    ):
        text = candidate[0] if isinstance(candidate, list) and candidate else candidate
        if isinstance(text, str) and parse_arxiv_id(text.removeprefix("arXiv:"))[0]:
            listing_id = text.removeprefix("arXiv:")
            break
    arxiv_id, version = parse_arxiv_id(listing_id)
    title = _collapse(item.findtext("title"))
    if not arxiv_id or not title:
        raise SourceError(f"{origin}: an item without an arXiv id or title")
    creators = split_creators(item.findtext(f"{DC}creator") or "")
    announce = _collapse(item.findtext(f"{ARXIV}announce_type")).lower() or "new"
    extra: dict[str, object] = {"announce_type": announce}
    if any(affiliation for _, affiliation in creators):
        extra["affiliations"] = [affiliation for _, affiliation in creators]
    paper = Paper(
        key=paper_keys(arxiv_id, "", title)[0],
        title=title,
        authors=tuple(name for name, _ in creators),
        abstract=_collapse(_DESCRIPTION_HEAD.sub("", description)),
        categories=tuple(_collapse(c.text) for c in item.findall("category") if c.text),
        published=_rss_date(item.findtext("pubDate")),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        source="arxiv",
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        version=version or 1,
        extra=tuple(sorted(extra.items())),
    )
    return ListedPaper(paper, announce)


def _rss_date(value: str | None) -> date | None:
    try:
        return parsedate_to_datetime(value).date() if value else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ApiPage:
    """One page of API results with its opensearch totals."""

    papers: tuple[Paper, ...]
    total: int
    start: int
    per_page: int


def parse_api_feed(data: bytes, origin: str = "arxiv api") -> ApiPage:
    """Parse an arXiv API Atom response; the error feed (HTTP 400) becomes SourceError."""
    root = _parse_xml(data, origin)
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"{origin}: not an Atom feed")
    entries = root.findall(f"{ATOM}entry")
    if len(entries) == 1 and _collapse(entries[0].findtext(f"{ATOM}title")) == "Error":
        summary = _collapse(entries[0].findtext(f"{ATOM}summary"))
        raise SourceError(f"{origin}: arXiv API error: {summary}")
    return ApiPage(
        papers=tuple(_api_paper(entry, origin) for entry in entries),
        total=_int(root.findtext(f"{OPENSEARCH}totalResults")),
        start=_int(root.findtext(f"{OPENSEARCH}startIndex")),
        per_page=_int(root.findtext(f"{OPENSEARCH}itemsPerPage")),
    )


def _int(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0


def _api_paper(entry: ET.Element, origin: str) -> Paper:
    arxiv_id, version = parse_arxiv_id(_collapse(entry.findtext(f"{ATOM}id")))
    title = _collapse(entry.findtext(f"{ATOM}title"))
    if not arxiv_id or not title:
        raise SourceError(f"{origin}: an entry without an arXiv id or title")
    authors, affiliations = [], []
    for author in entry.findall(f"{ATOM}author"):
        authors.append(detex(_collapse(author.findtext(f"{ATOM}name"))))
        affiliations.append(
            ", ".join(_collapse(a.text) for a in author.findall(f"{ARXIV}affiliation"))
        )
    # The abs page without a version always shows the newest; 2026 responses use https.
    url, pdf_url = f"https://arxiv.org/abs/{arxiv_id}", ""
    for link in entry.findall(f"{ATOM}link"):
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = link.get("href", "").replace("http://", "https://", 1)
    primary = entry.find(f"{ARXIV}primary_category")
    primary_term = primary.get("term", "") if primary is not None else ""
    terms = [c.get("term", "") for c in entry.findall(f"{ATOM}category")]
    extra = {
        "primary_category": primary_term,
        "comment": _collapse(entry.findtext(f"{ARXIV}comment")),
        "journal_ref": _collapse(entry.findtext(f"{ARXIV}journal_ref")),
        "pdf_url": pdf_url,
        "updated": (entry.findtext(f"{ATOM}updated") or "")[:10],
        "affiliations": affiliations if any(affiliations) else None,
    }
    return Paper(
        key=paper_keys(arxiv_id, "", title)[0],
        title=title,
        authors=tuple(authors),
        abstract=_collapse(entry.findtext(f"{ATOM}summary")),
        categories=tuple(dict.fromkeys(t for t in [primary_term, *terms] if t)),
        published=_iso_date(entry.findtext(f"{ATOM}published")),
        url=url,
        source="arxiv-api",
        listing_id=f"{arxiv_id}v{version}" if version else arxiv_id,
        arxiv_id=arxiv_id,
        version=version,
        doi=_collapse(entry.findtext(f"{ARXIV}doi")).lower(),
        extra=tuple(sorted((k, v) for k, v in extra.items() if v)),
    )


def _iso_date(text: str | None) -> date | None:
    try:
        return datetime.fromisoformat((text or "").strip().replace("Z", "+00:00")).date()
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
            return FetchResult(query_api(client, self.config, f"({categories}) AND {window}"))
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
        for spelling in self.spellings:
            query = 'au:"{}"'.format(spelling.replace('"', ""))
            for paper in query_api(client, self.config, query, oldest=oldest):
                found.setdefault(paper.key, paper)
        return FetchResult(papers=tuple(found.values()))


def query_api(
    client: PoliteClient, config: ArxivConfig, query: str, *, oldest: date | None = None
) -> tuple[Paper, ...]:
    """All results of an API query, newest first, paged with `start`/`max_results`; stops at
    the last page, or at the first paper published before `oldest`."""
    papers: list[Paper] = []
    start = 0
    for _ in range(API_PAGE_LIMIT):
        params: dict[str, str | int] = {
            "search_query": query,
            "start": start,
            "max_results": config.max_results,
            "sortBy": "submittedDate",
            "sortOrder": "descending",
        }
        got = client.get(config.api_url, params=params, accept=(200, 400))
        page = parse_api_feed(got.content, origin=f"{config.api_url} ({query})")
        fresh = [p for p in page.papers if not (oldest and p.published and p.published < oldest)]
        papers.extend(fresh)
        start = page.start + len(page.papers)
        if not page.papers or start >= page.total or len(fresh) < len(page.papers):
            break
    return tuple(papers)
