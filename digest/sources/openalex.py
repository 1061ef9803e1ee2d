"""OpenAlex (https://api.openalex.org): works of followed authors with ids, works citing watched
papers, and lookups of stored papers by DOI to learn who wrote them.

Queries (all `GET /works`, cursor paging `cursor=*` → `meta.next_cursor`, `per_page`,
`select` of the fields read here, `include_xpac=true` since arXiv's DataCite DOIs are in the
expansion pack that OpenAlex leaves out by default):

- `filter=authorships.author.id:A1|A2,from_publication_date:D` (and `authorships.author.orcid:`
  for authors followed by ORCID): OpenAlex dates works by publication, not by when it learnt of
  them, so every fetch reaches back `lookback_days` (catch-up over missed days included);
- `filter=doi:10.48550/arxiv.2402.17193|10.1145/…` to resolve watched papers to work ids (once;
  the store keeps them) and `authorships.author.orcid:O` for the reader's own works;
- `filter=cites:W1|W2,from_publication_date:D` for the works citing them.

Payload oddities handled by the pure parser (`parse_works`): abstracts as an inverted index
(word → positions; positions may repeat; the index may be null), ids as URLs
(`https://openalex.org/A…`, `https://orcid.org/…`, `https://doi.org/…`), arXiv ids from
`10.48550/arxiv.*` DOIs and arxiv.org landing pages, truncated author lists
(`is_authors_truncated`), authors without ORCID or without any id.

Polite: the API key (or `[fetch] contact` as `mailto`), pacing and retries (429 with
Retry-After) are the shared client's; the daily budget of list requests is counted in the
store, and what it cuts short is reported as a warning. The key never appears in an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from digest import limits
from digest.errors import ConfigError, SourceDeadlineError, SourceError
from digest.http import Fetched, PoliteClient
from digest.ids import (
    arxiv_of_doi,
    normalise_doi,
    openalex_id_or_blank,
    orcid_or_blank,
)
from digest.models import FollowedAuthor, Paper, Profile, paper_keys, parse_arxiv_id
from digest.settings import OpenAlexConfig
from digest.sources.base import FetchContext, FetchResult, SourceCheck, client_needed, load_json
from digest.sources.clean import clean_text

SELECT = (
    "id,doi,display_name,publication_date,authorships,abstract_inverted_index,locations,"
    "primary_location,referenced_works,is_authors_truncated,cited_by_count,is_xpac"
)
OR_LIMIT = 50  # values OR-ed in one filter (OpenAlex's documented limit is 100)
_ARXIV_URL = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/([^?#]+)", re.I)


class OpenAlexMemory(Protocol):
    """What the source keeps between fetches (the store implements it)."""

    def resolved_works(self, watched: Iterable[str]) -> dict[str, dict[str, str]]:
        """Watched papers already resolved: their work ids and titles."""
        ...

    def record_resolved(self, resolved: Mapping[str, Mapping[str, str]], now: datetime) -> None:
        """Remember what watched papers resolved to."""
        ...

    def openalex_usage(self, day: date) -> int:
        """List requests spent on this UTC day."""
        ...

    def add_openalex_usage(self, day: date, requests: int) -> None:
        """Count more list requests spent on this UTC day."""
        ...


# --- parsing (pure) -------------------------------------------------------------------------------


def rebuild_abstract(index: Any) -> str:
    """The abstract an `abstract_inverted_index` encodes: each word at its positions, in order.

    Null (or anything but an object) is "". A position given twice keeps the first word that
    claims it; positions that are not integers are ignored; a gap is simply closed up.

    Bounded whatever the index holds: positions from `limits.ABSTRACT_POSITIONS` on are not
    placed (one word repeated at 4,000,000 positions made a 24 MB abstract), and the text stops
    a word past `limits.ABSTRACT_CHARS`, so the cleaner sees it is too long, cuts it and says so.
    """
    if not isinstance(index, dict):
        return ""
    at: dict[int, str] = {}
    # The first word past the positions placed: appended when the index reaches past them, so
    # a cut abstract is longer than the cap and the cleaner reports the cut.
    beyond: tuple[int, str] | None = None
    for word, positions in index.items():
        if not isinstance(word, str) or not isinstance(positions, list):
            continue
        for position in positions:
            if not isinstance(position, int) or isinstance(position, bool) or position < 0:
                continue
            if position < limits.ABSTRACT_POSITIONS:
                at.setdefault(position, word)
            elif beyond is None or position < beyond[0]:
                beyond = (position, word)
    words: list[str] = []
    size = 0
    ordered = [at[p] for p in sorted(at)] + ([beyond[1]] if beyond else [])
    for word in ordered:
        for piece in limits.read_prefix(word, limits.ABSTRACT_CHARS).split():
            words.append(piece)
            size += len(piece) + 1
        if size > limits.ABSTRACT_CHARS + 1:
            break
    return " ".join(words)[: limits.ABSTRACT_CHARS + 1]


@dataclass(frozen=True, slots=True)
class WorksPage:
    """One page of `/works`: its papers, the cursor of the next page, the total count."""

    papers: tuple[Paper, ...]
    next_cursor: str | None
    count: int | None
    skipped: int = 0  # results without a title (nothing to show)


def parse_works(data: bytes, origin: str = "openalex") -> WorksPage:
    """Parse one `/works` list page; the whole payload or SourceError naming `origin`."""
    payload = load_json(data, origin)
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise SourceError(f"{origin}: expected an object with a 'results' list")
    meta = _object(payload.get("meta"))
    cursor = meta.get("next_cursor")
    count = meta.get("count")
    papers: list[Paper] = []
    skipped = 0
    for number, work in enumerate(payload["results"], start=1):
        if not isinstance(work, dict):
            raise SourceError(f"{origin}: result {number}: expected an object")
        try:
            paper = paper_of_work(work)
        except ValueError as exc:
            raise SourceError(f"{origin}: result {number}: {exc}") from None
        if paper is None:
            skipped += 1
        else:
            papers.append(paper)
    return WorksPage(
        tuple(papers),
        cursor if isinstance(cursor, str) and cursor else None,
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        skipped,
    )


def paper_of_work(work: Mapping[str, Any]) -> Paper | None:
    """The Paper of one OpenAlex work; None for a work without a title."""
    work_id = openalex_id_or_blank(work.get("id"), "W")
    if not work_id:
        raise ValueError("work without an OpenAlex id")
    title = _text(work.get("display_name")) or _text(work.get("title"))
    if not title:
        return None
    doi = normalise_doi(_text(work.get("doi")))
    arxiv_id = arxiv_of_doi(doi) or _arxiv_of_locations(work)
    if doi and arxiv_of_doi(doi):
        doi = ""  # arXiv's own DOI names the arXiv id: the paper is known by that
    authors, ids, orcids = _authorships(work.get("authorships"))
    extra: dict[str, Any] = {
        "openalex_id": work_id,
        "cited_by_count": _count(work.get("cited_by_count")),
    }
    return Paper(
        key=paper_keys(arxiv_id, doi, title)[0],
        title=title,
        authors=authors,
        abstract=rebuild_abstract(work.get("abstract_inverted_index")),
        published=_date(work.get("publication_date")),
        url=_landing_page(work, doi, work_id),
        source="openalex",
        listing_id=work_id,
        arxiv_id=arxiv_id,
        doi=doi,
        authors_truncated=work.get("is_authors_truncated") is True,
        extra=tuple(sorted((k, v) for k, v in extra.items() if v is not None)),
        author_ids=ids if any(ids) else (),
        author_orcids=orcids if any(orcids) else (),
        referenced=tuple(
            dict.fromkeys(
                w
                for r in _list(work.get("referenced_works"))
                if (w := openalex_id_or_blank(r, "W"))
            )
        ),
    )


def _authorships(value: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
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
    return tuple(names), tuple(ids), tuple(orcids)


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
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _date(value: Any) -> date | None:
    text = _text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"'publication_date' is not an ISO date: {text[:40]!r}") from None


def or_groups(values: Sequence[str], size: int = OR_LIMIT) -> list[str]:
    """`values` joined with `|` in groups of at most `size` (OpenAlex's OR syntax)."""
    unique = list(dict.fromkeys(values))
    return ["|".join(unique[i : i + size]) for i in range(0, len(unique), size)]


def watched_doi(watched: str) -> str:
    """The DOI OpenAlex knows a watched paper by: arXiv papers by their DataCite DOI."""
    kind, _, value = watched.partition(":")
    return f"10.48550/arxiv.{value}" if kind == "arxiv" else value


# --- fetching -------------------------------------------------------------------------------------


class _Redact(logging.Filter):
    """Replaces a secret in every record of a logger (httpx logs each request's full URL, the
    `api_key` query parameter included, at INFO: `digest -v` would print it)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "[api key]"), ()
        return True


_HIDDEN: set[str] = set()
# The loggers of the HTTP stack that may write a request's URL.
_HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "digest.http")


def hide_from_logs(secret: str) -> None:
    """Keep `secret` out of what the HTTP stack logs (once per secret)."""
    if not secret or secret in _HIDDEN:
        return
    _HIDDEN.add(secret)
    for name in _HTTP_LOGGERS:
        logging.getLogger(name).addFilter(_Redact(secret))


class BudgetSpent(Exception):
    """The day's list requests are used up ([sources.openalex] daily_budget)."""


class OpenAlexClient:
    """Paged `/works` queries through the shared client: the key or mailto on each, the day's
    budget counted in the store, the key never in an error."""

    def __init__(
        self,
        config: OpenAlexConfig,
        client: PoliteClient,
        memory: OpenAlexMemory | None,
        today: date,
        contact: str = "",
    ) -> None:
        self.config = config
        self.client = client
        self.memory = memory
        self.today = today
        self.contact = contact
        self.key = config.secret()
        if self.key:
            hide_from_logs(self.key)
        self.spent = memory.openalex_usage(today) if memory is not None else 0
        self.remaining: int | None = None  # what the server last said is left today
        # One deadline for the whole session, on the client's clock: every query, page and
        # wait (pacing, Retry-After) of a fetch together.
        self.started = client.clock()
        self.deadline = self.started + config.deadline_seconds

    @property
    def base(self) -> str:
        """The API root."""
        return self.config.base_url.rstrip("/")

    def auth(self) -> dict[str, str]:
        """The key, else the contact address as `mailto` (the polite pool)."""
        if self.key:
            return {"api_key": self.key}
        return {"mailto": self.contact} if self.contact else {}

    def get(self, path: str, params: Mapping[str, str | int]) -> Fetched:
        """One list request, counted against the day's budget; SourceError without the key."""
        if self.spent >= self.config.daily_budget or self.remaining == 0:
            raise BudgetSpent
        if self.client.clock() >= self.deadline:
            raise SourceDeadlineError(f"{self.base}{path}: not asked, the deadline has passed")
        self.spent += 1
        if self.memory is not None:
            self.memory.add_openalex_usage(self.today, 1)
        try:
            got = self.client.get(
                self.base + path, params={**params, **self.auth()}, deadline=self.deadline
            )
        except SourceDeadlineError as exc:
            raise SourceDeadlineError(self.redact(str(exc))) from None
        except SourceError as exc:
            raise SourceError(self.redact(str(exc))) from None
        remaining = dict(got.rate_limit).get("x-ratelimit-remaining", "")
        if remaining.strip().isdigit():
            self.remaining = int(remaining)
        return got

    def redact(self, text: str) -> str:
        """`text` with the API key replaced (an error must never show it)."""
        return text.replace(self.key, "[api key]") if self.key else text

    def late_line(self, exc: SourceDeadlineError) -> str:
        """The warning for a session its deadline stopped."""
        return (
            f"stopped after {self.client.clock() - self.started:.0f} s "
            f"([sources.openalex] deadline_seconds = {self.config.deadline_seconds:g}): {exc}; "
            "what was read is kept, the rest waits for the next fetch"
        )

    def works(self, filter_text: str) -> tuple[list[Paper], str]:
        """Every work a filter selects, cursor-paged up to `max_pages`; a warning when a limit
        stopped it first (the budget, the deadline, a server naming a cursor again).
        BudgetSpent or SourceDeadlineError when it stopped before the first page."""
        papers: list[Paper] = []
        cursor = "*"
        seen = {cursor}
        origin = f"{self.base}/works?filter={filter_text}"
        for page in range(self.config.max_pages):
            params: dict[str, str | int] = {
                "filter": filter_text,
                "per_page": self.config.per_page,
                "cursor": cursor,
                "select": SELECT,
                "include_xpac": "true",
            }
            try:
                got = self.get("/works", params)
            except BudgetSpent:
                if page == 0:
                    raise
                return papers, f"{origin}: the daily budget ran out after {page} pages"
            except SourceDeadlineError as exc:
                if page == 0:
                    raise
                return papers, f"{origin}: after {page} pages, {self.late_line(exc)}"
            parsed = parse_works(got.content, origin=self.redact(origin))
            papers.extend(parsed.papers)
            if parsed.next_cursor is None or (not parsed.papers and not parsed.skipped):
                return papers, ""
            if parsed.next_cursor in seen:  # it would answer the same pages until max_pages
                return papers, (
                    f"{origin}: the server repeated the cursor {parsed.next_cursor[:40]!r} "
                    f"after {page + 1} pages; stopped there, what was read is kept"
                )
            cursor = parsed.next_cursor
            seen.add(cursor)
        return papers, (
            f"{origin}: stopped after {self.config.max_pages} pages of {self.config.per_page} "
            "works ([sources.openalex] max_pages)"
        )


def identified_authors(profiles: Iterable[Profile]) -> tuple[FollowedAuthor, ...]:
    """Every followed author with an id, once."""
    return tuple(dict.fromkeys(a for p in profiles for a in p.authors if a.identified))


def watched_papers(profiles: Iterable[Profile]) -> tuple[str, ...]:
    """Every watched paper, and `orcid:…` for each reader whose own works are watched."""
    names: list[str] = []
    for profile in profiles:
        names.extend(profile.cites)
        if profile.cites_my_works and profile.orcid:
            names.append(f"orcid:{profile.orcid}")
    return tuple(dict.fromkeys(names))


# A singleton (free of charge: it costs none of the day's allowance) whose answer carries the
# rate-limit headers: `digest doctor` checks the key and reads the budget without spending it.
OPENALEX_PROBE = "/works/W2741809807"


class OpenAlexSource:
    """New works of followed authors with ids, and works citing watched papers."""

    name = "openalex"

    def __init__(
        self,
        config: OpenAlexConfig,
        profiles: Sequence[Profile],
        memory: OpenAlexMemory | None = None,
        contact: str = "",
    ) -> None:
        self.config = config
        self.profiles = tuple(profiles)
        self.memory = memory
        self.contact = contact
        self._session: tuple[FetchContext, OpenAlexClient] | None = None

    def session(self, context: FetchContext) -> OpenAlexClient:
        """A budgeted client for one fetch: the same one for the fetch and the lookups made
        with the same context, so one deadline covers the whole source."""
        if self._session is not None and self._session[0] is context:
            return self._session[1]
        api = OpenAlexClient(
            self.config, client_needed(context), self.memory, context.now.date(), self.contact
        )
        self._session = (context, api)
        return api

    def check(self, client: Callable[[], PoliteClient], today: date) -> SourceCheck:
        """For `digest doctor`: OpenAlex answers with the key (or the contact as mailto), and
        how much of today's allowance is left (its `X-RateLimit-*` headers), beside
        `daily_budget`. Never shows the key."""
        http = client()
        try:
            api = OpenAlexClient(self.config, http, None, today, self.contact)
        except ConfigError as exc:
            return SourceCheck(False, str(exc), "fix api_key_file in [sources.openalex]")
        url = api.base + OPENALEX_PROBE
        try:
            got = http.get(url, params=api.auth())
        except SourceError as exc:
            refused = any(f"HTTP {code}" in str(exc) for code in (401, 403))
            fix = (
                "the API key was refused: check DIGEST_SOURCES__OPENALEX__API_KEY or api_key_file"
                if refused and api.key
                else "check base_url in [sources.openalex], the network, or try again later"
            )
            return SourceCheck(False, api.redact(str(exc)), fix)
        limits = dict(got.rate_limit)
        left, limit = limits.get("x-ratelimit-remaining", ""), limits.get("x-ratelimit-limit", "")
        allowance = f"{left} of {limit} left today" if left and limit else "no rate-limit headers"
        budget = f"daily_budget {self.config.daily_budget} requests"
        who = "API key accepted" if api.key else "no API key"
        detail = f"{url} answered HTTP {got.status}; {who}; {allowance}; {budget}"
        if left.strip() == "0":
            return SourceCheck(
                False, detail, "today's allowance is used up; it renews at midnight UTC"
            )
        if not api.key:
            fix = (
                "get a free key at https://openalex.org/settings/api and set "
                "DIGEST_SOURCES__OPENALEX__API_KEY (without one the allowance is tiny)"
            )
            return SourceCheck(False, detail, fix)
        return SourceCheck(True, detail)

    def fetch(self, context: FetchContext) -> FetchResult:
        """The works of followed ids and the works citing watched papers since the lookback."""
        api = self.session(context)
        since = context.now.date() - timedelta(days=self.config.lookback_days)
        if context.since is not None:
            since = min(since, context.since)
        found: dict[str, Paper] = {}
        warnings: list[str] = []
        filters = self._author_filters(since)
        try:
            watched = self._resolve(api, context.now, warnings)
            filters += [
                f"cites:{group},from_publication_date:{since.isoformat()}"
                for group in or_groups(sorted(watched))
            ]
            for filter_text in filters:
                papers, warning = api.works(filter_text)
                found.update((p.key, p) for p in papers)
                warnings.extend([warning] if warning else [])
        except BudgetSpent:
            warnings.append(self._spent_line(api))
        except SourceDeadlineError as exc:
            warnings.append(api.late_line(exc))
        return FetchResult(papers=tuple(found.values()), warnings=tuple(warnings))

    def _spent_line(self, api: OpenAlexClient) -> str:
        if api.remaining == 0:
            return "OpenAlex says today's allowance is used up; the rest waits for tomorrow"
        return (
            f"the daily budget of {self.config.daily_budget} OpenAlex requests is used up "
            f"({api.spent} today, [sources.openalex] daily_budget); the rest waits for tomorrow"
        )

    def _author_filters(self, since: date) -> list[str]:
        authors = identified_authors(self.profiles)
        after = f",from_publication_date:{since.isoformat()}"
        by_id = [
            f"authorships.author.id:{g}{after}"
            for g in or_groups([a.openalex for a in authors if a.openalex])
        ]
        by_orcid = [
            f"authorships.author.orcid:{g}{after}"
            for g in or_groups([a.orcid for a in authors if a.orcid and not a.openalex])
        ]
        return by_id + by_orcid

    def _resolve(self, api: OpenAlexClient, now: datetime, warnings: list[str]) -> dict[str, str]:
        """Every watched paper's OpenAlex work ids (id → title): resolved once, then stored."""
        names = watched_papers(self.profiles)
        known = self.memory.resolved_works(names) if self.memory is not None else {}
        missing = [n for n in names if n not in known]
        fresh: dict[str, dict[str, str]] = {}
        papers = [n for n in missing if not n.startswith("orcid:")]
        for group in or_groups([watched_doi(n) for n in papers]):
            works, warning = api.works(f"doi:{group}")
            warnings.extend([warning] if warning else [])
            by_doi = {_doi_of(p): p for p in works}
            for name in papers:
                paper = by_doi.get(watched_doi(name))
                if watched_doi(name) in group.split("|"):
                    fresh[name] = {paper.listing_id: paper.title} if paper else {}
        for name in (n for n in missing if n.startswith("orcid:")):
            works, warning = api.works(f"authorships.author.orcid:{name.removeprefix('orcid:')}")
            warnings.extend([warning] if warning else [])
            fresh[name] = {p.listing_id: p.title for p in works}
        if fresh and self.memory is not None:
            self.memory.record_resolved(fresh, now)
        known.update(fresh)
        return {work: title for works in known.values() for work, title in works.items()}

    def lookup(
        self, context: FetchContext, papers: Sequence[Paper]
    ) -> tuple[list[Paper], list[str]]:
        """These stored papers as OpenAlex knows them (with author ids), found by their DOI or
        arXiv DOI, in batches; papers it does not know are simply not returned."""
        api = self.session(context)
        dois = [d for p in papers if (d := _lookup_doi(p))]
        found: list[Paper] = []
        warnings: list[str] = []
        try:
            for group in or_groups(dois):
                works, warning = api.works(f"doi:{group}")
                found.extend(works)
                warnings.extend([warning] if warning else [])
        except BudgetSpent:
            warnings.append(self._spent_line(api))
        except SourceDeadlineError as exc:
            warnings.append(api.late_line(exc))
        return found, warnings


def _doi_of(paper: Paper) -> str:
    return f"10.48550/arxiv.{paper.arxiv_id}" if paper.arxiv_id and not paper.doi else paper.doi


def _lookup_doi(paper: Paper) -> str:
    if paper.arxiv_id:
        return f"10.48550/arxiv.{paper.arxiv_id}"
    return paper.doi


# --- author search (`digest author search`) ---------------------------------------------------


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
    payload = load_json(data, origin)
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise SourceError(f"{origin}: expected an object with a 'results' list")
    found = []
    results = payload["results"] if limit is None else payload["results"][:limit]
    for number, item in enumerate(results, start=1):
        if not isinstance(item, dict):
            raise SourceError(f"{origin}: result {number}: expected an object")
        author_id = openalex_id_or_blank(item.get("id"), "A")
        if not author_id:
            raise SourceError(f"{origin}: result {number}: author without an OpenAlex id")
        places = [_object(p) for p in _list(item.get("last_known_institutions"))]
        topics = [
            shown(_text(_object(t).get("display_name")), SHOWN_TOPIC_CHARS)
            for t in _list(item.get("topics"))[:10]
        ]
        institutions = (shown(_text(p.get("display_name")), SHOWN_NAME_CHARS) for p in places)
        found.append(
            AuthorCandidate(
                openalex=author_id,
                name=shown(_text(item.get("display_name")), SHOWN_NAME_CHARS) or author_id,
                orcid=orcid_or_blank(item.get("orcid")),
                institution=next((n for n in institutions if n), ""),
                works_count=_count(item.get("works_count")) or 0,
                topics=tuple(t for t in topics if t)[:3],
            )
        )
    return tuple(found)


def search_authors(
    config: OpenAlexConfig,
    client: PoliteClient,
    name: str,
    contact: str = "",
    limit: int = 10,
    *,
    today: date,
) -> tuple[AuthorCandidate, ...]:
    """The OpenAlex authors a name may mean, most works first, each with a recent title (one
    list request for the search, and one for the recent works of all candidates together).
    `today` is the day whose request budget the searches count against."""
    api = OpenAlexClient(config, client, None, today, contact)
    got = api.get("/authors", {"search": name, "per_page": limit})
    asked = f"{api.base}/authors?search={shown(name, SHOWN_NAME_CHARS)}"
    candidates = parse_authors(got.content, origin=asked, limit=limit)
    if not candidates:
        return ()
    recent: dict[str, str] = {}
    ids = "|".join(c.openalex for c in candidates)
    params: dict[str, str | int] = {
        "filter": f"authorships.author.id:{ids}",
        "sort": "publication_date:desc",
        "include_xpac": "true",
        "per_page": 50,
        "select": SELECT,
    }
    works = parse_works(api.get("/works", params).content, origin=f"{api.base}/works")
    for paper in works.papers:
        for author_id in paper.author_ids:
            recent.setdefault(author_id, shown(paper.title, SHOWN_TITLE_CHARS))
    return tuple(
        AuthorCandidate(
            c.openalex,
            c.name,
            c.orcid,
            c.institution,
            c.works_count,
            c.topics,
            recent.get(c.openalex, ""),
        )
        for c in candidates
    )
