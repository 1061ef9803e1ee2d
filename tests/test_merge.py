"""The merge rules (digest.store.merge), without a database: which stored paper a listing is
another listing of, what merging it keeps, and what a batch writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.models import Paper, paper_keys
from digest.store.merge import BatchWrites, KnownPapers, find_existing, merge_papers, merged

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def listing(title: str = "KV Cache Eviction", **fields: Any) -> Paper:
    base = Paper(key="", title=title, source=str(fields.pop("source", "feed")))
    return replace(base, **fields)


def stored(title: str = "KV Cache Eviction", **fields: Any) -> Paper:
    paper = listing(title, **fields)
    keys = paper_keys(paper.arxiv_id, paper.doi, paper.title)
    return replace(paper, key=keys[0], first_seen=NOW, sources=(paper.source,))


def known(*papers: Paper) -> KnownPapers:
    table = KnownPapers()
    for paper in papers:
        for alias in paper.identity_keys:
            table.add(alias, paper)
    return table


@pytest.mark.parametrize(
    ("store", "new", "found"),
    [
        (stored(arxiv_id="2401.00001"), listing("Other title", arxiv_id="2401.00001"), True),
        (stored(doi="10.1/kv"), listing("Other title", doi="10.1/KV"), True),
        (stored(), listing("kv cache eviction"), True),
        (stored(arxiv_id="2401.00001"), listing(arxiv_id="2401.00002"), False),
        (stored(arxiv_id="2401.00001"), listing(), True),
        (stored(), listing("Unrelated work"), False),
    ],
    ids=[
        "same arXiv id",
        "same DOI, any case",
        "same title fingerprint",
        "same title, two arXiv ids: two papers",
        "same title, one without an id",
        "nothing shared",
    ],
)
def test_a_listing_finds_the_stored_paper_it_is_another_listing_of(
    store: Paper, new: Paper, found: bool
) -> None:
    existing = find_existing(new, new.identity_keys, known(store))
    assert (existing is store) is found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            stored(arxiv_id="1", version=1, abstract="old"),
            listing("New title", arxiv_id="1", version=2, abstract="new"),
            {"title": "New title", "abstract": "new", "version": 2},
        ),
        (
            stored(abstract="kept", categories=("cs.LG",)),
            listing(abstract="other", categories=("cs.CL", "cs.LG")),
            {"abstract": "kept", "categories": ("cs.LG", "cs.CL")},
        ),
        (
            stored(authors=("A One",), authors_truncated=True),
            listing(authors=("A One", "B Two")),
            {"authors": ("A One", "B Two"), "authors_truncated": False},
        ),
        (
            stored(extra=(("upvotes", 1),)),
            listing(extra=(("upvotes", None), ("code_url", "https://g.example/x"))),
            {"extra": (("code_url", "https://g.example/x"), ("upvotes", 1))},
        ),
        (
            stored(source="arxiv"),
            listing(source="hf"),
            {"sources": ("arxiv", "hf"), "source": "arxiv"},
        ),
    ],
    ids=[
        "a newer version replaces the text",
        "later sources only fill what is missing",
        "a complete author list replaces a truncated one",
        "signals are added, a missing one keeps the old",
        "sources accumulate, the first stays the source",
    ],
)
def test_merge_never_loses_information(old: Paper, new: Paper, expected: dict[str, Any]) -> None:
    result = merge_papers(old, new)
    assert {name: getattr(result, name) for name in expected} == expected
    assert (result.key, result.first_seen) == (old.key, old.first_seen)


def test_merged_names_the_outcome() -> None:
    new = listing(arxiv_id="2401.00001")
    keys = new.identity_keys
    outcome, first = merged(new, keys, None, NOW)
    assert outcome == "new" and first.key == keys[0] and first.first_seen == NOW
    assert first.sources == ("feed",)
    assert merged(new, keys, first, NOW) == ("unchanged", first)
    outcome, second = merged(replace(new, abstract="now with one"), keys, first, NOW)
    assert outcome == "updated" and second.abstract == "now with one"


def test_a_batch_writes_each_paper_once_in_its_final_state() -> None:
    old = stored(arxiv_id="2401.00001", authors=("A One",), authors_truncated=True)
    table, writes = known(old), BatchWrites()
    for text in ("first", "second"):
        new = listing(arxiv_id="2401.00001", abstract=text, authors=("A One", "B Two"))
        keys = new.identity_keys
        existing = find_existing(new, keys, table)
        _, result = merged(new, keys, existing, NOW)
        table.remember(result, keys)
        writes.note(result, keys, existing)
    fresh = listing("A new paper")
    _, added = merged(fresh, fresh.identity_keys, None, NOW)
    writes.note(added, fresh.identity_keys, None)
    assert [p.abstract for p in writes.updated] == ["first"]  # the second only fills: unchanged
    assert writes.authors_changed(writes.updated[0])
    assert [p.title for p in writes.new] == ["A new paper"]
