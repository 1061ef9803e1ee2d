"""Fetch state: each source's last attempt, success and error, and the conditional-GET
validators remembered for each URL it reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime

from digest.http import Validators
from digest.models import SourceStatus
from digest.store.base import StoreBase, translate_store_errors
from digest.store.rows import from_iso, iso


@translate_store_errors
class FetchStateStore(StoreBase):
    """Fetch outcomes and validators per source (part of `Store`)."""

    def record_fetch(self, source: str, now: datetime, error: str = "") -> None:
        """Record one fetch attempt of `source`: a success, or the error it ended with."""
        with self.transaction():
            self._record_fetch(source, now, error)

    def _record_fetch(self, source: str, now: datetime, error: str) -> None:
        state = self.fetch_state(source)
        if error:  # failing since the first error in a row
            success = _opt_iso(state, "last_success")
            failing = _opt_iso(state, "failing_since") or iso(now)
        else:
            success, failing = iso(now), None
        self.db.execute(
            "INSERT INTO fetch_state (source, last_attempt, last_success, failing_since,"
            " last_error) VALUES (:source, :attempt, :success, :failing, :error)"
            " ON CONFLICT (source) DO UPDATE SET last_attempt = :attempt,"
            " last_success = :success, failing_since = :failing, last_error = :error",
            {
                "source": source,
                "attempt": iso(now),
                "success": success,
                "failing": failing,
                "error": error,
            },
        )

    def fetch_state(self, source: str) -> SourceStatus | None:
        """The last recorded fetch outcome of `source`."""
        row = self.db.execute("SELECT * FROM fetch_state WHERE source = ?", [source]).fetchone()
        return _status_from_row(row) if row else None

    def failing_sources(self) -> tuple[SourceStatus, ...]:
        """Sources whose last fetch failed, for the digest footer."""
        rows = self.db.execute("SELECT * FROM fetch_state WHERE last_error != '' ORDER BY source")
        return tuple(_status_from_row(row) for row in rows)

    def validators(self, source: str) -> dict[str, Validators]:
        """The conditional-GET validators remembered for each URL of `source`."""
        rows = self.db.execute(
            "SELECT url, etag, last_modified FROM http_validators WHERE source = ?", [source]
        )
        return {row[0]: Validators(row[1], row[2]) for row in rows}

    def _save_validators(self, source: str, validators: Mapping[str, Validators]) -> None:
        self.db.conn.executemany(
            "INSERT INTO http_validators (source, url, etag, last_modified)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (source, url) DO UPDATE SET"
            " etag = excluded.etag, last_modified = excluded.last_modified",
            [(source, url, v.etag, v.last_modified) for url, v in validators.items()],
        )


def _opt_iso(state: SourceStatus | None, attribute: str) -> str | None:
    """A recorded moment of the source's state as stored text; None when there is none."""
    value = getattr(state, attribute) if state else None
    return iso(value) if value else None


def _status_from_row(row: sqlite3.Row) -> SourceStatus:
    """The SourceStatus a `fetch_state` row holds."""
    return SourceStatus(
        name=row["source"],
        last_success=from_iso(row["last_success"]),
        last_error=row["last_error"],
        failing_since=from_iso(row["failing_since"]),
    )
