"""Generic RSS and Atom feeds (journals, bioRxiv, blogs), parsed with feedparser."""

from __future__ import annotations

import html
import re
import xml.sax
from datetime import date
from typing import Any

import feedparser  # type: ignore[import-untyped]

from digest.errors import SourceError
from digest.models import Paper, paper_keys, parse_arxiv_id
from digest.sources import FetchContext, FetchResult, client_needed

_TAG = re.compile(r"<[^>]+>")
_DOI = re.compile(r"(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)", re.I)
_AUTHOR_SPLIT = re.compile(r"\s*(?:;|,|\band\b)\s*")


def plain_text(value: str) -> str:
    """HTML to one line of text: tags dropped, entities unescaped, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", value)).split())


def find_doi(*candidates: str) -> str:
    """The first DOI among `candidates` (`doi:10.…`, `https://doi.org/10.…`, bare), lower case."""
    for candidate in candidates:
        found = _DOI.search(candidate or "")
        if found:
            return found.group(1).rstrip(".,;").lower()
    return ""


def split_authors(value: str) -> tuple[str, ...]:
    """`A, B and C` or `A; B` as separate names."""
    return tuple(name for name in _AUTHOR_SPLIT.split(value.strip()) if name)


def parse_feed(data: bytes, origin: str, source_name: str) -> tuple[Paper, ...]:
    """Parse an RSS 1.0/2.0 or Atom feed; SourceError if it is malformed or not a feed."""
    parsed = feedparser.parse(data)
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        raise SourceError(f"{origin}: malformed feed: {problem}")
    if not parsed.get("version"):
        raise SourceError(f"{origin}: not an RSS or Atom feed")
    papers = [_paper_of(entry, source_name) for entry in parsed.entries]
    return tuple(p for p in papers if p is not None)


def _paper_of(entry: Any, source_name: str) -> Paper | None:
    title = plain_text(entry.get("title", ""))
    link = entry.get("link", "")
    if not title:
        return None
    content = entry.get("content") or []
    abstract = plain_text(
        entry.get("summary", "") or (content[0].get("value", "") if content else "")
    )
    entry_id = entry.get("id", "") or link
    arxiv_id, version = ("", 0)
    for candidate in (link, entry_id):
        if "arxiv.org/abs/" in candidate:
            arxiv_id, version = parse_arxiv_id(candidate)
            break
    doi = find_doi(entry.get("prism_doi", ""), entry.get("dc_identifier", ""), link, entry_id)
    return Paper(
        key=paper_keys(arxiv_id, doi, title)[0],
        title=title,
        authors=_authors_of(entry),
        abstract=abstract,
        categories=tuple(t.get("term", "") for t in entry.get("tags", []) if t.get("term")),
        published=_date_of(entry),
        url=link,
        source=source_name,
        listing_id=entry_id,
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
    )


def _authors_of(entry: Any) -> tuple[str, ...]:
    names = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if len(names) == 1:  # one string holding several names
        return split_authors(names[0])
    if names:
        return tuple(n.strip() for n in names)
    return split_authors(entry.get("author", ""))


def _date_of(entry: Any) -> date | None:
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    return date(moment.tm_year, moment.tm_mon, moment.tm_mday) if moment else None


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
        papers = parse_feed(got.content, origin=self.url, source_name=self.name)
        return FetchResult(papers=papers, validators={self.url: got.validators})
