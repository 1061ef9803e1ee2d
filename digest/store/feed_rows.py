"""Feeds: each profile's feed-key generation (revoking a key bumps it) and the papers a
profile's feed lists (its deliveries, newest first, each with when its stored row last
changed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.models import Paper
from digest.store.base import StoreBase, translate_store_errors
from digest.store.rows import iso, paper_from_row


@dataclass(frozen=True, slots=True)
class DeliveredPaper:
    """A paper delivered to a profile: the stored paper, when it was delivered, and when its
    stored row last changed (a new arXiv version, a new title, …)."""

    paper: Paper
    delivered_at: datetime
    updated_at: datetime


@translate_store_errors
class FeedStore(StoreBase):
    """Feed keys and the papers of a feed (part of `Store`)."""

    def feed_generation(self, profile: str) -> int:
        """The profile's feed-key generation: 0 until a key is first revoked."""
        row = self.db.execute(
            "SELECT generation FROM feed_keys WHERE profile = ?", [profile]
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def revoke_feed_key(self, profile: str, now: datetime) -> int:
        """Revoke the profile's current feed key (its URLs answer 404 from now on); returns
        the new generation, whose key is the new one."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO feed_keys (profile, generation, changed_at) VALUES (?, 1, ?)"
                " ON CONFLICT (profile) DO UPDATE SET generation = generation + 1,"
                " changed_at = excluded.changed_at",
                [profile, iso(now)],
            )
        return self.feed_generation(profile)

    def delivered_papers(self, profile: str, since: datetime, limit: int) -> list[DeliveredPaper]:
        """The papers delivered to `profile` at or after `since`, newest delivery first (then
        by key), at most `limit`."""
        rows = self.db.execute(
            "SELECT p.*, d.delivered_at AS delivered_at_ FROM deliveries d"
            " JOIN papers p ON p.key = d.paper_key"
            " WHERE d.profile = ? AND d.delivered_at >= ?"
            " ORDER BY d.delivered_at DESC, p.key LIMIT ?",
            [profile, iso(since), limit],
        )
        return [
            DeliveredPaper(
                paper_from_row(row),
                datetime.fromisoformat(row["delivered_at_"]),
                datetime.fromisoformat(row["updated_at"]),
            )
            for row in rows
        ]
