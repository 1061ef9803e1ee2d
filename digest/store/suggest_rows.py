"""What suggestions read and keep: the stored papers of followed authors, a stable sample of
stored papers (the background a profile's model learns against), and each profile's trained
model with a hash of its inputs."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from datetime import datetime

from digest.models import Paper, fold
from digest.store.base import StoreBase, select_in, translate_store_errors
from digest.store.rows import iso, paper_from_row

_AUTHOR_PAPERS_LIMIT = 5_000  # papers read per followed last name at most


@translate_store_errors
class SuggestStore(StoreBase):
    """Suggestions' reads and the model cache (part of `Store`)."""

    def papers_by_last_name(self, last_name: str) -> list[Paper]:
        """Stored papers with an author whose folded name ends in `last_name` (a superset of
        a followed author's papers; the caller confirms each name)."""
        folded = fold(last_name).strip()
        if not folded:
            return []
        rows = self.db.execute(
            "SELECT p.* FROM papers p WHERE p.key IN (SELECT paper_key FROM authors"
            " WHERE folded = ? OR folded LIKE ?) ORDER BY p.seq LIMIT ?",
            [folded, f"% {folded}", _AUTHOR_PAPERS_LIMIT],
        )
        return [paper_from_row(row) for row in rows]

    def sample_papers(self, seed: str, size: int, skip: Iterable[str] = ()) -> list[Paper]:
        """A stable sample of `size` stored papers: those whose key hashes (with `seed`) lowest.

        Stable on purpose: a new paper enters the sample only when its hash is lower than the
        sample's largest, so a profile's model is not retrained for every fetch.
        """
        skipped = set(skip)
        keys = (row[0] for row in self.db.execute("SELECT key FROM papers"))
        chosen = heapq.nsmallest(
            size,
            (k for k in keys if k not in skipped),
            key=lambda k: hashlib.blake2b(f"{seed}\0{k}".encode(), digest_size=8).digest(),
        )
        rows = select_in(self.db.conn, "SELECT * FROM papers WHERE key IN ({marks})", chosen)
        return sorted((paper_from_row(row) for row in rows), key=lambda p: p.key)

    def papers_state(self) -> tuple[int, int, str]:
        """(count, last sequence, last update) of the stored papers: changes whenever a paper
        is added or updated."""
        row = self.db.execute(
            "SELECT count(*), coalesce(max(seq), 0), coalesce(max(updated_at), '') FROM papers"
        ).fetchone()
        return int(row[0]), int(row[1]), str(row[2])

    def saved_model(self, profile: str) -> tuple[str, bytes, int] | None:
        """(inputs hash, model bytes, trainings so far) of the profile's model, if any."""
        row = self.db.execute(
            "SELECT inputs, model, trainings FROM suggest_models WHERE profile = ?", [profile]
        ).fetchone()
        return (str(row[0]), bytes(row[1]), int(row[2])) if row else None

    def save_model(self, profile: str, inputs: str, model: bytes, now: datetime) -> None:
        """Keep the profile's newly trained model (counting the training)."""
        self.save_models([(profile, inputs, model)], now)

    def save_models(self, models: Iterable[tuple[str, str, bytes]], now: datetime) -> None:
        """Keep newly trained models, (profile, inputs hash, model bytes) each, in one
        transaction (counting each training)."""
        with self.transaction():
            for profile, inputs, model in models:
                self.db.execute(
                    "INSERT INTO suggest_models (profile, inputs, trained_at, trainings, model)"
                    " VALUES (?, ?, ?, 1, ?) ON CONFLICT (profile) DO UPDATE SET"
                    " inputs = excluded.inputs, trained_at = excluded.trained_at,"
                    " trainings = trainings + 1, model = excluded.model",
                    [profile, inputs, iso(now), model],
                )
