"""OpenAlex payloads read into the project's records: pure functions over bytes and JSON values.

Payload oddities handled here: abstracts as an inverted index (word → positions; positions may
repeat; the index may be null), ids as URLs (`https://openalex.org/A…`, `https://orcid.org/…`,
`https://doi.org/…`), arXiv ids from `10.48550/arxiv.*` DOIs and arxiv.org landing pages,
truncated author lists (`is_authors_truncated`), authors without ORCID or without any id.

`parse_works` reads a `/works` list page, `parse_authors` an `/authors?search=` page; the
fetching is `digest.sources.openalex`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from digest import limits
from digest.errors import SourceError
from digest.ids import arxiv_of_doi, normalise_doi, openalex_id_or_blank, orcid_or_blank
from digest.models import Paper, paper_keys, parse_arxiv_id
from digest.sources.base import load_json
from digest.sources.clean import clean_text

_ARXIV_URL = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/([^?#]+)", re.I)
_Parsed = TypeVar("_Parsed")


# --- works ----------------------------------------------------------------------------------------


def rebuild_abstract(index: Any) -> str:
    """The abstract an `abstract_inverted_index` encodes: each word at its positions, in order.

    Null (or anything but an object) is "". A position given twice keeps the first word that
    claims it; positions that are not integers are ignored; a gap is simply closed up.

    Bounded whatever the index holds: positions from `limits.ABSTRACT_POSITIONS` on are not
    placed (so one word repeated at millions of positions cannot make an abstract of megabytes),
    and the text stops a word past `limits.ABSTRACT_CHARS`, so the cleaner sees it is too long,
    cuts it and says so.
    """
    if not isinstance(index, dict):
        return ""
    at, beyond = _placed_words(index)
    words = [at[p] for p in sorted(at)]
    # The first word past the positions placed is appended when the index reaches past them,
    # so a cut abstract is longer than the cap and the cleaner reports the cut.
    if beyond is not None:
        words.append(beyond)
    return _capped_text(words)


def _placed_words(index: dict[Any, Any]) -> tuple[dict[int, str], str | None]:
    """Each position below `limits.ABSTRACT_POSITIONS` with the first word claiming it, and the
    word at the smallest position past them (None when no position lies past them)."""
    cap = limits.ABSTRACT_POSITIONS
    at: dict[int, str] = {}
    beyond: tuple[float, str | None] = (math.inf, None)
    for word, positions in index.items():
        if not isinstance(word, str) or not isinstance(positions, list):
            continue
        for position in positions:
            if not isinstance(position, int) or isinstance(position, bool):
                continue
            if 0 <= position < cap:
                at.setdefault(position, word)
            elif cap <= position < beyond[0]:
                beyond = (position, word)
    return at, beyond[1]


def _capped_text(words: list[str]) -> str:
    """The words joined by single spaces, stopped a word past `limits.ABSTRACT_CHARS` and cut
    one character past it."""
    pieces: list[str] = []
    size = 0
    for word in words:
        for piece in limits.read_prefix(word, limits.ABSTRACT_CHARS).split():
            pieces.append(piece)
            size += len(piece) + 1
        if size > limits.ABSTRACT_CHARS + 1:
            break
    return " ".join(pieces)[: limits.ABSTRACT_CHARS + 1]


@dataclass(frozen=True, slots=True)
class WorksPage:
    """One page of `/works`: its papers, the cursor of the next page, the total count."""

    papers: tuple[Paper, ...]
    next_cursor: str | None
    count: int | None
    skipped: int = 0  # results without a title (nothing to show)

    @property
    def next_page(self) -> str | None:
        """The cursor to ask for next; None when no page follows: there is no next cursor, or
        this page held no results at all (a server ignoring the cursor would page on forever)."""
        return None if not self.papers and not self.skipped else self.next_cursor


def parse_works(data: bytes, origin: str = "openalex") -> WorksPage:
    """Parse one `/works` list page; the whole payload or SourceError naming `origin`."""
    payload = load_json(data, origin)
    parsed = _each_result(_results(payload, origin), origin, paper_of_work)
    papers = tuple(paper for paper in parsed if paper is not None)
    meta = _object(payload.get("meta"))
    return WorksPage(
        papers,
        _nonblank(meta.get("next_cursor")),
        _count(meta.get("count")),
        len(parsed) - len(papers),
    )


def _results(payload: Any, origin: str) -> list[Any]:
    """The `results` list of a list page; SourceError naming `origin` when there is none."""
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise SourceError(f"{origin}: expected an object with a 'results' list")
    results: list[Any] = payload["results"]
    return results


def _each_result(
    results: list[Any], origin: str, parse: Callable[[dict[str, Any]], _Parsed]
) -> list[_Parsed]:
    """Every result object read by `parse`; SourceError naming `origin` and the result's number
    for the first that is not an object or that `parse` refuses (ValueError)."""
    parsed: list[_Parsed] = []
    for number, item in enumerate(results, start=1):
        if not isinstance(item, dict):
            raise SourceError(f"{origin}: result {number}: expected an object")
        try:
            parsed.append(parse(item))
        except ValueError as exc:
            raise SourceError(f"{origin}: result {number}: {exc}") from None
    return parsed


def paper_of_work(work: Mapping[str, Any]) -> Paper | None:
    """The Paper of one OpenAlex work; None for a work without a title."""
    work_id = openalex_id_or_blank(work.get("id"), "W")
    if not work_id:
        raise ValueError("work without an OpenAlex id")
    title = _text(work.get("display_name")) or _text(work.get("title"))
    if not title:
        return None
    arxiv_id, doi = _arxiv_and_doi(work)
    authors = _authorships(work.get("authorships"))
    extra: dict[str, Any] = {
        "openalex_id": work_id,
        "cited_by_count": _count(work.get("cited_by_count")),
    }
    return Paper(
        key=paper_keys(arxiv_id, doi, title)[0],
        title=title,
        authors=authors.names,
        abstract=rebuild_abstract(work.get("abstract_inverted_index")),
        published=_date(work.get("publication_date")),
        url=_landing_page(work, doi, work_id),
        source="openalex",
        listing_id=work_id,
        arxiv_id=arxiv_id,
        doi=doi,
        authors_truncated=work.get("is_authors_truncated") is True,
        extra=tuple(sorted((k, v) for k, v in extra.items() if v is not None)),
        author_ids=authors.ids,
        author_orcids=authors.orcids,
        referenced=_referenced(work.get("referenced_works")),
    )


def _arxiv_and_doi(work: Mapping[str, Any]) -> tuple[str, str]:
    """The work's arXiv id and DOI: no DOI when it is arXiv's own (it names the arXiv id, and
    the paper is known by that), else an arXiv id from the work's locations, if any."""
    doi = normalise_doi(_text(work.get("doi")))
    arxiv_id = arxiv_of_doi(doi)
    if arxiv_id:
        return arxiv_id, ""
    return _arxiv_of_locations(work), doi


@dataclass(slots=True)  # not frozen: one is built per work, and frozen ones build slower
class _Authorships:
    """The named authors of a work, with their OpenAlex ids and ORCIDs ("" for an author
    without one; both empty when no author has any)."""

    names: tuple[str, ...]
    ids: tuple[str, ...]
    orcids: tuple[str, ...]


def _authorships(value: Any) -> _Authorships:
    """The authors of an `authorships` list, those without any name left out."""
    names: list[str] = []
    ids: list[str] = []
    orcids: list[str] = []
    for entry in _list(value):
        if not isinstance(entry, dict):
            continue
        author = _object(entry.get("author"))
        name = _text(author.get("display_name")) or _text(entry.get("raw_author_name"))
        if not name:
            continue
        names.append(name)
        ids.append(openalex_id_or_blank(author.get("id"), "A"))
        orcids.append(orcid_or_blank(author.get("orcid")))
    return _Authorships(tuple(names), _if_any(ids), _if_any(orcids))


def _if_any(values: list[str]) -> tuple[str, ...]:
    """`values`, or nothing when they are all blank."""
    return tuple(values) if any(values) else ()


def _referenced(value: Any) -> tuple[str, ...]:
    """The work ids of a `referenced_works` list, once each, in order."""
    return tuple(dict.fromkeys(w for r in _list(value) if (w := openalex_id_or_blank(r, "W"))))


def _arxiv_of_locations(work: Mapping[str, Any]) -> str:
    """An arXiv id from an arxiv.org landing page or PDF link among the work's locations."""
    places = [work.get("primary_location"), *_list(work.get("locations"))]
    for place in places:
        if not isinstance(place, dict):
            continue
        for name in ("landing_page_url", "pdf_url"):
            found = _ARXIV_URL.match(_text(place.get(name)))
            if found:
                arxiv_id, _ = parse_arxiv_id(found.group(1))
                if arxiv_id:
                    return arxiv_id
    return ""


def _landing_page(work: Mapping[str, Any], doi: str, work_id: str) -> str:
    """The primary location's web page, else the DOI's, else the work's page on OpenAlex."""
    primary = work.get("primary_location")
    if isinstance(primary, dict):
        url = _text(primary.get("landing_page_url"))
        if url.startswith(("https://", "http://")):
            return url
    return f"https://doi.org/{doi}" if doi else f"https://openalex.org/{work_id}"


def _text(value: Any) -> str:
    """A string with its whitespace collapsed, read no further than any field may keep."""
    if not isinstance(value, str):
        return ""
    return " ".join(limits.read_prefix(value, limits.ABSTRACT_CHARS).split())


def _object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _count(value: Any) -> int | None:
    """`value` if it is an integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _nonblank(value: Any) -> str | None:
    """`value` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _date(value: Any) -> date | None:
    """The date of a `publication_date`; None when there is none, ValueError when malformed."""
    text = _text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"'publication_date' is not an ISO date: {text[:40]!r}") from None


# --- authors (`digest author search`) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorCandidate:
    """One OpenAlex author a name may mean, with what tells people apart."""

    openalex: str
    name: str
    orcid: str = ""
    institution: str = ""
    works_count: int = 0
    topics: tuple[str, ...] = ()
    recent_title: str = ""


# What `digest author search` shows of each candidate: the server's text is printed to a
# terminal, so it is cleaned of controls (escapes, bidi overrides) and cut to these lengths.
SHOWN_NAME_CHARS = 200
SHOWN_TOPIC_CHARS = 100
SHOWN_TITLE_CHARS = 300


def shown(value: str, limit: int) -> str:
    """Remote text as it may be printed: no control characters (C0, C1, ESC sequences' start,
    bidi embeddings, overrides and isolates), one line, at most `limit` characters."""
    text = clean_text(value)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def parse_authors(
    data: bytes, origin: str = "openalex", limit: int | None = None
) -> tuple[AuthorCandidate, ...]:
    """Parse one `/authors?search=` page, its first `limit` results (a server may send more
    than the page asked); the whole payload or SourceError naming `origin`. Texts are `shown`."""
    results = _results(load_json(data, origin), origin)
    if limit is not None:
        results = results[:limit]
    return tuple(_each_result(results, origin, _candidate))


def _candidate(item: Mapping[str, Any]) -> AuthorCandidate:
    """One `/authors` result as a candidate; ValueError for an author without an id."""
    author_id = openalex_id_or_blank(item.get("id"), "A")
    if not author_id:
        raise ValueError("author without an OpenAlex id")
    return AuthorCandidate(
        openalex=author_id,
        name=shown(_text(item.get("display_name")), SHOWN_NAME_CHARS) or author_id,
        orcid=orcid_or_blank(item.get("orcid")),
        institution=_institution(item.get("last_known_institutions")),
        works_count=_count(item.get("works_count")) or 0,
        topics=_topics(item.get("topics")),
    )


def _institution(value: Any) -> str:
    """The first named institution of a `last_known_institutions` list, `shown`."""
    places = [_object(p) for p in _list(value)]
    names = (shown(_text(p.get("display_name")), SHOWN_NAME_CHARS) for p in places)
    return next((n for n in names if n), "")


def _topics(value: Any) -> tuple[str, ...]:
    """The first three named topics among the first ten of a `topics` list, `shown`."""
    topics = [
        shown(_text(_object(t).get("display_name")), SHOWN_TOPIC_CHARS) for t in _list(value)[:10]
    ]
    return tuple(t for t in topics if t)[:3]
