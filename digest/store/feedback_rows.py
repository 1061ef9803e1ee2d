"""Feedback: what a reader liked or disliked, per profile (one verdict per paper, the latest
counts; removing it is the undo). Suggestions learn from it; `digest serve` and
`digest feedback` write it."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from digest.models import Feedback, FeedbackAction
from digest.store.base import StoreBase, translate_store_errors
from digest.store.rows import iso


@translate_store_errors
class FeedbackStore(StoreBase):
    """Likes and dislikes per profile (part of `Store`)."""

    def record_feedback(
        self, profile: str, paper_key: str, action: FeedbackAction, at: datetime
    ) -> bool:
        """Record `action` on a paper for a profile, replacing an earlier verdict; False when
        that very verdict was already recorded (a replayed link changes nothing)."""
        with self.transaction():
            row = self.db.execute(
                "SELECT action FROM feedback WHERE profile = ? AND paper_key = ?",
                [profile, paper_key],
            ).fetchone()
            if row is not None and row[0] == action:
                return False
            self.db.execute(
                "INSERT INTO feedback (profile, paper_key, action, at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (profile, paper_key) DO UPDATE SET action = excluded.action,"
                " at = excluded.at",
                [profile, paper_key, action, iso(at)],
            )
        return True

    def remove_feedback(self, profile: str, paper_key: str) -> bool:
        """Forget the verdict on a paper (undo); False when there was none."""
        with self.transaction():
            cursor = self.db.execute(
                "DELETE FROM feedback WHERE profile = ? AND paper_key = ?", [profile, paper_key]
            )
        return cursor.rowcount > 0

    def feedback(self, profile: str) -> tuple[Feedback, ...]:
        """Every verdict of a profile, newest first."""
        rows = self.db.execute(
            "SELECT * FROM feedback WHERE profile = ? ORDER BY at DESC, paper_key", [profile]
        )
        return tuple(_feedback_from_row(row) for row in rows)


def _feedback_from_row(row: sqlite3.Row) -> Feedback:
    return Feedback(
        row["profile"], row["paper_key"], row["action"], datetime.fromisoformat(row["at"])
    )
