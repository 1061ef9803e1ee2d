"""A small OpenAlex on the local HTTP server: `/works` filtered and cursor-paged over
`tests/data/openalex/works.json` as the real API does it (see that folder's README), `/authors`
search, and a singleton work, each reply with OpenAlex's rate-limit headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .conftest import DATA, HttpServer, Recorded

WORKS: list[dict[str, Any]] = json.loads((DATA / "openalex" / "works.json").read_text())
Reply = tuple[int, dict[str, str], bytes]


def _short(url: Any) -> str:
    return str(url or "").rsplit("/", 1)[-1].lower()


def _matches(work: dict[str, Any], key: str, values: list[str]) -> bool:
    wanted = {v.lower() for v in values}
    authors = [a.get("author") or {} for a in work.get("authorships") or []]
    if key == "authorships.author.id":
        return any(_short(a.get("id")) in wanted for a in authors)
    if key == "authorships.author.orcid":
        return any(_short(a.get("orcid")) in wanted for a in authors)
    if key == "doi":
        return str(work.get("doi") or "").lower().removeprefix("https://doi.org/") in wanted
    if key == "cites":
        return any(_short(w) in wanted for w in work.get("referenced_works") or [])
    if key == "from_publication_date":
        return str(work.get("publication_date") or "") >= values[0]
    raise AssertionError(f"the fake OpenAlex does not know the filter {key!r}")


@dataclass
class FakeOpenAlex:
    """What the fake answers, and how: faults to inject on the first requests."""

    works: list[dict[str, Any]] = field(default_factory=lambda: list(WORKS))
    throttle_first: int = 0  # this many 429s (Retry-After: 1) before answering
    remaining: int = 99_000  # X-RateLimit-Remaining
    refuse_key: str = ""  # an api_key answered with 401
    seen_keys: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-RateLimit-Limit": "100000",
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Credits-Used": "1",
        }

    def gate(self, request: Recorded, count: int) -> Reply | None:
        query = parse_qs(request.query)
        key = query.get("api_key", [""])[0]
        self.seen_keys.append(key)
        if self.refuse_key and key == self.refuse_key:
            return 401, {"Content-Type": "application/json"}, b'{"error": "Invalid API key"}'
        if count <= self.throttle_first:
            return 429, {"Retry-After": "1", **self.headers()}, b'{"error": "Rate limit"}'
        return None

    def list_works(self, request: Recorded, count: int) -> Reply:
        refused = self.gate(request, count)
        if refused:
            return refused
        query = parse_qs(request.query)
        selected = [
            w for w in self.works if query.get("include_xpac") == ["true"] or not w.get("is_xpac")
        ]
        for part in query.get("filter", [""])[0].split(","):
            if part:
                name, _, value = part.partition(":")
                selected = [w for w in selected if _matches(w, name, value.split("|"))]
        per_page = int(query.get("per_page", ["25"])[0])
        cursor = query.get("cursor", ["*"])[0]
        start = 0 if cursor == "*" else int(cursor.removeprefix("IlsxNjA5"))
        page = selected[start : start + per_page]
        more = start + per_page < len(selected)
        meta = {
            "count": len(selected),
            "db_response_time_ms": 12,
            "page": None,
            "per_page": per_page,
            "next_cursor": f"IlsxNjA5{start + per_page}" if more else None,
            "groups_count": None,
        }
        return 200, self.headers(), json.dumps({"meta": meta, "results": page}).encode()

    def search_authors(self, request: Recorded, count: int) -> Reply:
        refused = self.gate(request, count)
        if refused:
            return refused
        return 200, self.headers(), (DATA / "openalex" / "authors_search.json").read_bytes()

    def singleton(self, request: Recorded, count: int) -> Reply:
        refused = self.gate(request, count)
        if refused:
            return refused
        return 200, self.headers(), json.dumps(self.works[0]).encode()

    def install(self, server: HttpServer) -> FakeOpenAlex:
        routes: dict[str, Callable[[Recorded, int], Reply | None]] = {
            "/works": self.list_works,
            "/authors": self.search_authors,
            "/works/W2741809807": self.singleton,
        }
        server.routes.update(routes)
        return self
