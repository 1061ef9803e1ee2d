"""Hugging Face Daily Papers: `GET /api/daily_papers?date=YYYY-MM-DD&p=0&limit=50`.

`paper.id` is the arXiv id, so these papers merge with arXiv's and add upvotes, comment counts,
the GitHub repo, the project page and AI keywords. Weekends return `[]`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from digest.errors import SourceError
from digest.http import PoliteClient
from digest.models import Paper, paper_keys, parse_arxiv_id
from digest.settings import HfDailyConfig
from digest.sources import FetchContext, FetchResult, client_needed

MAX_PAGES = 20


def parse_daily_papers(data: bytes, origin: str = "hf_daily") -> tuple[Paper, ...]:
    """Parse one page of the Daily Papers API; SourceError (nothing partial) if malformed."""
    try:
        items = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{origin}: not JSON: {exc}") from None
    if not isinstance(items, list):
        raise SourceError(f"{origin}: expected a JSON array of papers")
    papers = []
    for number, item in enumerate(items, start=1):
        try:
            papers.append(_paper_of(item))
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{origin}: item {number}: {exc}") from None
    return tuple(papers)


def _paper_of(item: Any) -> Paper:
    paper = item.get("paper") if isinstance(item, dict) else None
    if not isinstance(paper, dict):
        raise ValueError("no 'paper' object")
    listing_id = str(paper.get("id") or "").strip()
    title = " ".join(str(paper.get("title") or item.get("title") or "").split())
    if not listing_id or not title:
        raise ValueError("paper without id or title")
    arxiv_id, version = parse_arxiv_id(listing_id)
    authors = tuple(
        name for a in paper.get("authors") or [] if (name := str(a.get("name") or "").strip())
    )
    extra = {
        "upvotes": paper.get("upvotes"),
        "comments": item.get("numComments"),
        "code_url": paper.get("githubRepo"),
        "github_stars": paper.get("githubStars"),
        "project_page": paper.get("projectPage"),
        "ai_keywords": paper.get("ai_keywords") or None,
        "hf_url": f"https://huggingface.co/papers/{listing_id}",
    }
    return Paper(
        key=paper_keys(arxiv_id, "", title)[0],
        title=title,
        authors=authors,
        abstract=" ".join(str(paper.get("summary") or item.get("summary") or "").split()),
        published=_date_of(paper.get("publishedAt") or item.get("publishedAt")),
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else extra["hf_url"],
        source="hf_daily",
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        version=version,
        extra=tuple(sorted((k, v) for k, v in extra.items() if v is not None)),
    )


def _date_of(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date()


def daily_dates(last_success: date | None, today: date, max_days: int = 7) -> tuple[date, ...]:
    """The dates to fetch: from the last successful day (its list may have grown) through
    today, at most the `max_days` most recent; only today when there was no success yet."""
    first = last_success or today
    first = max(first, today - timedelta(days=max_days - 1))
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
        today = context.now.date()
        if context.since is not None:
            dates = daily_dates(context.since, today, max_days=(today - context.since).days + 1)
        else:
            last = context.last_success.date() if context.last_success else None
            dates = daily_dates(last, today, self.config.catch_up_days)
        found: dict[str, Paper] = {}
        for day in dates:
            for paper in self._one_day(client, day):
                found.setdefault(paper.key, paper)
        return FetchResult(papers=tuple(found.values()))

    def _one_day(self, client: PoliteClient, day: date) -> list[Paper]:
        papers: list[Paper] = []
        limit = self.config.page_size
        for page in range(MAX_PAGES):
            params: dict[str, str | int] = {"date": day.isoformat(), "p": page, "limit": limit}
            got = client.get(self.url, params=params)
            batch = parse_daily_papers(got.content, origin=f"{self.url}?date={day}&p={page}")
            papers.extend(batch)
            if len(batch) < limit:
                break
        return papers
