"""Row encoding: how a Paper is stored in a `papers` row and read back.

`PAPER_COLUMNS` is the one table of the row's columns: the insert, the update and the decoder
are all built from it, so a column added to it is written and read everywhere at once. Times are
ISO 8601 text in UTC (it sorts as time does); tuples are JSON lists; `extra` is a JSON object.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from digest.models import Paper


def iso(moment: datetime) -> str:
    """`moment` as stored: ISO 8601 in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> datetime | None:
    """A stored time, or None for an empty one."""
    return datetime.fromisoformat(text) if text else None


def _json_list(values: tuple[str, ...]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def _tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a `papers` row: its value from the paper (and the time of the write), and
    the Paper field it decodes to (None: bookkeeping only, not part of the Paper)."""

    name: str
    encode: Callable[[Paper, datetime], Any]
    decode: Callable[[Any], Any] | None = _same
    updated: bool = True  # rewritten when a stored paper changes (False: set once, at insert)


PAPER_COLUMNS: tuple[Column, ...] = (
    Column("key", lambda p, _: p.key, updated=False),
    Column("arxiv_id", lambda p, _: p.arxiv_id),
    Column("version", lambda p, _: p.version),
    Column("doi", lambda p, _: p.doi),
    Column("title", lambda p, _: p.title),
    Column("abstract", lambda p, _: p.abstract),
    Column("authors", lambda p, _: _json_list(p.authors), _tuple),
    Column("authors_truncated", lambda p, _: int(p.authors_truncated), bool),
    Column("categories", lambda p, _: json.dumps(list(p.categories)), _tuple),
    Column(
        "published",
        lambda p, _: p.published.isoformat() if p.published else None,
        lambda text: date.fromisoformat(text) if text else None,
    ),
    Column("url", lambda p, _: p.url),
    Column("source", lambda p, _: p.source),
    Column("sources", lambda p, _: _json_list(p.sources), _tuple),
    Column("listing_id", lambda p, _: p.listing_id),
    Column(
        "extra",
        lambda p, _: json.dumps(dict(p.extra), ensure_ascii=False, sort_keys=True),
        lambda text: tuple(sorted(json.loads(text).items())),
    ),
    Column("first_seen", lambda p, now: iso(p.first_seen or now), from_iso, updated=False),
    Column("updated_at", lambda _, now: iso(now), None),
)
_UPDATED = tuple(c for c in PAPER_COLUMNS if c.updated)
_DECODED = tuple((c.name, c.decode) for c in PAPER_COLUMNS if c.decode is not None)

# A new paper also gets the next commit sequence number (`seq`, appended to its row).
INSERT_PAPER = "INSERT INTO papers ({}, seq) VALUES ({}, ?)".format(
    ", ".join(c.name for c in PAPER_COLUMNS), ", ".join("?" * len(PAPER_COLUMNS))
)
UPDATE_PAPER = "UPDATE papers SET {} WHERE key = ?".format(
    ", ".join(f"{c.name} = ?" for c in _UPDATED)
)


def insert_row(paper: Paper, now: datetime, seq: int) -> list[Any]:
    """The values `INSERT_PAPER` binds for a new paper stored now as number `seq`."""
    return [*(c.encode(paper, now) for c in PAPER_COLUMNS), seq]


def update_row(paper: Paper, now: datetime) -> list[Any]:
    """The values `UPDATE_PAPER` binds for a stored paper that changed now."""
    return [*(c.encode(paper, now) for c in _UPDATED), paper.key]


def paper_from_row(row: sqlite3.Row | Mapping[str, Any]) -> Paper:
    """The Paper a `papers` row holds (ValueError when a stored value does not decode)."""
    return Paper(**{name: decode(row[name]) for name, decode in _DECODED})
