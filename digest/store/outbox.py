"""The outbox: rendered digests waiting for, or past, delivery; per-recipient delivery state;
deliveries; and when each profile's send job last ran.

A digest is queued `pending` with its papers (reserved: never planned into another digest) and
its recipients. Each attempt records what happened to each recipient; the row's status follows
from theirs (`outbox_status`). Once any recipient has it, its papers are delivered to the profile.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from digest.errors import StoreError
from digest.models import SourceStatus
from digest.store.base import StoreBase, sql_list, translate_store_errors
from digest.store.rows import from_iso, iso

OutboxStatus = Literal["pending", "ambiguous", "partial", "sent", "failed", "undeliverable"]
RecipientStatus = Literal["pending", "ambiguous", "sent", "refused", "abandoned"]


# Outbox rows whose papers are reserved: never planned into another digest. A failed row (no
# recipient has it, none may have) releases its papers; a sent row's are in `deliveries`.
RESERVED_STATUSES: tuple[OutboxStatus, ...] = ("pending", "ambiguous", "partial", "undeliverable")
RESERVED_SQL = sql_list(RESERVED_STATUSES)
# Outbox rows that still need work: retried, with the same bytes, at every send.
RETRY_STATUSES: tuple[OutboxStatus, ...] = ("pending", "ambiguous", "partial")
_RETRY = sql_list(RETRY_STATUSES)
# Outbox rows whose papers are released: candidates again for the next digest, whatever their
# age (the window may have moved past them while the digest waited in the outbox).
RELEASED_STATUSES: tuple[OutboxStatus, ...] = ("failed",)
RELEASED_SQL = sql_list(RELEASED_STATUSES)
# Recipients still to try: never tried, refused for now (4xx), or the last try was ambiguous.
OPEN_RECIPIENT_STATUSES: tuple[RecipientStatus, ...] = ("pending", "ambiguous")
_OPEN = sql_list(OPEN_RECIPIENT_STATUSES)


@dataclass(frozen=True, slots=True)
class RecipientState:
    """Where one recipient of an outbox row stands."""

    address: str
    status: RecipientStatus
    attempts: int = 0
    ambiguous_attempts: int = 0  # tries that ended in doubt: they may have it
    last_reply: str = ""


def outbox_status(recipients: Iterable[RecipientState], *, give_up: bool) -> OutboxStatus:
    """An outbox row's status from its recipients (`give_up`: no more tries for the open ones).

    A row that any recipient has, or may have, stays bound to its Message-ID: it ends as sent
    (someone has it) or undeliverable (someone may), never failed, so its papers are never put
    into another message. Only a row nobody has nor may have ends failed.
    """
    states = list(recipients)
    statuses = {r.status for r in states}
    still_open = not give_up and not statuses.isdisjoint(OPEN_RECIPIENT_STATUSES)
    if still_open and "ambiguous" in statuses:
        return "ambiguous"
    maybe = any(r.ambiguous_attempts > 0 for r in states)
    return _ROW_STATUS[still_open, "sent" in statuses, maybe]


# An outbox row's status by (recipients still to try, a recipient has it, one may have it), when
# no recipient's last try was ambiguous.
_ROW_STATUS: dict[tuple[bool, bool, bool], OutboxStatus] = {
    (True, True, True): "partial",
    (True, True, False): "partial",
    (True, False, True): "ambiguous",
    (True, False, False): "pending",
    (False, True, True): "sent",
    (False, True, False): "sent",
    (False, False, True): "undeliverable",
    (False, False, False): "failed",
}


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One rendered digest waiting for, or past, delivery."""

    id: int
    profile: str
    message_id: str
    status: OutboxStatus
    created_at: datetime
    cutoff: datetime
    recipients: tuple[str, ...]
    subject: str
    raw: bytes
    paper_count: int
    attempts: int
    last_error: str
    sent_at: datetime | None
    chat: str = ""  # the chat message for `notify:` recipients (`digest.notify.ChatMessage`)


@translate_store_errors
class OutboxStore(StoreBase):
    """The outbox, deliveries and send runs (part of `Store`)."""

    def add_outbox(
        self,
        *,
        profile: str,
        message_id: str,
        recipients: tuple[str, ...],
        subject: str,
        raw: bytes,
        paper_keys: tuple[str, ...],
        cutoff: datetime,
        now: datetime,
        chat: str = "",
    ) -> int:
        """Queue a rendered digest; its papers are reserved until it is sent or fails."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO outbox (profile, message_id, status, created_at, cutoff, recipients,"
                " subject, raw, paper_count, chat) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                [
                    profile,
                    message_id,
                    iso(now),
                    iso(cutoff),
                    json.dumps(list(recipients)),
                    subject,
                    raw,
                    len(paper_keys),
                    chat,
                ],
            )
            outbox_id = int(cursor.lastrowid or 0)
            self.db.conn.executemany(
                "INSERT INTO outbox_papers (outbox_id, paper_key) VALUES (?, ?)",
                [(outbox_id, key) for key in paper_keys],
            )
            self._add_recipients(outbox_id, recipients)
        return outbox_id

    def _add_recipients(self, outbox_id: int, recipients: Iterable[str]) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO outbox_recipients (outbox_id, address, status)"
            " VALUES (?, ?, 'pending')",
            [(outbox_id, address) for address in recipients],
        )

    def outbox_recipients(self, outbox_id: int) -> list[RecipientState]:
        """Where each recipient of an outbox row stands, in the row's recipient order.

        A row queued before recipients were tracked gets its rows now: still to try while the
        row is open; for a finished row, what its status says (sent to all, or to none).
        """
        entry = self.outbox_entry(outbox_id)
        rows = self._recipient_rows(outbox_id)
        if not rows:
            known: dict[str, RecipientStatus] = {"sent": "sent", "failed": "abandoned"}
            with self.transaction():
                self._add_recipients(outbox_id, entry.recipients)
                self.db.execute(
                    "UPDATE outbox_recipients SET status = ? WHERE outbox_id = ?",
                    [known.get(entry.status, "pending"), outbox_id],
                )
            rows = self._recipient_rows(outbox_id)
        order = {address: n for n, address in enumerate(entry.recipients)}
        return sorted(rows, key=lambda r: order.get(r.address, len(order)))

    def _recipient_rows(self, outbox_id: int) -> list[RecipientState]:
        rows = self.db.execute(
            "SELECT address, status, attempts, ambiguous_attempts, last_reply"
            " FROM outbox_recipients WHERE outbox_id = ?",
            [outbox_id],
        ).fetchall()
        return [RecipientState(*row) for row in rows]

    def record_attempt(
        self,
        outbox_id: int,
        now: datetime,
        *,
        tried: Mapping[str, tuple[RecipientStatus, str]],
        error: str,
        give_up: bool = False,
    ) -> OutboxEntry:
        """Record one delivery attempt of an outbox row, atomically, and return the row.

        `tried` is what happened to each recipient tried (status, server reply); `error` the
        attempt's error ('' when the server accepted the message). `give_up` ends the row:
        its open recipients are abandoned. The row's status follows from its recipients
        (`outbox_status`); once any recipient has the message, its papers are delivered.
        """
        with self.transaction():
            for address, (outcome, reply) in tried.items():
                self.db.execute(
                    "UPDATE outbox_recipients SET status = ?, attempts = attempts + 1,"
                    " ambiguous_attempts = ambiguous_attempts + ?, last_reply = ?"
                    " WHERE outbox_id = ? AND address = ?",
                    [outcome, int(outcome == "ambiguous"), reply, outbox_id, address],
                )
            if give_up:
                self.db.execute(
                    "UPDATE outbox_recipients SET status = 'abandoned'"
                    f" WHERE outbox_id = ? AND status IN {_OPEN}",
                    [outbox_id],
                )
            status = outbox_status(self._recipient_rows(outbox_id), give_up=give_up)
            delivered = any(outcome == "sent" for outcome, _ in tried.values())
            self.db.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1,"
                " last_error = CASE WHEN ? != '' THEN ? ELSE last_error END,"
                " sent_at = CASE WHEN ? THEN coalesce(sent_at, ?) ELSE sent_at END"
                " WHERE id = ?",
                [status, error, error, int(delivered), iso(now), outbox_id],
            )
            if delivered:
                self.db.execute(
                    "INSERT OR IGNORE INTO deliveries (profile, paper_key, outbox_id, delivered_at)"
                    " SELECT o.profile, op.paper_key, o.id, ? FROM outbox_papers op"
                    " JOIN outbox o ON o.id = op.outbox_id WHERE o.id = ?",
                    [iso(now), outbox_id],
                )
        return self.outbox_entry(outbox_id)

    def failing_chats(self, profile: str) -> tuple[SourceStatus, ...]:
        """The profile's chat and push targets (`notify:` recipients) that its latest digest
        to them did not reach, with their last reply: for the next email's source health."""
        rows = self.db.execute(
            "SELECT r.address, r.last_reply, o.created_at FROM outbox_recipients r"
            " JOIN outbox o ON o.id = r.outbox_id WHERE o.profile = :p"
            " AND r.address LIKE 'notify:%' AND r.status != 'sent' AND o.id = ("
            "  SELECT max(l.outbox_id) FROM outbox_recipients l JOIN outbox lo"
            "  ON lo.id = l.outbox_id WHERE lo.profile = :p AND l.address = r.address)"
            " ORDER BY r.address",
            {"p": profile},
        ).fetchall()
        return tuple(
            SourceStatus(
                address,
                last_error=reply.removeprefix(f"{address}: ") or "not delivered yet",
                failing_since=from_iso(created),
            )
            for address, reply, created in rows
        )

    def outbox(self, profile: str | None = None, status: str | None = None) -> list[OutboxEntry]:
        """Outbox rows, oldest first, optionally of one profile and/or status."""
        sql = (
            "SELECT * FROM outbox"
            " WHERE (:p IS NULL OR profile = :p) AND (:s IS NULL OR status = :s)"
        )
        rows = self.db.execute(sql + " ORDER BY id", {"p": profile, "s": status}).fetchall()
        return [outbox_from_row(row) for row in rows]

    def outbox_to_retry(self, profile: str) -> list[OutboxEntry]:
        """The profile's outbox rows that still need work (RETRY_STATUSES), oldest first."""
        rows = self.db.execute(
            f"SELECT * FROM outbox WHERE profile = ? AND status IN {_RETRY} ORDER BY id",
            [profile],
        ).fetchall()
        return [outbox_from_row(row) for row in rows]

    def outbox_entry(self, outbox_id: int) -> OutboxEntry:
        """One outbox row by id."""
        row = self.db.execute("SELECT * FROM outbox WHERE id = ?", [outbox_id]).fetchone()
        if row is None:
            raise StoreError(f"{self.path or ':memory:'}: no outbox row {outbox_id}")
        return outbox_from_row(row)

    def record_send_run(self, profile: str, now: datetime, outcome: str) -> None:
        """Remember that the profile's send job completed (`outcome`: sent, or why not)."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO send_runs (profile, last_run, outcome) VALUES (?, ?, ?)"
                " ON CONFLICT (profile) DO UPDATE SET last_run = excluded.last_run,"
                " outcome = excluded.outcome",
                [profile, iso(now), outcome],
            )

    def last_delivery(self, profile: str) -> datetime | None:
        """When the profile's last digest was delivered (its newest delivered paper), if ever."""
        row = self.db.execute(
            "SELECT max(delivered_at) FROM deliveries WHERE profile = ?", [profile]
        ).fetchone()
        return from_iso(row[0]) if row and row[0] else None

    def last_send_run(self, profile: str) -> datetime | None:
        """When the profile's send job last completed, if ever."""
        row = self.db.execute(
            "SELECT last_run FROM send_runs WHERE profile = ?", [profile]
        ).fetchone()
        return from_iso(row[0]) if row else None


def outbox_from_row(row: sqlite3.Row) -> OutboxEntry:
    """The OutboxEntry an `outbox` row holds."""
    return OutboxEntry(
        id=row["id"],
        profile=row["profile"],
        message_id=row["message_id"],
        status=row["status"],
        created_at=from_iso(row["created_at"]) or datetime.min,
        cutoff=from_iso(row["cutoff"]) or datetime.min,
        recipients=tuple(json.loads(row["recipients"])),
        subject=row["subject"],
        raw=bytes(row["raw"]),
        paper_count=row["paper_count"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        sent_at=from_iso(row["sent_at"]),
        chat=row["chat"],
    )
