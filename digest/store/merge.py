"""The merge rules: how listings of the same paper from several sources become one stored
paper. Pure: no database here; `digest.store.papers` looks the stored papers up and writes what
these rules decide.

A listing is known by its identity keys (`arxiv:…`, `doi:…`, `title:…`, in that order of trust).
For example an arXiv listing of "KV Cache Eviction" (arxiv:2401.00001) stored on Monday, then
the same paper from a feed with only its title: the feed's `title:` key names the stored paper,
so the feed's listing is merged into it (`merge_papers`: it only fills what is missing) and the
paper is "updated", not "new"; read again the next day, nothing changes and it is "unchanged".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Any, Literal, TypeVar

from digest.models import Paper, fold

_T = TypeVar("_T")

Outcome = Literal["new", "updated", "unchanged"]
IdField = Literal["author_ids", "author_orcids"]


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What one batch of listings did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0


def merge_papers(old: Paper, new: Paper) -> Paper:
    """Enrich the stored paper with a later record of the same paper; never lose information.

    A newer arXiv version replaces title, abstract, authors and categories. Otherwise later
    sources only fill what is missing (a complete author list replaces a truncated one) and add
    their signals (upvotes, code links) to `extra`; `previous_version` records the version it
    replaced (the digest's "new version" badge), when that version was known.
    """
    if new.version > old.version:
        old = _new_version(old, new)
    listing = _fuller_authors(old, new)
    return replace(
        old,
        # What a later listing only fills in when the stored paper lacks it.
        abstract=old.abstract or new.abstract,
        published=old.published or new.published,
        url=old.url or new.url,
        arxiv_id=old.arxiv_id or new.arxiv_id,
        doi=old.doi or new.doi,
        listing_id=old.listing_id or new.listing_id,
        author_ids=_identities(listing.authors, old, new, "author_ids"),
        author_orcids=_identities(listing.authors, old, new, "author_orcids"),
        referenced=tuple(dict.fromkeys(old.referenced + new.referenced)),
        authors=listing.authors,
        authors_truncated=listing.authors_truncated,
        categories=tuple(dict.fromkeys(old.categories + new.categories)),
        version=max(old.version, new.version),
        extra=_merged_extra(old.extra, new.extra),
        sources=tuple(dict.fromkeys(old.sources + new.sources + _listed_source(new))),
    )


def _new_version(old: Paper, new: Paper) -> Paper:
    """The stored paper taking a newer arXiv version's title, abstract and authors (with the
    ids that still fit them), and noting the version it replaces when that was known."""
    listing = new if new.authors else old  # the record whose author list is kept
    authors = listing.authors
    seen = {"previous_version": old.version} if old.version else {}
    return replace(
        old,
        title=new.title or old.title,
        abstract=new.abstract or old.abstract,
        authors=authors,
        authors_truncated=listing.authors_truncated,
        author_ids=_carried(authors, old, new, "author_ids"),
        author_orcids=_carried(authors, old, new, "author_orcids"),
        version=new.version,
        extra=tuple(sorted({**dict(old.extra), **seen}.items())),
    )


def _carried(authors: tuple[str, ...], old: Paper, new: Paper, name: IdField) -> tuple[str, ...]:
    """The new version's identities moved onto `authors`, else the stored ones."""
    return _aligned(authors, new.authors, getattr(new, name)) or _aligned(
        authors, old.authors, getattr(old, name)
    )


def _fuller_authors(old: Paper, new: Paper) -> Paper:
    """The record whose author list the merged paper keeps: the stored one, unless it has none
    or the later one completes a truncated list."""
    if not new.authors:
        return old
    if not old.authors:
        return new
    return new if old.authors_truncated and len(new.authors) > len(old.authors) else old


def _listed_source(paper: Paper) -> tuple[str, ...]:
    """The source that read a listing, if it says (as a tuple to add to `sources`)."""
    return (paper.source,) if paper.source else ()


def _merged_extra(
    old: tuple[tuple[str, Any], ...], new: tuple[tuple[str, Any], ...]
) -> tuple[tuple[str, Any], ...]:
    """The stored signals updated with the later listing's known ones, sorted by name."""
    extra = dict(old)
    extra.update({name: value for name, value in new if value is not None})
    return tuple(sorted(extra.items()))


def _aligned(
    authors: tuple[str, ...], listed: tuple[str, ...], ids: tuple[str, ...]
) -> tuple[str, ...]:
    """`ids` (aligned with `listed`) moved onto `authors`, position by position, where the two
    lists name the same person there (same folded last word: sources spell first names
    differently, and a truncated list is shorter); "" elsewhere; () when none carries over."""
    if not any(ids):
        return ()
    moved = [
        found if _last(was) == _last(name) else ""
        for name, was, found in zip(authors, listed, ids, strict=False)
    ]
    moved += [""] * (len(authors) - len(moved))
    return tuple(moved) if any(moved) else ()


def _last(name: str) -> str:
    """A written name's folded last name (the first word of `Chen, Wei`)."""
    words = fold(name).replace(",", " ").split()
    if not words:
        return ""
    return words[0] if "," in name else words[-1]


def _identities(authors: tuple[str, ...], old: Paper, new: Paper, name: IdField) -> tuple[str, ...]:
    """The author identities of the merged paper: the later source's where it knows one (it
    is why it was asked), else what was stored."""
    fresh = _aligned(authors, new.authors, getattr(new, name))
    kept = _aligned(authors, old.authors, getattr(old, name))
    if not fresh:
        return kept
    if not kept:
        return fresh
    return tuple(a or b for a, b in zip(fresh, kept, strict=True))


def batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """`items` in lists of at most `size`, read lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class KnownPapers:
    """Stored papers by alias for one batch, kept current as the batch is written, so papers
    that meet inside a batch merge as they would one by one."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}  # alias -> paper key
        self._papers: dict[str, Paper] = {}  # paper key -> the paper as stored now

    def add(self, alias: str, paper: Paper) -> None:
        """Note a stored paper under `alias`."""
        self._keys[alias] = paper.key
        self._papers.setdefault(paper.key, paper)

    def get(self, alias: str) -> Paper | None:
        """The stored paper this alias names, if any."""
        key = self._keys.get(alias)
        return None if key is None else self._papers[key]

    def remember(self, stored: Paper, keys: tuple[str, ...]) -> None:
        """After a write: `stored` is the paper's current state; new aliases now name it (an
        alias already taken keeps its paper, as INSERT OR IGNORE does)."""
        self._papers[stored.key] = stored
        for alias in keys:
            self._keys.setdefault(alias, stored.key)


def merged(
    paper: Paper, keys: tuple[str, ...], existing: Paper | None, now: datetime
) -> tuple[Outcome, Paper]:
    """A listing as a new stored paper, or merged into the stored one: outcome and result."""
    sources = _listed_sources(paper)
    if existing is None:
        return "new", replace(paper, key=keys[0], first_seen=now, sources=sources)
    if sources != paper.sources:
        paper = replace(paper, sources=sources)
    merged = merge_papers(existing, paper)
    return ("unchanged", existing) if merged == existing else ("updated", merged)


def _listed_sources(paper: Paper) -> tuple[str, ...]:
    """The sources a listing names: its `sources`, else the one source that read it."""
    return paper.sources or _listed_source(paper)


class BatchWrites:
    """What a batch changes, as final states: a paper met twice in a batch is written once."""

    def __init__(self) -> None:
        self._new: dict[str, Paper] = {}
        self._updated: dict[str, Paper] = {}
        self._authors_before: dict[str, tuple[str, ...]] = {}
        self.aliases: list[tuple[str, str]] = []

    def note(self, stored: Paper, keys: tuple[str, ...], existing: Paper | None) -> None:
        """Record the state `stored` reached and the aliases it is known by."""
        self.aliases.extend((alias, stored.key) for alias in keys)
        if existing is None or stored.key in self._new:
            self._new[stored.key] = stored
        elif stored is not existing or stored.key in self._updated:
            self._authors_before.setdefault(stored.key, existing.authors)
            self._updated[stored.key] = stored

    @property
    def new(self) -> list[Paper]:
        """Papers the batch adds, in their final state."""
        return list(self._new.values())

    @property
    def updated(self) -> list[Paper]:
        """Stored papers the batch changes, in their final state."""
        return list(self._updated.values())

    def authors_changed(self, paper: Paper) -> bool:
        """True when an updated paper's authors differ from what was stored before the batch."""
        return paper.authors != self._authors_before[paper.key]


def find_existing(paper: Paper, keys: tuple[str, ...], known: KnownPapers) -> Paper | None:
    """The stored paper `paper` is another listing of, found by its first known alias."""
    for alias in keys:
        found = known.get(alias)
        if found is None:
            continue
        if alias.startswith("title:") and _other_arxiv_paper(found, paper):
            return None
        return found
    return None


def _other_arxiv_paper(a: Paper, b: Paper) -> bool:
    """Two different arXiv ids: two papers, not one, whatever their titles."""
    return bool(a.arxiv_id and b.arxiv_id) and a.arxiv_id != b.arxiv_id
