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

The payloads are read by the pure parser in `digest.sources.openalex_parse` (`parse_works`,
`parse_authors`), whose names this module re-exports.

Polite: the API key (or `[fetch] contact` as `mailto`), pacing and retries (429 with
Retry-After) are the shared client's; the daily budget of list requests is counted in the
store, and what it cuts short is reported as a warning. The key never appears in an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Protocol

from digest.errors import ConfigError, SourceDeadlineError, SourceError
from digest.http import Fetched, PoliteClient
from digest.models import FollowedAuthor, Paper, Profile
from digest.settings import OpenAlexConfig
from digest.sources.base import FetchContext, FetchResult, SourceCheck, client_needed
from digest.sources.openalex_parse import (
    SHOWN_NAME_CHARS,
    SHOWN_TITLE_CHARS,
    SHOWN_TOPIC_CHARS,
    AuthorCandidate,
    WorksPage,
    paper_of_work,
    parse_authors,
    parse_works,
    rebuild_abstract,
    shown,
)

__all__ = [
    "OPENALEX_PROBE",
    "OR_LIMIT",
    "SELECT",
    "SHOWN_NAME_CHARS",
    "SHOWN_TITLE_CHARS",
    "SHOWN_TOPIC_CHARS",
    "AuthorCandidate",
    "BudgetSpent",
    "OpenAlexClient",
    "OpenAlexMemory",
    "OpenAlexSource",
    "WorksPage",
    "hide_from_logs",
    "identified_authors",
    "or_groups",
    "paper_of_work",
    "parse_authors",
    "parse_works",
    "rebuild_abstract",
    "search_authors",
    "shown",
    "watched_doi",
    "watched_papers",
]

SELECT = (
    "id,doi,display_name,publication_date,authorships,abstract_inverted_index,locations,"
    "primary_location,referenced_works,is_authors_truncated,cited_by_count,is_xpac"
)
OR_LIMIT = 50  # values OR-ed in one filter (OpenAlex's documented limit is 100)


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


# --- queries ------------------------------------------------------------------------------------


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
        """Rewrite the record's message without the secret; every record is kept."""
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
        self._count_request(path)
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

    def _count_request(self, path: str) -> None:
        """Count one request to `path` against the day's budget (in the store too); BudgetSpent
        or SourceDeadlineError, counting nothing, when it may not be made."""
        if self.spent >= self.config.daily_budget or self.remaining == 0:
            raise BudgetSpent
        if self.client.clock() >= self.deadline:
            raise SourceDeadlineError(f"{self.base}{path}: not asked, the deadline has passed")
        self.spent += 1
        if self.memory is not None:
            self.memory.add_openalex_usage(self.today, 1)

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

    def _cut_short(self, origin: str, pages: int, exc: BudgetSpent | SourceDeadlineError) -> str:
        """The warning for a query the budget or the deadline stopped after `pages` pages."""
        if isinstance(exc, BudgetSpent):
            return f"{origin}: the daily budget ran out after {pages} pages"
        return f"{origin}: after {pages} pages, {self.late_line(exc)}"

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
            except (BudgetSpent, SourceDeadlineError) as exc:
                if page == 0:
                    raise
                return papers, self._cut_short(origin, page, exc)
            parsed = parse_works(got.content, origin=self.redact(origin))
            papers.extend(parsed.papers)
            following = parsed.next_page
            if following is None:
                return papers, ""
            if following in seen:  # it would answer the same pages until max_pages
                return papers, (
                    f"{origin}: the server repeated the cursor {following[:40]!r} "
                    f"after {page + 1} pages; stopped there, what was read is kept"
                )
            cursor = following
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


_ALLOWANCE_USED_UP = "today's allowance is used up; it renews at midnight UTC"
_GET_A_KEY = (
    "get a free key at https://openalex.org/settings/api and set "
    "DIGEST_SOURCES__OPENALEX__API_KEY (without one the allowance is tiny)"
)


def _unanswered_check(api: OpenAlexClient, exc: SourceError) -> SourceCheck:
    """The doctor's verdict when the probe failed: a refused key, else the server or network."""
    refused = any(f"HTTP {code}" in str(exc) for code in (401, 403))
    fix = (
        "the API key was refused: check DIGEST_SOURCES__OPENALEX__API_KEY or api_key_file"
        if refused and api.key
        else "check base_url in [sources.openalex], the network, or try again later"
    )
    return SourceCheck(False, api.redact(str(exc)), fix)


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
            return _unanswered_check(api, exc)
        return self._answered_check(api, url, got)

    def _answered_check(self, api: OpenAlexClient, url: str, got: Fetched) -> SourceCheck:
        """The doctor's verdict on the probe's answer: the key, the allowance left, the budget."""
        headers = dict(got.rate_limit)
        left, limit = headers.get("x-ratelimit-remaining", ""), headers.get("x-ratelimit-limit", "")
        allowance = f"{left} of {limit} left today" if left and limit else "no rate-limit headers"
        budget = f"daily_budget {self.config.daily_budget} requests"
        who = "API key accepted" if api.key else "no API key"
        detail = f"{url} answered HTTP {got.status}; {who}; {allowance}; {budget}"
        if left.strip() == "0":
            return SourceCheck(False, detail, _ALLOWANCE_USED_UP)
        if not api.key:
            return SourceCheck(False, detail, _GET_A_KEY)
        return SourceCheck(True, detail)

    def fetch(self, context: FetchContext) -> FetchResult:
        """The works of followed ids and the works citing watched papers since the lookback."""
        api = self.session(context)
        since = self._since(context)
        found: dict[str, Paper] = {}
        warnings: list[str] = []
        filters = self._author_filters(since)
        try:
            watched = self._resolve(api, context.now, warnings)
            filters += _filters("cites", sorted(watched), since)
            for filter_text in filters:
                found.update((p.key, p) for p in _works(api, filter_text, warnings))
        except (BudgetSpent, SourceDeadlineError) as exc:
            warnings.append(self._stopped_line(api, exc))
        return FetchResult(papers=tuple(found.values()), warnings=tuple(warnings))

    def _since(self, context: FetchContext) -> date:
        """The first publication date a fetch asks for: `lookback_days` back, or further for a
        backfill."""
        since = context.now.date() - timedelta(days=self.config.lookback_days)
        return since if context.since is None else min(since, context.since)

    def _stopped_line(self, api: OpenAlexClient, exc: BudgetSpent | SourceDeadlineError) -> str:
        """The warning for a session the deadline or the day's budget (ours or the server's)
        stopped."""
        if isinstance(exc, SourceDeadlineError):
            return api.late_line(exc)
        if api.remaining == 0:
            return "OpenAlex says today's allowance is used up; the rest waits for tomorrow"
        return (
            f"the daily budget of {self.config.daily_budget} OpenAlex requests is used up "
            f"({api.spent} today, [sources.openalex] daily_budget); the rest waits for tomorrow"
        )

    def _author_filters(self, since: date) -> list[str]:
        """The filters for followed authors' works: by OpenAlex id, else by ORCID."""
        authors = identified_authors(self.profiles)
        by_id = [a.openalex for a in authors if a.openalex]
        by_orcid = [a.orcid for a in authors if a.orcid and not a.openalex]
        return [
            *_filters("authorships.author.id", by_id, since),
            *_filters("authorships.author.orcid", by_orcid, since),
        ]

    def _resolve(self, api: OpenAlexClient, now: datetime, warnings: list[str]) -> dict[str, str]:
        """Every watched paper's OpenAlex work ids (id → title): resolved once, then stored."""
        names = watched_papers(self.profiles)
        known = self.memory.resolved_works(names) if self.memory is not None else {}
        papers, readers = _papers_and_readers(n for n in names if n not in known)
        fresh = _resolve_papers(api, papers, warnings)
        fresh.update(_resolve_readers(api, readers, warnings))
        self._remember(fresh, now)
        known.update(fresh)
        return {work: title for works in known.values() for work, title in works.items()}

    def _remember(self, resolved: dict[str, dict[str, str]], now: datetime) -> None:
        """Store what watched papers newly resolved to, if anything did (and there is a store)."""
        if resolved and self.memory is not None:
            self.memory.record_resolved(resolved, now)

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
                found.extend(_works(api, f"doi:{group}", warnings))
        except (BudgetSpent, SourceDeadlineError) as exc:
            warnings.append(self._stopped_line(api, exc))
        return found, warnings


def _filters(field: str, values: Sequence[str], since: date) -> list[str]:
    """`field:V1|V2|…,from_publication_date:since` for each group of values OpenAlex ORs."""
    after = f",from_publication_date:{since.isoformat()}"
    return [f"{field}:{group}{after}" for group in or_groups(values)]


def _works(api: OpenAlexClient, filter_text: str, warnings: list[str]) -> list[Paper]:
    """The works a filter selects; the warning of a limit that stopped it first, if any, is
    added to `warnings`."""
    works, warning = api.works(filter_text)
    if warning:
        warnings.append(warning)
    return works


def _papers_and_readers(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Watched names split into papers and readers' own works (`orcid:…`), in order."""
    papers: list[str] = []
    readers: list[str] = []
    for name in names:
        if name.startswith("orcid:"):
            readers.append(name)
        else:
            papers.append(name)
    return papers, readers


def _resolve_papers(
    api: OpenAlexClient, names: Sequence[str], warnings: list[str]
) -> dict[str, dict[str, str]]:
    """Watched papers (not readers' `orcid:…`) looked up by DOI: each asked for, to its work id
    and title, or to nothing when OpenAlex does not know it."""
    fresh: dict[str, dict[str, str]] = {}
    for group in or_groups([watched_doi(n) for n in names]):
        by_doi = {_doi_of(p): p for p in _works(api, f"doi:{group}", warnings)}
        asked = group.split("|")
        for name in names:
            if watched_doi(name) in asked:
                paper = by_doi.get(watched_doi(name))
                fresh[name] = {paper.listing_id: paper.title} if paper else {}
    return fresh


def _resolve_readers(
    api: OpenAlexClient, names: Sequence[str], warnings: list[str]
) -> dict[str, dict[str, str]]:
    """Each `orcid:…` (a reader's own works) to the work ids and titles of their works."""
    fresh: dict[str, dict[str, str]] = {}
    for name in names:
        orcid = name.removeprefix("orcid:")
        works = _works(api, f"authorships.author.orcid:{orcid}", warnings)
        fresh[name] = {p.listing_id: p.title for p in works}
    return fresh


def _doi_of(paper: Paper) -> str:
    """The DOI a resolved work answers for: its own, or its arXiv id's DataCite DOI."""
    return f"10.48550/arxiv.{paper.arxiv_id}" if paper.arxiv_id and not paper.doi else paper.doi


def _lookup_doi(paper: Paper) -> str:
    """The DOI a stored paper is looked up by: its arXiv id's DataCite DOI first."""
    if paper.arxiv_id:
        return f"10.48550/arxiv.{paper.arxiv_id}"
    return paper.doi


# --- author search (`digest author search`) ---------------------------------------------------


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
    recent = _recent_titles(api, candidates)
    return tuple(replace(c, recent_title=recent.get(c.openalex, "")) for c in candidates)


def _recent_titles(api: OpenAlexClient, candidates: Sequence[AuthorCandidate]) -> dict[str, str]:
    """The title of each candidate's most recent work (`shown`), by author id, from one list
    request for all of them together."""
    ids = "|".join(c.openalex for c in candidates)
    params: dict[str, str | int] = {
        "filter": f"authorships.author.id:{ids}",
        "sort": "publication_date:desc",
        "include_xpac": "true",
        "per_page": 50,
        "select": SELECT,
    }
    works = parse_works(api.get("/works", params).content, origin=f"{api.base}/works")
    recent: dict[str, str] = {}
    for paper in works.papers:
        for author_id in paper.author_ids:
            recent.setdefault(author_id, shown(paper.title, SHOWN_TITLE_CHARS))
    return recent
