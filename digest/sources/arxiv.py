"""arXiv: the daily announcement feeds per category, and the API (followed authors, backfill).

Parsers are pure functions over bytes and read XML by namespace, never by prefix or element
order (the 2026 API responses reordered elements, changed prefixes, switched links to https and
sometimes mark the PDF link by its type alone).

- `parse_listing_feed`: the announcement feed, https://rss.arxiv.org/rss/cs.LG+cs.CL (RSS 2.0,
  since 2024) or https://rss.arxiv.org/atom/cs.LG+cs.CL (the same in Atom). One item per
  announced paper, with `arxiv:announce_type` new, cross, replace or replace-cross and an
  optional `arxiv:DOI`; authors are one `dc:creator` string (`split_creators`, in
  `arxiv_creators`; TeX in names is read later, by `clean_paper`). A weekend or holiday feed
  has no items.
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
from digest.sources.arxiv_creators import split_creators as split_creators  # re-exported
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
    """An element tag without its `{namespace}`."""
    return tag.rpartition("}")[2]


def _collapse(text: str | None) -> str:
    """Whitespace runs, line breaks included, become one space; ends are stripped. No more is
    read than any field may keep (the cleaner cuts to each field's cap and says so)."""
    return " ".join(limits.read_prefix(text or "", limits.ABSTRACT_CHARS).split())


def _text(element: ET.Element, path: str) -> str:
    """The collapsed text of the first element at `path` ("" if there is none)."""
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
    """What an RSS 2.0 `<item>` says."""
    description = item.findtext("description", "")
    return _Item(
        title=_text(item, "title"),
        description=description,
        ids=(_text(item, "guid"), _head_id(description), _text(item, "link")),
        categories=tuple(t for c in item.findall("category") if (t := _collapse(c.text))),
        published=_rss_date(item.findtext("pubDate")),
    )


def _atom_item(entry: ET.Element) -> _Item:
    """What an Atom `<entry>` of the listing says."""
    description = entry.findtext(f"{ATOM}summary", "")
    return _Item(
        title=_text(entry, f"{ATOM}title"),
        description=description,
        ids=(_text(entry, f"{ATOM}id"), _head_id(description), *_alternate_hrefs(entry)),
        categories=tuple(
            t for c in entry.findall(f"{ATOM}category") if (t := _collapse(c.get("term")))
        ),
        published=_iso_date(entry.findtext(f"{ATOM}published"))
        or _iso_date(entry.findtext(f"{ATOM}updated")),
    )


def _alternate_hrefs(entry: ET.Element) -> list[str]:
    """The addresses of an Atom entry's alternate links (a link without `rel` is one)."""
    return [
        link.get("href", "").strip()
        for link in entry.findall(f"{ATOM}link")
        if link.get("rel", "alternate") == "alternate"
    ]


def _head_id(description: str) -> str:
    """The arXiv id at the head of a listing description (`arXiv:2401.01234v1 …`), or ""."""
    head = _DESCRIPTION_HEAD.match(description)
    return head["id"] if head else ""


def _listed(item: _Item, element: ET.Element, origin: str) -> ListedPaper:
    """The paper of one item; `element` holds the extension elements both forms share."""
    listing_id = _listing_id(item.ids)
    arxiv_id, version = parse_arxiv_id(listing_id)
    _require_id_and_title(item.title, arxiv_id, listing_id, origin)
    announce = _announce_type(element, item.description)
    creators = split_creators(element.findtext(f"{DC}creator", ""))
    doi = _listing_doi(element)
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
        extra=_listing_extra(announce, creators),
    )
    return ListedPaper(paper, announce)


def _require_id_and_title(title: str, arxiv_id: str, listing_id: str, origin: str) -> None:
    """SourceError naming `origin` for an item without an arXiv id or without a title."""
    if arxiv_id and title:
        return
    missing = "an arXiv id" if not arxiv_id else "a title"
    shown = (title or listing_id)[:80]
    raise SourceError(f"{origin}: an item without {missing} ({shown!r})")


def _listing_id(candidates: tuple[str, ...]) -> str:
    """The first candidate that is an arXiv id (OAI prefix and arXiv URL removed), or ""."""
    for candidate in candidates:
        candidate = _OAI_PREFIX.sub("", candidate)
        if parse_arxiv_id(candidate)[0]:
            return _ARXIV_URL.sub("", candidate)
    return ""


def _announce_type(element: ET.Element, description: str) -> str:
    """How the item was announced, lower case: `arxiv:announce_type`, else the description's
    head, else "new"."""
    announce = _text(element, f"{ARXIV}announce_type")
    if not announce:
        head = _DESCRIPTION_HEAD.match(description)
        announce = head["type"] if head else ""
    return announce.lower() or "new"


def _listing_doi(element: ET.Element) -> str:
    """The item's DOI, lower case, without a `doi:` or doi.org prefix; "" if none."""
    # `arxiv:DOI` may hold several DOIs separated by spaces: the first is the paper's.
    first = _text(element, f"{ARXIV}DOI").split(" ")[0]
    return _DOI_PREFIX.sub("", first).lower()


def _listing_extra(
    announce: str, creators: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, object], ...]:
    """A listed paper's extras: its announce type, and the authors' affiliations if any."""
    extra: dict[str, object] = {"announce_type": announce}
    if any(affiliation for _, affiliation in creators):
        extra["affiliations"] = [affiliation for _, affiliation in creators]
    return tuple(sorted(extra.items()))


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
    _raise_api_error(entries, origin)
    papers = tuple(_api_paper(entry, origin) for entry in entries)
    start = _opensearch(root, "startIndex", origin, 0)
    per_page = _opensearch(root, "itemsPerPage", origin, len(papers))
    return ApiPage(
        papers=papers,
        total=_opensearch(root, "totalResults", origin, start + len(papers)),
        start=start,
        per_page=per_page,
    )


def _raise_api_error(entries: list[ET.Element], origin: str) -> None:
    """SourceError with the API's own message when one of `entries` is the error entry."""
    for entry in entries:
        if _is_error(entry, len(entries)):
            problem = _text(entry, f"{ATOM}summary") or _text(entry, f"{ATOM}id")
            raise SourceError(f"{origin}: arXiv API error: {problem}")


def _is_error(entry: ET.Element, entries: int) -> bool:
    """Whether an API entry is the error the API answers a bad query with."""
    if "arxiv.org/api/errors" in _text(entry, f"{ATOM}id"):
        return True
    return entries == 1 and _text(entry, f"{ATOM}title") == "Error"


def _opensearch(root: ET.Element, name: str, origin: str, default: int) -> int:
    """The number in `opensearch:name` under either namespace, else `default`."""
    for namespace in _OPENSEARCH_NAMESPACES:
        found = root.find(f"{namespace}{name}")
        if found is not None:
            value = _collapse(found.text)
            if not value.isdigit():
                raise SourceError(f"{origin}: opensearch:{name} is not a number: {value[:40]!r}")
            return int(value)
    return default


@dataclass(frozen=True, slots=True)
class _ApiLinks:
    """The links of one API entry that digest keeps: its PDF (made https) and its DOI link."""

    pdf_url: str
    doi_link: str


def _api_paper(entry: ET.Element, origin: str) -> Paper:
    """The paper of one API entry; SourceError naming `origin` without an arXiv id or title."""
    raw_id = _text(entry, f"{ATOM}id")
    arxiv_id, version = parse_arxiv_id(raw_id)
    title = _text(entry, f"{ATOM}title")
    if not arxiv_id:
        raise SourceError(f"{origin}: an entry whose id is not an arXiv id: {raw_id[:80]!r}")
    if not title:
        raise SourceError(f"{origin}: an entry without a title ({raw_id})")
    authors, affiliations = _api_authors(entry)
    links = _api_links(entry)
    primary_term, categories = _api_categories(entry)
    return Paper(
        key=paper_keys(arxiv_id, "", title)[0],
        title=title,
        authors=authors,
        abstract=_text(entry, f"{ATOM}summary"),
        categories=categories,
        published=_iso_date(entry.findtext(f"{ATOM}published")),
        # The abs page without a version always shows the newest one.
        url=f"https://arxiv.org/abs/{arxiv_id}",
        source="arxiv-api",
        listing_id=f"{arxiv_id}v{version}" if version else arxiv_id,
        arxiv_id=arxiv_id,
        version=version,
        doi=_api_doi(entry, links.doi_link),
        extra=_api_extra(entry, primary_term, links.pdf_url, affiliations),
    )


def _api_authors(entry: ET.Element) -> tuple[tuple[str, ...], list[str]]:
    """The named authors of an API entry, and each one's affiliations joined with "; "."""
    authors: list[str] = []
    affiliations: list[str] = []
    for author in entry.findall(f"{ATOM}author"):
        name = _text(author, f"{ATOM}name")
        if name:
            authors.append(name)
            affiliations.append(_affiliations_of(author))
    return tuple(authors), affiliations


def _affiliations_of(author: ET.Element) -> str:
    """An API author's `arxiv:affiliation`s, joined with "; " ("" without any)."""
    places = (_collapse(a.text) for a in author.findall(f"{ARXIV}affiliation"))
    return "; ".join(p for p in places if p)


def _api_categories(entry: ET.Element) -> tuple[str, tuple[str, ...]]:
    """The entry's primary category ("" if none), and all its categories, the primary first."""
    primary = entry.find(f"{ARXIV}primary_category")
    primary_term = primary.get("term", "").strip() if primary is not None else ""
    terms = [c.get("term", "").strip() for c in entry.findall(f"{ATOM}category")]
    return primary_term, tuple(dict.fromkeys(t for t in [primary_term, *terms] if t))


def _api_doi(entry: ET.Element, doi_link: str) -> str:
    """The entry's DOI, lower case and without prefix: `arxiv:doi`, else its DOI link's."""
    # `arxiv:doi` may hold several DOIs separated by spaces: the first is the paper's.
    doi = (_text(entry, f"{ARXIV}doi") or _DOI_PREFIX.sub("", doi_link)).split(" ")[0]
    return _DOI_PREFIX.sub("", doi).lower()


def _api_links(entry: ET.Element) -> _ApiLinks:
    """The first PDF link (by its title or by its type alone) and the first DOI link."""
    pdf_url = doi_link = ""
    for link in entry.findall(f"{ATOM}link"):
        href = link.get("href", "").strip()
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = pdf_url or _https(href)
        elif link.get("title") == "doi":
            doi_link = doi_link or href
    return _ApiLinks(pdf_url, doi_link)


def _api_extra(
    entry: ET.Element, primary_term: str, pdf_url: str, affiliations: list[str]
) -> tuple[tuple[str, object], ...]:
    """An API paper's non-empty extras, sorted by name."""
    updated = _iso_date(entry.findtext(f"{ATOM}updated"))
    extra: dict[str, object] = {
        "primary_category": primary_term,
        "comment": _text(entry, f"{ARXIV}comment"),
        "journal_ref": _text(entry, f"{ARXIV}journal_ref"),
        "pdf_url": pdf_url,
        "updated": updated.isoformat() if updated else "",
        "affiliations": affiliations if any(affiliations) else None,
    }
    return tuple(sorted((k, v) for k, v in extra.items() if v))


def _https(url: str) -> str:
    """`url` with `http://` made `https://`."""
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
            return self._backfill(client, context.since, context.now)
        got = client.get(self.url, validators=context.validators.get(self.url))
        if got.not_modified:
            return FetchResult()
        listed = parse_listing_feed(got.content, origin=self.url)
        papers, updates = self._announced(listed)
        return FetchResult(papers, updates, validators={self.url: got.validators})

    def _announced(
        self, listed: tuple[ListedPaper, ...]
    ) -> tuple[tuple[Paper, ...], tuple[Paper, ...]]:
        """New papers (cross-listed ones too if configured) to store, replacements to update."""
        wanted = {"new", "cross"} if self.config.include_cross else {"new"}
        papers = tuple(item.paper for item in listed if item.announce in wanted)
        updates = tuple(item.paper for item in listed if item.announce.startswith("replace"))
        return papers, updates

    def _backfill(self, client: PoliteClient, since: date, now: datetime) -> FetchResult:
        """The configured categories' submissions from `since` to `now`, from the API."""
        categories = " OR ".join(f"cat:{c}" for c in self.config.categories)
        window = f"submittedDate:[{since:%Y%m%d}0000 TO {now:%Y%m%d}2359]"
        papers, warning = query_api(client, self.config, f"({categories}) AND {window}")
        return FetchResult(papers, warnings=(warning,) if warning else ())

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
        params = _page_params(query, start, config.max_results)
        got = client.get(config.api_url, params=params, accept=(200, 400))
        page = parse_api_feed(got.content, origin=origin)
        fresh = _published_since(page.papers, oldest)
        papers.extend(fresh)
        start = page.start + len(page.papers)
        if not page.papers or start >= page.total or len(fresh) < len(page.papers):
            return tuple(papers), ""
    warning = (
        f"{origin}: stopped after {API_PAGE_LIMIT} pages of {config.max_results} "
        f"({start} of {page.total} results)"
    )
    return tuple(papers), warning


def _page_params(query: str, start: int, max_results: int) -> dict[str, str | int]:
    """The API parameters of one page of `query`'s results, newest submissions first."""
    return {
        "search_query": query,
        "start": start,
        "max_results": max_results,
        "sortBy": "submittedDate",
        "sortOrder": "descending",
    }


def _published_since(papers: tuple[Paper, ...], oldest: date | None) -> list[Paper]:
    """`papers` without those published before `oldest` (all of them when it is None)."""
    if oldest is None:
        return list(papers)
    return [p for p in papers if not (p.published and p.published < oldest)]
