"""Stored hits: the term book, the ingest-time scan, the hit store, and matching from them.

The one rule: matching from stored hits gives exactly what matching the text now gives, for
any papers and profiles (`test_ingest_then_query_equals_direct_matching`), after the book grows
(only new terms scanned), after a paper changes, and on a database made before hits existed.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from digest.match import Matcher, compile_term, match_profiles, term_forms
from digest.match.authors import author_keys
from digest.match.hitscan import PaperScan, decode, encode, extended
from digest.match.termbook import TermBook, book_digest, term_of
from digest.models import FollowedAuthor, Paper, Profile
from digest.plan.hits import HitKeeper, profile_terms, text_hash
from digest.store import EPOCH, SCHEMA_VERSION, Store
from tests.stored_path import STORED_AT, match_stored_profiles, said, scanners_made
from tests.test_match import index_terms, index_texts, seed_papers

DATA = Path(__file__).parent / "data" / "store"

spans = st.lists(
    st.tuples(st.integers(0, 2**31), st.integers(0, 2**31)), min_size=1, max_size=4
).map(tuple)
field_hits = st.dictionaries(st.integers(0, 2**20), spans, max_size=6)


@given(field_hits, field_hits)
def test_a_scan_reads_back_as_it_was_written(title: Any, abstract: Any) -> None:
    scan = PaperScan(title, abstract)
    assert decode(encode(scan)) == scan


older_hits = st.dictionaries(st.integers(0, 999), spans, max_size=6)
newer_hits = st.dictionaries(st.integers(1000, 2**20), spans, max_size=6)


@given(older_hits, older_hits, newer_hits, newer_hits)
@example({}, {}, {}, {})
@example({}, {}, {1000: ((0, 1),)}, {})
def test_a_scan_extended_as_bytes_is_the_merged_scan_encoded(
    title: Any, abstract: Any, new_title: Any, new_abstract: Any
) -> None:
    older, newer = PaperScan(title, abstract), PaperScan(new_title, new_abstract)
    blob = encode(older) if title or abstract else b""  # also a paper stored with no scan yet
    assert extended(blob, newer) == encode(older.merged(newer)) or (
        blob == b"" and not newer.title and not newer.abstract
    )
    assert decode(extended(blob, newer)) == older.merged(newer)


def test_the_encoding_is_a_few_integers_a_hit() -> None:
    # The worked example of digest.match.hitscan: term 0 in the title at 12..21.
    blob = encode(PaperScan({0: ((12, 21),)}, {}))
    assert len(blob) == 24 and decode(blob) == PaperScan({0: ((12, 21),)}, {})


@settings(max_examples=300)
@given(index_terms)
@example("mixture of experts")
@example("KV-Caches")
@example("quantiz*")
def test_a_term_rebuilt_from_its_key_is_spelled_the_same_ways(raw: str) -> None:
    term = compile_term(raw)
    assert term_forms(term_of(term.key)) == term_forms(term)
    assert term_of(term.key).key == term.key


def test_the_book_only_grows_and_keeps_every_number() -> None:
    kv, rl, star = (compile_term(raw).key for raw in ("KV cache", "RL", "quantiz*"))
    book = TermBook((kv, rl))
    grown = book.with_terms([rl, star, kv])
    assert grown.keys == (kv, rl, star) and grown.numbers[star] == 2
    assert book.with_terms([kv]) is book
    assert book_digest(grown.keys) != book_digest(book.keys)
    assert grown.covers([kv, star]) and not book.covers([star])


def _paper(number: int, title: str, abstract: str, **fields: Any) -> Paper:
    arxiv = f"2611.{number:05d}"
    return Paper(f"arxiv:{arxiv}", title, abstract=abstract, arxiv_id=arxiv, **fields)


profiles_of_terms = st.lists(
    st.builds(
        lambda keywords, group, exclude, number: Profile(
            f"p{number}",
            keywords=tuple(keywords),
            all_of=(tuple(group),) if group else (),
            exclude=tuple(exclude),
            authors=(FollowedAuthor("Ada Lovelace"),),
        ),
        st.lists(index_terms, max_size=4),
        st.lists(index_terms, max_size=2),
        st.lists(index_terms, max_size=1),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda profile: profile.name,
)
papers_of_texts = st.lists(
    st.tuples(index_texts, index_texts, st.booleans()), min_size=1, max_size=6
).map(
    lambda fields: [
        _paper(n, title or "untitled", abstract, authors=("A. Lovelace",) if by_ada else ())
        for n, (title, abstract, by_ada) in enumerate(fields)
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(papers_of_texts, profiles_of_terms)
def test_ingest_then_query_equals_direct_matching(
    papers: list[Paper], profiles: list[Profile]
) -> None:
    direct = match_profiles(papers, profiles)
    stored = match_stored_profiles(papers, profiles)
    assert {name: said(m) for name, m in stored.items()} == {
        name: said(m) for name, m in direct.items()
    }


SEED_PROFILES = (
    Profile("llm", keywords=("large language model", "LLMs", "quantiz*", "KV cache", "RL")),
    Profile(
        "rl",
        keywords=("reinforcement learning", "policy"),
        all_of=(("diffusion", "language model"),),
        exclude=("survey",),
    ),
    Profile("vision", keywords=("vision transformer", "segmentation"), categories=("cs.CV",)),
)


def test_the_seeds_match_the_same_through_stored_hits() -> None:
    store = Store.open(None)
    stored = match_stored_profiles(seed_papers(), SEED_PROFILES, store)
    # The store holds each paper once (the seeds list some twice): matched as it holds them.
    direct = match_profiles(list(store.papers_seen_since(EPOCH)), SEED_PROFILES)
    assert sum(map(len, direct.values())) > 20
    assert {n: said(m) for n, m in stored.items()} == {n: said(m) for n, m in direct.items()}


def test_a_new_keyword_is_scanned_alone_over_papers_scanned_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    papers = seed_papers()[:80]
    store = Store.open(None)
    store.ingest("seeds", papers, (), {}, STORED_AT)
    held = store.count_papers()  # the seeds list a few papers twice: stored once
    before = Profile("me", keywords=("language model", "policy"))
    assert HitKeeper([before]).refresh(store, EPOCH) == held
    made = scanners_made(monkeypatch)
    keys_made: list[Sequence[str]] = []

    def counted(authors: Sequence[str]) -> bytes:
        keys_made.append(authors)
        return author_keys(authors)

    monkeypatch.setattr("digest.plan.hits.author_keys", counted)
    keys_before = {key: hits.names for key, hits in store.stored_hits(_keys(store)).items()}
    after = replace(before, keywords=(*before.keywords, "reinforcement learning"))
    keeper = HitKeeper([after])
    assert keeper.refresh(store, EPOCH) == held
    size = len(profile_terms([before]))
    # One scanner, of the one new term: numbers `size` and up of a book of `size + 1`; the
    # papers' author keys kept as they were, none made again.
    assert made == [(size + 1, size)]
    assert keys_made == []
    assert {key: h.names for key, h in store.stored_hits(_keys(store)).items()} == keys_before
    assert keeper.refresh(store, EPOCH) == 0  # nothing left to scan
    stored = match_stored_profiles([], [after], store)["me"]
    assert said(stored) == said(match_profiles(list(store.papers_seen_since(EPOCH)), [after])["me"])
    assert any(r.term == "reinforcement learning" for m in stored for r in m.reasons)


def _keys(store: Store) -> list[str]:
    return [paper.key for paper in store.papers_seen_since(EPOCH)]


def test_a_dropped_keyword_is_ignored_not_rescanned(monkeypatch: pytest.MonkeyPatch) -> None:
    papers = seed_papers()[:40]
    store = Store.open(None)
    store.ingest("seeds", papers, (), {}, STORED_AT)
    both = Profile("me", keywords=("language model", "policy"))
    HitKeeper([both]).refresh(store, EPOCH)
    made = scanners_made(monkeypatch)
    one = replace(both, keywords=("policy",))
    assert HitKeeper([one]).refresh(store, EPOCH) == 0 and made == []
    stored = match_stored_profiles([], [one], store)["me"]
    held = list(store.papers_seen_since(EPOCH))
    assert said(stored) == said(match_profiles(held, [one])["me"])
    assert all(r.term == "policy" for m in stored for r in m.reasons)


def test_a_paper_whose_text_changed_is_scanned_again() -> None:
    store = Store.open(None)
    profile = Profile("me", keywords=("KV cache",))
    first = _paper(1, "Compressing KV caches", "We study memory.", version=1)
    store.ingest("a", [first], (), {}, STORED_AT)
    keeper = HitKeeper([profile])
    keeper.refresh(store, EPOCH)
    second = replace(first, title="Pruning attention heads", version=2)
    store.ingest("a", [second], (), {}, STORED_AT + timedelta(hours=1))
    # Before a refresh, the stored scan is of other text: the pass scans the paper now.
    stored = list(store.papers_seen_since(EPOCH))
    _, scans = keeper.scans_for(store, stored)
    assert scans == [PaperScan({}, {})]
    assert keeper.refresh(store, EPOCH) == 1
    assert store.stored_hits([first.key])[first.key].text_hash == text_hash(stored[0])
    assert match_stored_profiles([], [profile], store)["me"] == ()


def test_a_pass_does_not_trust_a_scan_of_other_text_with_the_same_stamp() -> None:
    # Two updates stamped at the same instant (a frozen clock): the stored scan's update
    # stamp matches, its text hash does not, so the pass scans the paper's text now.
    store = Store.open(None)
    profile = Profile("me", keywords=("KV cache",))
    paper = _paper(1, "Compressing KV caches", "", version=1)
    store.ingest("a", [paper], (), {}, STORED_AT)
    keeper = HitKeeper([profile])
    keeper.refresh(store, EPOCH)
    store.db.execute("UPDATE papers SET title = 'Pruning heads' WHERE key = ?", [paper.key])
    assert match_stored_profiles([], [profile], store)["me"] == ()


def test_a_read_only_pass_covers_new_terms_without_writing() -> None:
    store = Store.open(None)
    papers = seed_papers()[:30]
    store.ingest("seeds", papers, (), {}, STORED_AT)
    HitKeeper([Profile("me", keywords=("policy",))]).refresh(store, EPOCH)
    terms_before = store.term_rows()
    wider = Profile("me", keywords=("policy", "language model"))
    stored = list(store.papers_seen_since(EPOCH))
    book, scans = HitKeeper([wider]).scans_for(store, stored)
    assert store.term_rows() == terms_before  # nothing written
    matcher = Matcher([wider])
    got = [matcher.match_stored(p, s, book) for p, s in zip(stored, scans, strict=True)]
    assert got == [matcher.match(p) for p in stored]


def test_a_database_made_before_stored_hits_is_brought_to_them(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(DATA / "schema-8.sqlite", path)
    with sqlite3.connect(path) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 8
        count = old.execute("SELECT count(*) FROM papers").fetchone()[0]
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION and store.count_hit_rows() == 0
    profiles = [Profile("me", keywords=("language model", "reinforcement learning", "agent*"))]
    assert HitKeeper(profiles).refresh(store, EPOCH) == count
    assert store.count_hit_rows() == count
    papers = list(store.papers_seen_since(EPOCH))
    stored = match_stored_profiles([], profiles, store)["me"]
    assert stored and said(stored) == said(match_profiles(papers, profiles)["me"])
    store.close()


# The profile `schema-12.sqlite` was refreshed for (tests/data/store/README.md).
SCHEMA_12_PROFILE = Profile(
    "me",
    keywords=("language model", "reinforcement learning", "agent*"),
    authors=(FollowedAuthor("Rishabh Tiwari"), FollowedAuthor("H. Singh")),
)


def test_stored_hits_without_author_keys_get_them_and_keep_their_scans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v12.sqlite"
    shutil.copy(DATA / "schema-12.sqlite", path)
    with sqlite3.connect(path) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 12
        scans = dict(old.execute("SELECT paper_key, hits FROM paper_hits").fetchall())
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert {h.names for h in store.stored_hits(scans).values()} == {None}
    made = scanners_made(monkeypatch)
    assert HitKeeper([SCHEMA_12_PROFILE]).refresh(store, EPOCH) == len(scans) == 22
    assert made == []  # the scans were of the same text, covering the book: none made again
    stored = store.stored_hits(scans)
    assert {key: hits.blob for key, hits in stored.items()} == scans
    papers = {paper.key: paper for paper in store.papers_seen_since(EPOCH)}
    assert all(hits.names == author_keys(papers[key].authors) for key, hits in stored.items())
    assert HitKeeper([SCHEMA_12_PROFILE]).refresh(store, EPOCH) == 0
    got = match_stored_profiles([], [SCHEMA_12_PROFILE], store)["me"]
    assert said(got) == said(match_profiles(list(papers.values()), [SCHEMA_12_PROFILE])["me"])
    assert {r.kind for m in got for r in m.reasons} == {"author", "keyword"}
    store.close()


def test_author_keys_of_another_layout_are_stored_again(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(None)
    paper = _paper(1, "Agents", "", authors=("Ada Lovelace",))
    store.ingest("a", [paper], (), {}, STORED_AT)
    keeper_profiles = [Profile("me", authors=(FollowedAuthor("A. Lovelace"),))]
    keeper = HitKeeper(keeper_profiles)
    assert keeper.refresh(store, EPOCH) == 1
    # A later release's layout (2): the keys of layout 1 are not trusted, then stored again.
    monkeypatch.setattr("digest.match.authors._KEYS_LAYOUT", 2)
    monkeypatch.setattr("digest.plan.hits.KEYS_START", b"\x02\x00\x00\x00")
    papers = list(store.papers_seen_since(EPOCH))
    book, scans = keeper.scans_for(store, papers)
    assert scans[0].author_keys is not None and scans[0].author_keys[0] == 1
    [found] = Matcher(keeper_profiles).match_stored_all(papers, scans, book)
    assert [r.text for r in found["me"].reasons] == ["Ada Lovelace"]  # read in full: found
    assert keeper.refresh(store, EPOCH) == 1
    assert store.stored_hits([paper.key])[paper.key].names == author_keys(paper.authors)
    assert keeper.refresh(store, EPOCH) == 0


def test_a_paper_whose_authors_changed_is_read_in_full_before_a_refresh() -> None:
    # Same text, other authors, and the stored keys not yet refreshed: the keys are of the
    # old author list, so a pass reads every author of the new one.
    store = Store.open(None)
    profile = Profile("me", authors=(FollowedAuthor("Grace Hopper"),))
    first = _paper(1, "Compilers", "", authors=("Ada Lovelace",), version=1)
    store.ingest("a", [first], (), {}, STORED_AT)
    HitKeeper([profile]).refresh(store, EPOCH)
    second = replace(first, authors=("Ada Lovelace", "Grace Hopper"), version=2)
    store.ingest("a", [second], (), {}, STORED_AT + timedelta(hours=1))
    papers = list(store.papers_seen_since(EPOCH))
    book, scans = HitKeeper([profile]).scans_for(store, papers)
    assert scans[0].author_keys == author_keys(first.authors)  # stale, of the old list
    [found] = Matcher([profile]).match_stored_all(papers, scans, book)
    assert [r.text for r in found["me"].reasons] == ["Grace Hopper"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    papers_of_texts,
    profiles_of_terms,
    st.lists(st.sampled_from(["cs.LG", "cs.CL", "math.ST"]), max_size=2),
)
def test_the_verdict_algebra_decides_as_the_rules_do(
    papers: list[Paper], profiles: list[Profile], categories: list[str]
) -> None:
    papers = [replace(p, categories=tuple(categories[: n % 3])) for n, p in enumerate(papers)]
    profiles = [replace(p, categories=tuple(categories[n % 2 :])) for n, p in enumerate(profiles)]
    matcher = Matcher(profiles)
    readings = [matcher.read(paper) for paper in papers]
    assert matcher.decide(readings) == [list(matcher.verdicts(hits)) for hits in readings]


matrix_entries = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 5), st.integers(1, 3)),
    unique_by=lambda entry: entry[:2],
    max_size=30,
)
hit_pairs = st.lists(st.tuples(st.integers(0, 9), st.integers(0, 7)), unique=True, max_size=40)


@given(entries=matrix_entries, hits=hit_pairs, unit=st.booleans())
def test_a_sparse_product_is_the_dense_product(
    entries: list[tuple[int, int, int]],
    hits: list[tuple[int, int]],
    unit: bool,
) -> None:
    import numpy as np

    from digest.match import algebra

    entries = [(row, column, 1 if unit else value) for row, column, value in entries]
    matrix = algebra.Rows(entries, (8, 6))
    dense = np.zeros((8, 6), dtype=np.int64)
    for row, column, value in entries:
        dense[row, column] = value
    picked = np.zeros((10, 8), dtype=np.int64)
    for row, column in hits:
        picked[row, column] = 1
    rows = np.array([r for r, _ in sorted(hits)], dtype=np.int64)
    columns = np.array([c for _, c in sorted(hits)], dtype=np.int64)
    product = matrix.times(rows, columns)  # values all 1 (counted by sorting) or not
    expected = (picked @ dense)[: (int(rows.max()) + 1) if len(rows) else 0]
    assert product.places.tolist() == np.flatnonzero(expected).tolist()
    assert product.values.tolist() == expected.ravel()[np.flatnonzero(expected)].tolist()


@given(st.lists(st.integers(-5, 30), max_size=40), st.lists(st.integers(-5, 30), max_size=40))
def test_set_work_on_sorted_arrays_is_numpys(values: list[int], known: list[int]) -> None:
    import numpy as np

    from digest.match.algebra import _among, _distinct

    array, others = np.array(values, dtype=np.int64), np.array(known, dtype=np.int64)
    assert _distinct(array).tolist() == np.unique(array).tolist()
    assert _among(array, np.unique(others)).tolist() == np.isin(array, others).tolist()
