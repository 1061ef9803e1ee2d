"""The `files` source: listing JSONL files on disk, matched by a glob pattern.

Any user can point it at their own listings (`[[sources.files]] path = "listings/*.jsonl"`); the
demo reads the project's `seeds/` through it. The parser is a pure function over bytes.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from digest import limits
from digest.errors import SourceError
from digest.http import PoliteClient
from digest.localfiles import UnreadableFile, read_regular_file
from digest.models import Paper, paper_keys, parse_arxiv_id
from digest.sources.base import FetchContext, FetchResult, SourceCheck, load_json

_STRING_FIELDS = ("id", "title", "abstract", "url", "source")
_LIST_FIELDS = ("authors", "categories")


def read_listing_file(path: Path) -> bytes:
    """The bytes of one listing file: a regular file of at most `limits.LISTING_FILE_BYTES`
    (a FIFO or a device matched by the glob would block or never end), else SourceError."""
    try:
        return read_regular_file(path, limits.LISTING_FILE_BYTES)
    except UnreadableFile as exc:
        raise SourceError(f"{path}: {exc}") from exc


def parse_listing_jsonl(data: bytes, origin: str) -> tuple[Paper, ...]:
    """Parse listing JSONL (one object a line, blank lines ignored) into papers.

    Raises SourceError naming `origin` and the line for the first bad line: a payload is taken
    whole or not at all.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{origin}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    papers = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = load_json(line, f"{origin}:{number}")
        try:
            papers.append(listing_to_paper(obj, origin))
        except (ValueError, TypeError) as exc:
            raise SourceError(f"{origin}:{number}: {exc}") from None
    return tuple(papers)


def listing_to_paper(obj: Any, origin: str = "") -> Paper:
    """One listing object (DESIGN.md's listing schema) as a Paper; ValueError when malformed."""
    if not isinstance(obj, dict):
        raise ValueError("a listing line must be a JSON object")
    _check_field_types(obj)
    title = _one_line(obj.get("title", ""))
    if not title:
        raise ValueError("'title' is missing or empty")
    extra = _extra_of(obj)
    listing_id = obj.get("id", "").strip()
    arxiv_id, version = parse_arxiv_id(listing_id)
    doi = _doi_of(listing_id) or str(extra.get("doi") or "")
    return Paper(
        key=paper_keys(arxiv_id, doi, title)[0],
        title=title,
        authors=_names(obj.get("authors", [])),
        abstract=_one_line(obj.get("abstract", "")),
        categories=tuple(obj.get("categories", [])),
        published=_parse_date(obj.get("published")),
        url=obj.get("url", ""),
        source=obj.get("source", "") or origin,
        listing_id=listing_id,
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
        authors_truncated=bool(obj.get("authors_truncated", False)),
        extra=tuple(sorted(extra.items())),
    )


def _check_field_types(obj: dict[str, Any]) -> None:
    """ValueError naming the first string or list-of-strings field of another type."""
    for name in _STRING_FIELDS:
        if not isinstance(obj.get(name, ""), str):
            raise ValueError(f"{name!r} must be a string")
    for name in _LIST_FIELDS:
        if not _is_string_list(obj.get(name, [])):
            raise ValueError(f"{name!r} must be a list of strings")


def _is_string_list(value: Any) -> bool:
    """Whether `value` is a list of strings only."""
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _extra_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The line's `extra` object ({} when absent or null); ValueError for anything else."""
    extra = obj.get("extra")
    if extra is None:
        return {}
    if not isinstance(extra, dict):
        raise ValueError("'extra' must be an object")
    return extra


def _names(authors: list[str]) -> tuple[str, ...]:
    """The author names stripped, blank ones left out."""
    return tuple(a.strip() for a in authors if a.strip())


def _one_line(text: str) -> str:
    """`text` with its whitespace collapsed, read no further than any field may keep (the
    cleaner cuts to each field's cap and says so)."""
    return " ".join(limits.read_prefix(text, limits.ABSTRACT_CHARS).split())


def _doi_of(listing_id: str) -> str:
    """The DOI a listing id names (`doi:…`, a doi.org URL or a bare `10.…/…`), else ""."""
    text = listing_id.removeprefix("doi:").removeprefix("https://doi.org/")
    return text.lower() if text.startswith("10.") and "/" in text else ""


def _parse_date(value: Any) -> date | None:
    """The date of `published`; None when absent or empty, ValueError when malformed."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("'published' must be an ISO date string")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(f"'published' is not an ISO date: {value[:40]!r}") from None


class FilesSource:
    """Listing JSONL files matched by a glob pattern, read whole on every fetch."""

    def __init__(self, name: str, pattern: str) -> None:
        self._name = name
        self.pattern = pattern

    @property
    def name(self) -> str:
        """The source's name in the config and the fetch state."""
        return self._name

    def fetch(self, context: FetchContext) -> FetchResult:
        """Every listing in every matching file; SourceError if a file is unreadable or bad.

        The papers come from this source's configured name (the digest's `Sources:`); a line's
        own `source` tag is kept in `extra` as `listing_source`."""
        return FetchResult(papers=tuple(self._named(p) for p in self.read_all()))

    def _named(self, paper: Paper) -> Paper:
        """The paper as this source's, its line's own `source` tag kept as `listing_source`."""
        tagged = (("listing_source", paper.source),) if paper.source else ()
        extra = tuple(sorted({**dict(paper.extra), **dict(tagged)}.items()))
        return replace(paper, source=self.name, sources=(self.name,), extra=extra)

    def check(self, client: Callable[[], PoliteClient], today: date) -> SourceCheck:
        """For `digest doctor`: the pattern matches files, and they parse as listing JSONL."""
        try:
            papers = self.read_all()
        except SourceError as exc:
            return SourceCheck(False, str(exc), "fix the path in [[sources.files]] or the file")
        return SourceCheck(True, f"{len(papers)} listings in {self.pattern}")

    def read_all(self) -> Sequence[Paper]:
        """Parse every matching file, in name order."""
        paths = sorted(glob.glob(self.pattern, recursive=True))
        if not paths:
            raise SourceError(f"{self.name}: no files match {self.pattern}")
        papers: list[Paper] = []
        for path in paths:
            papers.extend(parse_listing_jsonl(read_listing_file(Path(path)), path))
        return papers
