"""What the OpenAlex source remembers between fetches: watched papers resolved to OpenAlex work
ids (asked once), papers looked up to confirm a name-only author match (asked once, found or
not), and the list requests spent per UTC day (the daily budget)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from digest.store.base import StoreBase, select_in, translate_store_errors
from digest.store.rows import iso


@translate_store_errors
class OpenAlexStore(StoreBase):
    """OpenAlex resolutions, lookups and usage (part of `Store`)."""

    def resolved_works(self, watched: Iterable[str]) -> dict[str, dict[str, str]]:
        """For each of `watched` (`arxiv:…`, `doi:…`, `orcid:…`) already resolved: its OpenAlex
        work ids with their titles (empty when OpenAlex did not know it)."""
        found: dict[str, dict[str, str]] = {}
        sql = "SELECT watched, work_id, title FROM openalex_works WHERE watched IN ({marks})"
        for watched_name, work_id, title in select_in(self.db.conn, sql, watched):
            works = found.setdefault(watched_name, {})
            if work_id:
                works[work_id] = title
        return found

    def record_resolved(self, resolved: Mapping[str, Mapping[str, str]], now: datetime) -> None:
        """Remember what each watched paper resolved to (an empty mapping: not in OpenAlex)."""
        rows = [
            (watched, work_id, title, iso(now))
            for watched, works in resolved.items()
            for work_id, title in (works.items() if works else [("", "")])
        ]
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO openalex_works (watched, work_id, title, resolved_at)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )

    def looked_up(self, keys: Iterable[str]) -> set[str]:
        """Which of these paper keys were already looked up in OpenAlex."""
        sql = "SELECT paper_key FROM openalex_lookups WHERE paper_key IN ({marks})"
        return {row[0] for row in select_in(self.db.conn, sql, keys)}

    def record_lookups(self, found: Mapping[str, bool], now: datetime) -> None:
        """Remember that these papers were looked up, and whether OpenAlex knew them."""
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO openalex_lookups (paper_key, looked_at, found)"
                " VALUES (?, ?, ?)",
                [(key, iso(now), int(known)) for key, known in found.items()],
            )

    def openalex_usage(self, day: date) -> int:
        """List requests spent on OpenAlex on this UTC day."""
        row = self.db.execute(
            "SELECT requests FROM openalex_usage WHERE day = ?", [day.isoformat()]
        ).fetchone()
        return int(row[0]) if row else 0

    def add_openalex_usage(self, day: date, requests: int) -> None:
        """Count `requests` more list requests spent on this UTC day."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO openalex_usage (day, requests) VALUES (?, ?)"
                " ON CONFLICT (day) DO UPDATE SET requests = requests + excluded.requests",
                [day.isoformat(), requests],
            )
