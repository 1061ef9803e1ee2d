"""Compiled profiles kept across processes (`digest.match.compile_cache` says what the bytes
mean; the store keeps them by hash and does not import it).

Example::

    store.save_compiled([("3f2a…", blob)], stale=["91c0…"])  # one transaction
    store.compiled_blobs(["3f2a…"])  # {"3f2a…": blob}
    store.compiled_hashes()  # {"3f2a…"}
"""

from __future__ import annotations

from collections.abc import Iterable

from digest.store.base import StoreBase, select_in, translate_store_errors


@translate_store_errors
class CompiledStore(StoreBase):
    """The compiled-profile cache (part of `Store`)."""

    def compiled_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """The stored compiled profiles among `hashes`, by hash."""
        rows = select_in(
            self.db.conn,
            "SELECT hash, compiled FROM compiled_profiles WHERE hash IN ({marks})",
            hashes,
        )
        return {str(row[0]): bytes(row[1]) for row in rows}

    def compiled_hashes(self) -> set[str]:
        """The hash of every stored compiled profile."""
        return {str(row[0]) for row in self.db.execute("SELECT hash FROM compiled_profiles")}

    def save_compiled(self, rows: Iterable[tuple[str, bytes]], stale: Iterable[str] = ()) -> None:
        """Store compiled profiles, (hash, bytes) each, replacing a row of the same hash, and
        drop the rows of `stale` hashes, in one transaction."""
        with self.transaction():
            self.db.conn.executemany(
                "INSERT INTO compiled_profiles (hash, compiled) VALUES (?, ?)"
                " ON CONFLICT (hash) DO UPDATE SET compiled = excluded.compiled",
                list(rows),
            )
            self.db.conn.executemany(
                "DELETE FROM compiled_profiles WHERE hash = ?", [(key,) for key in stale]
            )
