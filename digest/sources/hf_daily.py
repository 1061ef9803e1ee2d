"""Hugging Face Daily Papers: `GET /api/daily_papers?date=YYYY-MM-DD&p=0&limit=50`.

`paper.id` is the arXiv id, so these papers merge with arXiv's and add upvotes, comment counts,
the GitHub repo, the project page and AI keywords. Weekends return `[]`.

`parse_daily_papers` and `daily_dates` are pure; `HfDailySource` does the fetching.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from digest import limits
from digest.errors import SourceError
from digest.http import Fetched, PoliteClient
from digest.models import Paper, paper_keys, parse_arxiv_id
from digest.settings import HfDailyConfig
from digest.sources.base import FetchContext, FetchResult, ProbeRequest, client_needed, load_json

PAPER_PAGE = "https://huggingface.co/papers/"


def parse_daily_papers(data: bytes, origin: str = "hf_daily") -> tuple[Paper, ...]:
    """Parse one page of the Daily Papers API.

    The payload is taken whole or not at all: anything but a JSON array of objects, or an
    element without a paper id or title, raises SourceError naming `origin`. Optional signals
    (upvotes, code link, …) that are missing, null or of the wrong type are left out of `extra`.
    """
    items = load_json(data, origin)
    if not isinstance(items, list):
        raise SourceError(f"{origin}: expected a JSON array of papers, got {_kind(items)}")
    papers = []
    for number, item in enumerate(items, start=1):
        try:
            papers.append(_paper_of(item))
        except ValueError as exc:
            raise SourceError(f"{origin}: item {number}: {exc}") from None
    return tuple(papers)


def _paper_of(item: Any) -> Paper:
    """One element of the page as a Paper; ValueError saying what is wrong with it."""
    paper = _paper_object(item)
    listing_id = _text(paper.get("id"))
    title = _text(paper.get("title")) or _text(item.get("title"))
    if not listing_id or not title:
        raise ValueError("paper without id or title")
    arxiv_id, version = parse_arxiv_id(listing_id)
    hf_url = PAPER_PAGE + listing_id
    return Paper(
        key=paper_keys(arxiv_id, "", title)[0],
        title=title,
        authors=_authors(paper.get("authors")),
        abstract=_text(paper.get("summary")) or _text(item.get("summary")),
        published=_date_of(paper.get("publishedAt") or item.get("publishedAt")),
        url=hf_url,
        source="hf_daily",
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        version=version,
        extra=_signals(item, paper, hf_url),
    )


def _paper_object(item: Any) -> dict[str, Any]:
    """The `paper` object of an element; ValueError when the element or it is not an object."""
    if not isinstance(item, dict):
        raise ValueError(f"expected an object, got {_kind(item)}")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise ValueError("no 'paper' object")
    return paper


def _signals(
    item: dict[str, Any], paper: dict[str, Any], hf_url: str
) -> tuple[tuple[str, Any], ...]:
    """The optional signals of an element, for `Paper.extra`: those given, sorted by name."""
    extra: dict[str, Any] = {
        "upvotes": _count(paper.get("upvotes")),
        "comments": _count(item.get("numComments")),
        "code_url": _text(paper.get("githubRepo")) or None,
        "github_stars": _count(paper.get("githubStars")),
        "project_page": _text(paper.get("projectPage")) or None,
        "ai_keywords": _keywords(paper.get("ai_keywords")),
        "hf_url": hf_url,
    }
    return tuple(sorted((k, v) for k, v in extra.items() if v is not None))


def _kind(value: Any) -> str:
    """What a JSON value is, for an error message ("an object", "null", …)."""
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _text(value: Any) -> str:
    """A string field with its whitespace collapsed; "" for anything else."""
    if not isinstance(value, str):
        return ""
    # No more is read than any field may keep: the cleaner cuts to each cap and says so.
    return " ".join(limits.read_prefix(value, limits.ABSTRACT_CHARS).split())


def _count(value: Any) -> int | None:
    """`value` if it is an integer (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _keywords(value: Any) -> list[str] | None:
    """The non-blank keywords of an `ai_keywords` list; None when there are none."""
    if not isinstance(value, list):
        return None
    words = [w for v in value if (w := _text(v))]
    return words or None


def _authors(value: Any) -> tuple[str, ...]:
    """The non-blank names of an `authors` list of objects."""
    if not isinstance(value, list):
        return ()
    return tuple(name for a in value if isinstance(a, dict) and (name := _text(a.get("name"))))


def _date_of(value: Any) -> date | None:
    """The date of a `publishedAt` timestamp; None when there is none, ValueError if malformed."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
    except ValueError:
        raise ValueError(f"'publishedAt' is not an ISO date: {value[:40]!r}") from None


def daily_dates(last_success: date | None, today: date, max_days: int = 7) -> tuple[date, ...]:
    """The dates to fetch, oldest first: from the last successful day (its list may have grown)
    through today, at most the `max_days` most recent; only today when there was no success yet
    (or it lies in the future). Today is always included."""
    first = min(last_success or today, today)
    first = max(first, today - timedelta(days=max(max_days, 1) - 1))
    return tuple(first + timedelta(days=n) for n in range((today - first).days + 1))


class HfDailySource:
    """Hugging Face Daily Papers, caught up over every date missed since the last success."""

    name = "hf_daily"

    def __init__(self, config: HfDailyConfig) -> None:
        self.config = config

    @property
    def url(self) -> str:
        """The API endpoint."""
        return self.config.base_url.rstrip("/") + "/api/daily_papers"

    def fetch(self, context: FetchContext) -> FetchResult:
        """Every paper of every date to catch up on (from `since`, for a backfill)."""
        client = client_needed(context)
        found: dict[str, Paper] = {}
        warnings: list[str] = []
        for day in self._dates(context):
            papers, warning = self._one_day(client, day)
            for paper in papers:
                found[paper.key] = paper  # a later list has the fresher upvotes
            warnings.extend([warning] if warning else [])
        return FetchResult(papers=tuple(found.values()), warnings=tuple(warnings))

    def _dates(self, context: FetchContext) -> tuple[date, ...]:
        """The dates a fetch asks for: every one from `since` for a backfill, else those to
        catch up on since the last success."""
        today = context.now.date()
        if context.since is not None:
            return daily_dates(context.since, today, max_days=(today - context.since).days + 1)
        last = context.last_success.date() if context.last_success else None
        return daily_dates(last, today, self.config.catch_up_days)

    def probe(self) -> ProbeRequest:
        """The latest papers, one of them (doctor)."""
        return ProbeRequest(self.url, {"limit": 1})

    def read_probe(self, got: Fetched) -> tuple[str, int]:
        """The answer read as a Daily Papers page (doctor)."""
        return "a Daily Papers page", len(parse_daily_papers(got.content, origin=got.url))

    def _one_day(self, client: PoliteClient, day: date) -> tuple[list[Paper], str]:
        """The papers of one date, paged until the server sends a short page (or one with
        nothing new: a server ignoring `p`), and a warning if `max_pages` stopped it first."""
        papers: dict[str, Paper] = {}
        limit = self.config.page_size
        for page in range(self.config.max_pages):
            params: dict[str, str | int] = {"date": day.isoformat(), "p": page, "limit": limit}
            got = client.get(self.url, params=params)
            batch = parse_daily_papers(got.content, origin=f"{self.url}?date={day}&p={page}")
            known = len(papers)
            papers.update((paper.key, paper) for paper in batch)
            if len(batch) < limit or len(papers) == known:
                return list(papers.values()), ""
        warning = (
            f"{self.url}?date={day}: stopped after {self.config.max_pages} pages of {limit} "
            "papers ([sources.hf_daily] max_pages); the rest of that day is not fetched"
        )
        return list(papers.values()), warning
