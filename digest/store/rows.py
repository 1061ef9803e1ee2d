"""Row encoding: how a Paper is stored in a `papers` row and read back.

`PAPER_COLUMNS` is the one table of the row's columns: the insert, the update and the decoder
are all built from it, so a column added to it is written and read everywhere at once. Times are
ISO 8601 text in UTC (it sorts as time does); tuples are JSON lists; `extra` is a JSON object.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any

from digest.memo import pure_memo
from digest.models import Paper


def iso(moment: datetime) -> str:
    """`moment` as stored: ISO 8601 in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> datetime | None:
    """A stored time, or None for an empty one."""
    return datetime.fromisoformat(text) if text else None


def _json_list(values: tuple[str, ...]) -> str:
    """A tuple of strings as a stored JSON list, non-ASCII kept as it is."""
    return json.dumps(list(values), ensure_ascii=False)


def _tuple(text: str) -> tuple[Any, ...]:
    """A stored JSON list as a tuple."""
    # Most stored lists are empty (ids, references, sources of one-source papers): no parser
    # for them (a year's 250k rows decode 7 lists each).
    return () if text == "[]" else tuple(json.loads(text))


def authors_from_text(text: str) -> tuple[str, ...]:
    """A stored `authors` column as the paper's author names."""
    return tuple(str(name) for name in _tuple(text))


# Columns whose stored texts repeat across papers (a year of bench's rows: 1,792 distinct
# category lists, one sources list, 146 dates, one first-seen time in 20k rows), decoded once
# per text: 10.6 -> 8.2 µs a row. The values are immutable, so papers share them.
_repeated_tuple = pure_memo(maxsize=1 << 12)(_tuple)


@pure_memo(maxsize=1 << 12)
def _date(text: str | None) -> date | None:
    """A stored date, or None."""
    return date.fromisoformat(text) if text else None


_repeated_time = pure_memo(maxsize=1 << 12)(from_iso)  # papers stored together share one


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a `papers` row: how the paper's value is stored, and read back."""

    name: str
    # The stored value, from the paper and the time of the write (None: the Paper attribute
    # of the same name, as it is).
    encode: Callable[[Paper, datetime], Any] | None = None
    # The Paper field's value, from the stored one (None: as stored).
    decode: Callable[[Any], Any] | None = None
    field: bool = True  # a Paper field (False: bookkeeping only)
    updated: bool = True  # rewritten when a stored paper changes (False: set once, at insert)


# In the table's order, `seq` left out (a test checks it against the schema).
PAPER_COLUMNS: tuple[Column, ...] = (
    Column("key", updated=False),
    Column("arxiv_id"),
    Column("version"),
    Column("doi"),
    Column("title"),
    Column("abstract"),
    Column("authors", lambda p, _: _json_list(p.authors), _tuple),
    Column("authors_truncated", lambda p, _: int(p.authors_truncated), bool),
    Column("categories", lambda p, _: json.dumps(list(p.categories)), _repeated_tuple),
    Column(
        "published",
        lambda p, _: p.published.isoformat() if p.published else None,
        _date,
    ),
    Column("url"),
    Column("source"),
    Column("sources", lambda p, _: _json_list(p.sources), _repeated_tuple),
    Column("listing_id"),
    Column(
        "extra",
        lambda p, _: json.dumps(dict(p.extra), ensure_ascii=False, sort_keys=True),
        lambda text: () if text == "{}" else tuple(sorted(json.loads(text).items())),
    ),
    Column("first_seen", lambda p, now: iso(p.first_seen or now), _repeated_time, updated=False),
    Column("updated_at", lambda _, now: iso(now), field=False),
    # Added after `seq` (the window migration's column, not a Paper field).
    Column("author_ids", lambda p, _: _json_list(p.author_ids), _tuple),
    Column("author_orcids", lambda p, _: _json_list(p.author_orcids), _tuple),
    Column("referenced", lambda p, _: _json_list(p.referenced), _tuple),
)


_Encoder = Callable[[Paper, datetime], Any]


def _copied_and_encoded(columns: Iterable[Column]) -> tuple[list[str], list[tuple[str, _Encoder]]]:
    """The names of the columns stored as the paper's attribute is, and the other columns'
    names with their encoders, each in the given order."""
    copied: list[str] = []
    encoded: list[tuple[str, _Encoder]] = []
    for column in columns:
        if column.encode is None:
            copied.append(column.name)
        else:
            encoded.append((column.name, column.encode))
    return copied, encoded


class _Writer:
    """The values of some columns, in the order `names` lists them: copied attributes first
    (one C-level `attrgetter`), then the encoded ones. Most columns are copied as they are."""

    def __init__(self, columns: Iterable[Column]) -> None:
        copied, encoded = _copied_and_encoded(columns)
        self._encoded = tuple(encode for _, encode in encoded)
        self.names = (*copied, *(name for name, _ in encoded))
        self._copy = attrgetter(*copied)

    def values(self, paper: Paper, now: datetime) -> list[Any]:
        """The columns' stored values for `paper`, written at `now`."""
        return [*self._copy(paper), *(encode(paper, now) for encode in self._encoded)]


_INSERT = _Writer(PAPER_COLUMNS)
_UPDATE = _Writer(c for c in PAPER_COLUMNS if c.updated)

# A new paper also gets the next commit sequence number (`seq`, appended to its row).
INSERT_PAPER = "INSERT INTO papers ({}, seq) VALUES ({}, ?)".format(
    ", ".join(_INSERT.names), ", ".join("?" * len(_INSERT.names))
)
UPDATE_PAPER = "UPDATE papers SET {} WHERE key = ?".format(
    ", ".join(f"{name} = ?" for name in _UPDATE.names)
)


def insert_row(paper: Paper, now: datetime, seq: int) -> list[Any]:
    """The values `INSERT_PAPER` binds for a new paper stored now as number `seq`."""
    return [*_INSERT.values(paper, now), seq]


def update_row(paper: Paper, now: datetime) -> list[Any]:
    """The values `UPDATE_PAPER` binds for a stored paper that changed now."""
    return [*_UPDATE.values(paper, now), paper.key]


def paper_from_row(row: sqlite3.Row | Mapping[str, Any]) -> Paper:
    """The Paper a `papers` row holds (ValueError when a stored value does not decode)."""
    values = row if isinstance(row, sqlite3.Row) else tuple(row.values())
    return _paper_of(_field_plan(tuple(row.keys())), values)


def papers_from_cursor(cursor: sqlite3.Cursor) -> Iterator[Paper]:
    """`paper_from_row` of each row of a query over `papers`, the columns' places worked out
    once from the cursor, not from every row's names (a pass reads a year's 250k rows)."""
    plan = _field_plan(tuple(column[0] for column in cursor.description))
    return (_paper_of(plan, row) for row in cursor)


# A Paper field's value from a row of known shape: its index in the row, and its decoder.
_FieldPlan = tuple[tuple[int, Callable[[Any], Any] | None], ...]


@pure_memo(maxsize=64)
def _field_plan(names: tuple[str, ...]) -> _FieldPlan:
    """Where each Paper field lies in rows of these columns, in the Paper's field order."""
    index = {name: number for number, name in enumerate(names)}
    decoders = {c.name: c.decode for c in PAPER_COLUMNS if c.field}
    return tuple((index[f.name], decoders[f.name]) for f in fields(Paper))


def _paper_of(plan: _FieldPlan, row: Sequence[Any]) -> Paper:
    """The Paper of one row by position, built positionally: 10.7 -> 7.9 µs a row against
    reading each column by name into keyword arguments (bench's 10k papers)."""
    return Paper(*[row[i] if decode is None else decode(row[i]) for i, decode in plan])
