"""The SQLite store: schema version and migrations, identity and merge rules, outbox and
deliveries. Real SQLite, in memory or in a temp dir."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import LockedError, StoreError
from digest.models import Paper, paper_keys, parse_arxiv_id, title_fingerprint
from digest.store import SCHEMA_VERSION, RecipientStatus, Store, exclusive_lock, merge_papers

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def paper(title: str = "Speculative Decoding at Scale", **fields: object) -> Paper:
    arxiv_id = str(fields.get("arxiv_id", ""))
    doi = str(fields.get("doi", ""))
    base = Paper(key=paper_keys(arxiv_id, doi, title)[0], title=title, source="test")
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2401.01234", ("2401.01234", 0)),
        ("2401.01234v3", ("2401.01234", 3)),
        ("arXiv:2401.01234v2", ("2401.01234", 2)),
        ("https://arxiv.org/abs/2401.01234v2", ("2401.01234", 2)),
        ("http://arxiv.org/pdf/2401.01234v1.pdf", ("2401.01234", 1)),
        ("0704.0001", ("0704.0001", 0)),
        ("hep-th/9901001", ("hep-th/9901001", 0)),
        ("math.GT/0309136v2", ("math.GT/0309136", 2)),
        ("10.1000/xyz", ("", 0)),
        ("", ("", 0)),
    ],
)
def test_parse_arxiv_id(value: str, expected: tuple[str, int]) -> None:
    assert parse_arxiv_id(value) == expected


def test_title_fingerprint_ignores_case_accents_latex_and_punctuation() -> None:
    assert title_fingerprint("$\\texttt{SPECS}$: Faster Décoding!") == title_fingerprint(
        "SPECS - faster decoding"
    )
    assert title_fingerprint("Faster decoding") != title_fingerprint("Slower decoding")


def test_new_database_is_at_the_latest_schema_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION >= 1
    store.upsert_papers([paper()], NOW)
    store.close()
    again = Store.open(path)
    assert again.schema_version == SCHEMA_VERSION and again.count_papers() == 1
    assert again.integrity_ok()


def test_database_from_a_newer_digest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this digest"):
        Store.open(path)


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open(path)


def test_same_paper_from_several_sources_is_one_paper_enriched() -> None:
    store = Store.open(None)
    arxiv = paper(
        arxiv_id="2401.01234",
        version=1,
        categories=("cs.CL",),
        url="https://a/1",
        authors=("A One", "B Two"),
        abstract="An abstract.",
    )
    hf = paper(
        arxiv_id="2401.01234",
        source="hf",
        extra=(("upvotes", 12), ("code_url", "https://github.com/x/y")),
        authors=("A One",),
        authors_truncated=True,
    )
    counts = store.upsert_papers([arxiv, hf], NOW)
    assert (counts.new, counts.updated) == (1, 1)
    [stored] = list(store.papers_seen_since(NOW))
    assert stored.key == "arxiv:2401.01234"
    assert stored.upvotes == 12 and stored.extra_value("code_url") == "https://github.com/x/y"
    assert stored.authors == ("A One", "B Two") and not stored.authors_truncated
    assert stored.sources == ("test", "hf")


def test_a_listing_without_id_merges_by_title_fingerprint() -> None:
    store = Store.open(None)
    store.upsert_papers(
        [paper("Interactive Concept Bottleneck Models", authors=("K C",), authors_truncated=True)],
        NOW,
    )
    counts = store.upsert_papers(
        [
            paper(
                "Interactive concept-bottleneck models",
                arxiv_id="2212.07430",
                extra=(("upvotes", 3),),
            )
        ],
        NOW,
    )
    assert (counts.new, counts.updated) == (0, 1)
    stored = store.get_paper("arxiv:2212.07430")
    assert stored is not None and stored.arxiv_id == "2212.07430" and stored.upvotes == 3
    assert store.get_paper(f"title:{title_fingerprint('Interactive Concept Bottleneck Models')}")
    assert store.count_papers() == 1


def test_same_title_different_arxiv_ids_stay_two_papers() -> None:
    store = Store.open(None)
    store.upsert_papers([paper("Attention", arxiv_id="1706.03762")], NOW)
    store.upsert_papers([paper("Attention", arxiv_id="2001.00001")], NOW)
    assert store.count_papers() == 2


def test_doi_identity_is_case_insensitive() -> None:
    store = Store.open(None)
    store.upsert_papers([paper("One title", doi="10.1000/ABC")], NOW)
    counts = store.upsert_papers([paper("Another title entirely", doi="10.1000/abc")], NOW)
    assert counts.new == 0 and store.count_papers() == 1


def test_new_arxiv_version_updates_the_paper_and_is_not_new() -> None:
    store = Store.open(None)
    store.upsert_papers([paper("Old title", arxiv_id="2401.01234", version=1, abstract="old")], NOW)
    later = NOW + timedelta(days=3)
    counts = store.upsert_papers(
        [paper("New title", arxiv_id="2401.01234", version=2, abstract="new")], later
    )
    assert (counts.new, counts.updated) == (0, 1)
    stored = store.get_paper("arxiv:2401.01234")
    assert stored is not None
    assert (stored.title, stored.abstract, stored.version) == ("New title", "new", 2)
    assert stored.first_seen == NOW  # first seen stays: it was not a new paper
    assert list(store.papers_seen_since(later)) == []


@pytest.mark.parametrize(
    ("versions", "previous"),
    [
        pytest.param((1, 2), 1, id="v1-then-v2"),
        pytest.param((2, 3, 3), 2, id="v2-then-v3-twice"),
        pytest.param((2,), None, id="first-seen-at-v2"),
        pytest.param((0, 2), None, id="unknown-version-then-v2"),
        pytest.param((2, 1), None, id="older-version-later"),
    ],
)
def test_a_newer_version_records_the_previous_one(
    versions: tuple[int, ...], previous: int | None
) -> None:
    """The "new version" badge needs to know the paper was stored at an older version."""
    store = Store.open(None)
    for i, version in enumerate(versions):
        record = paper("T", arxiv_id="2401.01234", version=version)
        store.upsert_papers([record], NOW + timedelta(hours=i))
    stored = store.get_paper("arxiv:2401.01234")
    assert stored is not None and stored.extra_value("previous_version") == previous


def test_reading_the_same_listing_twice_changes_nothing() -> None:
    store = Store.open(None)
    listing = paper(arxiv_id="2401.01234", published=date(2024, 1, 3), authors=("A B",))
    store.upsert_papers([listing], NOW)
    counts = store.upsert_papers([listing], NOW + timedelta(hours=1))
    assert (counts.new, counts.updated, counts.unchanged) == (0, 0, 1)


def test_merge_never_loses_information() -> None:
    old = paper(arxiv_id="1", abstract="kept", categories=("cs.LG",), extra=(("upvotes", 1),))
    new = paper(abstract="", categories=("cs.CL", "cs.LG"), extra=(("upvotes", None),))
    merged = merge_papers(old, new)
    assert merged.abstract == "kept"
    assert merged.categories == ("cs.LG", "cs.CL")
    assert merged.upvotes == 1


def _queue(store: Store, keys: tuple[str, ...], now: datetime, profile: str = "me") -> int:
    return store.add_outbox(
        profile=profile,
        message_id=f"<{profile}-{'+'.join(keys)}-{now.timestamp()}@x>",
        recipients=("me@example.org",),
        subject="s",
        raw=b"raw",
        paper_keys=keys,
        cutoff=now,
        now=now,
    )


def test_outbox_reserves_papers_until_sent_and_deliveries_are_per_profile() -> None:
    store = Store.open(None)
    store.upsert_papers([paper("One"), paper("Two")], NOW)
    keys = tuple(p.key for p in store.papers_seen_since(NOW))
    outbox_id = _queue(store, keys[:1], NOW)

    assert [p.key for p in store.candidates("me", NOW)] == [keys[1]]
    assert len(list(store.candidates("other", NOW))) == 2

    store.record_attempt(outbox_id, NOW, tried={"me@example.org": ("sent", "250")}, error="")
    assert store.delivered_keys("me") == {keys[0]}
    assert store.delivered_keys("other") == set()
    assert [p.key for p in store.candidates("me", NOW)] == [keys[1]]
    assert len(list(store.candidates("other", NOW))) == 2


def test_permanent_failure_releases_papers_transient_keeps_them() -> None:
    store = Store.open(None)
    store.upsert_papers([paper("One")], NOW)
    [key] = [p.key for p in store.papers_seen_since(NOW)]
    outbox_id = _queue(store, (key,), NOW)
    me = "me@example.org"

    store.record_attempt(outbox_id, NOW, tried={me: ("pending", "451 later")}, error="451 later")
    assert list(store.candidates("me", NOW)) == []
    [entry] = store.outbox("me", status="pending")
    assert (entry.attempts, entry.last_error) == (1, "451 later")

    store.record_attempt(
        outbox_id, NOW, tried={me: ("pending", "550 no")}, error="550 no", give_up=True
    )
    assert [p.key for p in store.candidates("me", NOW)] == [key]
    assert store.outbox("me", status="failed")[0].attempts == 2
    assert store.delivered_keys("me") == set()


A, B = "a@example.org", "b@example.org"


@pytest.mark.parametrize(
    ("attempts", "status", "reserved", "delivered"),
    [
        ([({A: "pending", B: "pending"}, False)], "pending", True, False),
        ([({A: "sent", B: "pending"}, False)], "partial", True, True),
        ([({A: "sent", B: "refused"}, False)], "sent", False, True),
        ([({A: "refused", B: "refused"}, False)], "failed", False, False),
        ([({A: "pending", B: "pending"}, True)], "failed", False, False),
        ([({A: "ambiguous", B: "ambiguous"}, False)], "ambiguous", True, False),
        (
            [({A: "ambiguous", B: "ambiguous"}, False), ({A: "pending", B: "pending"}, False)],
            "ambiguous",
            True,
            False,
        ),
        (
            [({A: "ambiguous", B: "ambiguous"}, False), ({A: "refused", B: "refused"}, False)],
            "undeliverable",
            True,
            False,
        ),
        (
            [({A: "ambiguous", B: "ambiguous"}, False), ({A: "pending", B: "pending"}, True)],
            "undeliverable",
            True,
            False,
        ),
        (
            [({A: "ambiguous", B: "ambiguous"}, False), ({A: "sent", B: "sent"}, False)],
            "sent",
            False,
            True,
        ),
        ([({A: "sent", B: "pending"}, False), ({B: "pending"}, True)], "sent", False, True),
        ([({A: "sent", B: "ambiguous"}, False)], "ambiguous", True, True),
    ],
    ids=[
        "all-for-now",
        "one-has-it",
        "one-has-it-one-refused",
        "all-refused",
        "given-up-unbound",
        "ambiguous",
        "ambiguous-then-transient",
        "ambiguous-then-refused",
        "ambiguous-then-given-up",
        "ambiguous-then-sent",
        "partial-then-given-up",
        "one-has-it-one-ambiguous",
    ],
)
def test_outbox_status_and_reservation_follow_the_recipients(
    attempts: list[tuple[dict[str, RecipientStatus], bool]],
    status: str,
    reserved: bool,
    delivered: bool,
) -> None:
    """A row anyone has or may have keeps its papers: only 'failed' releases them."""
    store = Store.open(None)
    store.upsert_papers([paper("One")], NOW)
    [key] = [p.key for p in store.papers_seen_since(NOW)]
    outbox_id = store.add_outbox(
        profile="me",
        message_id="<1@x>",
        recipients=(A, B),
        subject="s",
        raw=b"raw",
        paper_keys=(key,),
        cutoff=NOW,
        now=NOW,
    )
    for tried, give_up in attempts:
        outcomes = {address: (outcome, "reply") for address, outcome in tried.items()}
        entry = store.record_attempt(outbox_id, NOW, tried=outcomes, error="e", give_up=give_up)
    assert entry.status == status
    candidates = [p.key for p in store.candidates("me", NOW)]
    assert candidates == ([] if reserved or delivered else [key])
    assert store.delivered_keys("me") == ({key} if delivered else set())


def test_fetch_state_remembers_since_when_a_source_fails() -> None:
    store = Store.open(None)
    store.record_fetch("arxiv", NOW)
    store.record_fetch("arxiv", NOW + timedelta(hours=1), error="timed out")
    store.record_fetch("arxiv", NOW + timedelta(hours=2), error="timed out again")
    [state] = store.failing_sources()
    assert state.last_success == NOW
    assert state.failing_since == NOW + timedelta(hours=1)
    assert state.last_error == "timed out again"
    store.record_fetch("arxiv", NOW + timedelta(hours=3))
    assert store.failing_sources() == ()


def test_exclusive_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    with (
        exclusive_lock(db, "digest run"),
        pytest.raises(LockedError, match="digest run"),
        exclusive_lock(db, "digest run"),
    ):
        pass
    with exclusive_lock(db, "digest run"):  # released: can be taken again
        pass


def test_a_version_1_database_is_migrated_to_the_latest(tmp_path: Path) -> None:
    from digest.store import MIGRATIONS

    path = tmp_path / "d.sqlite"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    old.close()

    migrated = Store.open(path)
    assert migrated.schema_version == SCHEMA_VERSION
    assert "http_validators" in migrated.db.table_names()
    assert migrated.integrity_ok()


def test_a_database_made_by_the_last_release_reads_its_candidates_from_the_window_index(
    tmp_path: Path,
) -> None:
    """Schema 13 (tests/data/store/README.md) gets the window index in place of the old
    `first_seen` index; the candidate read then touches no paper row, and finds what it did."""
    import shutil

    path = tmp_path / "v13.sqlite"
    shutil.copy(Path(__file__).parent / "data" / "store" / "schema-13.sqlite", path)
    with sqlite3.connect(path) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 13
        stored = [key for (key,) in old.execute("SELECT key FROM papers ORDER BY seq, key")]
    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    indexes = {index.name: index.columns for index in store.db.table("papers").indexes}
    assert indexes["papers_window"] == ["first_seen", "seq", "key"]
    assert "papers_first_seen" not in indexes
    since = datetime(2026, 12, 1, tzinfo=UTC)
    assert [paper.key for paper, _ in store.candidates_for({"me": since})] == stored
    assert len(stored) == 22
    traced: list[str] = []
    store.db.conn.set_trace_callback(traced.append)
    list(store.candidates_for({"me": since}))
    store.db.conn.set_trace_callback(None)
    [keys] = [sql for sql in traced if "INDEXED BY papers_window" in sql]
    # The trace holds the statement with its values written in.
    plan = " ".join(row[3] for row in store.db.conn.execute("EXPLAIN QUERY PLAN " + keys))
    assert "COVERING INDEX papers_window" in plan
    assert store.integrity_ok()
    store.close()


def test_ingest_is_all_or_nothing_with_validators_and_fetch_state() -> None:
    from digest.http import Validators

    store = Store.open(None)
    store.upsert_papers([paper("Known", arxiv_id="2401.00001", version=1)], NOW)
    later = NOW + timedelta(hours=1)
    counts = store.ingest(
        "arxiv",
        [paper("Fresh", arxiv_id="2401.00002")],
        [
            paper("Known v2", arxiv_id="2401.00001", version=2),
            paper("Old, never seen", arxiv_id="2001.00003", version=3),
        ],
        {"https://rss.example/cs.LG": Validators('"e1"', "Sun, 22 Nov 2026 06:00:00 GMT")},
        later,
    )
    assert (counts.new, counts.updated) == (1, 1)
    assert store.get_paper("arxiv:2001.00003") is None  # a replacement is not news
    known = store.get_paper("arxiv:2401.00001")
    assert known is not None and (known.title, known.version) == ("Known v2", 2)
    assert store.validators("arxiv") == {
        "https://rss.example/cs.LG": Validators('"e1"', "Sun, 22 Nov 2026 06:00:00 GMT")
    }
    state = store.fetch_state("arxiv")
    assert state is not None and state.last_success == later and state.last_error == ""


def test_ingest_that_fails_midway_stores_nothing() -> None:
    store = Store.open(None)
    bad = paper("Bad")
    object.__setattr__(bad, "authors", None)  # a bug-shaped paper makes the write fail
    with pytest.raises(TypeError):
        store.ingest("src", [paper("Good"), bad], [], {}, NOW)
    assert store.count_papers() == 0 and store.fetch_state("src") is None


def _listings_that_meet() -> list[Paper]:
    """Listings of a few papers that meet each other: by arXiv id, by DOI, by title only, and
    one title shared by two different arXiv papers."""
    return [
        paper("Speculative Decoding at Scale", arxiv_id="2401.00001", authors=("A. Author",)),
        paper("Speculative decoding at scale", arxiv_id="2401.00001", version=2, source="hf"),
        paper("KV cache eviction", doi="10.1/kv", abstract="first"),
        paper("KV Cache Eviction", abstract="longer abstract from the feed", source="feed"),
        paper("KV cache eviction", doi="10.1/kv", authors=("B. Writer", "C. Coder")),
        paper("Same Title", arxiv_id="2401.00002"),
        paper("Same Title", arxiv_id="2401.00003"),
        paper("Same Title", source="blog"),
        paper("Unrelated work"),
    ]


def test_a_batch_merges_exactly_as_one_paper_at_a_time(tmp_path: Path) -> None:
    together, apart = Store.open(tmp_path / "t.sqlite"), Store.open(tmp_path / "a.sqlite")
    listings = _listings_that_meet()
    together.upsert_papers(listings, NOW)
    for listing in listings:
        apart.upsert_papers([listing], NOW)
    since = NOW - timedelta(days=1)
    assert list(together.papers_seen_since(since)) == list(apart.papers_seen_since(since))
    assert together.count_papers() == 5
    assert together.get_paper("title:" + title_fingerprint("kv cache eviction")) is not None


def test_the_one_column_table_covers_every_column_of_the_papers_table() -> None:
    from digest.store.rows import PAPER_COLUMNS

    store = Store.open(None)
    stored = [row[1] for row in store.db.execute("PRAGMA table_info(papers)")]
    assert [column.name for column in PAPER_COLUMNS] == [name for name in stored if name != "seq"]
    assert "seq" in stored


def test_a_paper_reads_back_as_it_was_written() -> None:
    from digest.store.rows import (
        INSERT_PAPER,
        UPDATE_PAPER,
        insert_row,
        paper_from_row,
        papers_from_cursor,
        update_row,
    )

    written = replace(
        paper("Ünïcode title", arxiv_id="2401.00001", version=2, authors=("Jörg Hoffmann",)),
        key="arxiv:2401.00001",
        doi="10.1/x",
        categories=("cs.LG", "cs.CL"),
        published=date(2026, 11, 20),
        authors_truncated=True,
        extra=(("code", "https://g.example/x"), ("upvotes", 3)),
        sources=("arxiv", "hf"),
        first_seen=NOW,
        author_ids=("A5023888391",),
        author_orcids=("0000-0002-1825-0097",),
        referenced=("W2741809807",),
    )
    store = Store.open(None)
    store.db.conn.execute(INSERT_PAPER, insert_row(written, NOW, 7))
    [row] = store.db.conn.execute("SELECT * FROM papers").fetchall()
    assert paper_from_row(row) == written
    assert paper_from_row(dict(zip(row.keys(), row, strict=True))) == written
    # Read by position, in another column order too (`papers_from_cursor`).
    for query in ("SELECT * FROM papers", "SELECT seq, referenced, * FROM papers"):
        assert list(papers_from_cursor(store.db.conn.execute(query))) == [written]
    store.db.conn.execute(UPDATE_PAPER, update_row(replace(written, title="Changed"), NOW))
    [row] = store.db.conn.execute("SELECT * FROM papers").fetchall()
    assert paper_from_row(row) == replace(written, title="Changed")


def test_a_candidate_is_decoded_once_until_it_changes_even_from_another_connection(
    tmp_path: Path,
) -> None:
    """`run` plans each send minute in its own pass: with the app's `PassMemory`, a candidate
    is not decoded again until the stored papers change (here or through another connection,
    even at the same stamp)."""
    from digest.plan.memory import PassMemory

    path = tmp_path / "d.sqlite"
    reader, writer = Store.open(path), Store.open(path)
    memory = PassMemory(())
    since = NOW - timedelta(days=1)

    def first_candidate(profile: str) -> Paper:
        found = reader.candidates_for({profile: since}, memory.papers_of(reader))
        return next(found)[0]

    reader.upsert_papers([paper(arxiv_id="2401.00001", abstract="first")], NOW)
    first = first_candidate("me")
    assert first_candidate("other") is first  # not decoded again
    assert next(reader.candidates("me", since)) is not first  # without the memory: decoded
    later = NOW + timedelta(hours=1)
    writer.upsert_papers([paper(arxiv_id="2401.00001", version=2, abstract="a longer one")], later)
    assert first_candidate("me").abstract == "a longer one"
    reader.upsert_papers(
        [paper(arxiv_id="2401.00001", version=3, abstract="the longest one")], later
    )
    assert first_candidate("me").abstract == "the longest one"  # same stamp


def test_the_next_pass_over_unchanged_papers_reads_their_sets_but_not_their_listing(
    tmp_path: Path,
) -> None:
    """The day's send groups plan one after another over the same stored papers: with the
    app's `PassMemory`, a group after the first reads the profiles' sets again (each group's
    sends change them) but not the window's listing, which only a paper write changes. What it
    finds is what a read without the memory finds: for a later start, with a paper released
    by a failed digest, for an earlier start (read again) and after a paper write."""
    from digest.plan.memory import PassMemory

    store = Store.open(tmp_path / "d.sqlite")
    memory = PassMemory(())
    for day in range(4):
        store.upsert_papers(
            [paper(f"Paper of day {day}", arxiv_id=f"2401.0000{day}")], NOW + timedelta(days=day)
        )
    keys = [key for (key,) in store.db.execute("SELECT key FROM papers ORDER BY seq")]

    def candidates(windows: dict[str, datetime]) -> tuple[list[tuple[str, list[str]]], int]:
        """The candidates with the memory, checked against a read without it, and how many
        window listings the read made."""
        traced: list[str] = []
        store.db.conn.set_trace_callback(traced.append)
        found = store.candidates_for(windows, memory.papers_of(store))
        listed = [(p.key, sorted(by)) for p, by in found]
        store.db.conn.set_trace_callback(None)
        assert listed == [(p.key, sorted(by)) for p, by in store.candidates_for(windows)]
        return listed, sum("INDEXED BY papers_window" in sql for sql in traced)

    assert candidates({"a": NOW, "b": NOW + timedelta(days=1)}) == (
        [(keys[0], ["a"]), *((key, ["a", "b"]) for key in keys[1:])],
        1,
    )

    def queue(profile: str, key: str, outcome: RecipientStatus) -> None:
        entry = _queue(store, (key,), NOW, profile)
        if outcome != "pending":
            tried = {"me@example.org": (outcome, "550 gone" if outcome == "refused" else "250")}
            store.record_attempt(entry, NOW, tried=tried, error="", give_up=outcome == "refused")

    queue("a", keys[1], "sent")  # the sets change, the papers do not
    assert candidates({"a": NOW}) == ([(k, ["a"]) for k in (keys[0], *keys[2:])], 0)
    queue("a", keys[2], "pending")  # on its way: held
    assert candidates({"a": NOW + timedelta(days=2)}) == ([(keys[3], ["a"])], 0)
    queue("b", keys[0], "refused")  # failed for good: released to "b" whatever its age
    assert candidates({"b": NOW + timedelta(days=3)}) == ([(keys[0], ["b"]), (keys[3], ["b"])], 0)
    assert candidates({"c": NOW - timedelta(days=1)}) == ([(k, ["c"]) for k in keys], 1)
    store.upsert_papers([paper("A new paper", arxiv_id="2401.00009")], NOW + timedelta(days=4))
    assert candidates({"c": NOW + timedelta(days=4)}) == ([("arxiv:2401.00009", ["c"])], 1)


def test_outbox_rows_from_before_recipients_were_tracked_keep_working(tmp_path: Path) -> None:
    """The recipients migration rebuilds the outbox: its rows, their papers and deliveries
    survive, and a pending row without recipient rows is still retried (and reserved)."""
    from digest.store import MIGRATIONS

    path = tmp_path / "d.sqlite"
    old = sqlite3.connect(path)
    old.executescript("".join(MIGRATIONS[:3]) + "\nPRAGMA user_version = 3;")
    # Two rows as the version-3 code wrote them: one sent, one pending; no recipient rows.
    keys = ("arxiv:2401.00001", "arxiv:2401.00002")
    for n, (key, status) in enumerate(zip(keys, ("sent", "pending"), strict=True), start=1):
        old.execute(
            "INSERT INTO papers (key, title, first_seen, updated_at) VALUES (?, ?, ?, ?)",
            [key, f"Paper {n}", NOW.isoformat(), NOW.isoformat()],
        )
        old.execute(
            "INSERT INTO outbox (id, profile, message_id, status, created_at, cutoff, recipients,"
            " subject, raw, paper_count) VALUES (?, 'me', ?, ?, ?, ?, '[\"me@example.org\"]',"
            " 's', x'00', 1)",
            [n, f"<{n}@x>", status, NOW.isoformat(), NOW.isoformat()],
        )
        old.execute("INSERT INTO outbox_papers VALUES (?, ?)", [n, key])
    old.execute("INSERT INTO deliveries VALUES ('me', ?, 1, ?)", [keys[0], NOW.isoformat()])
    old.commit()
    old.close()

    store = Store.open(path)

    assert store.schema_version == SCHEMA_VERSION and store.integrity_ok()
    assert [e.status for e in store.outbox("me")] == ["sent", "pending"]
    assert [e.id for e in store.outbox_to_retry("me")] == [2]
    assert list(store.candidates("me", NOW)) == []  # one delivered, one reserved
    assert [(r.address, r.status) for r in store.outbox_recipients(2)] == [
        ("me@example.org", "pending")
    ]
    assert [r.status for r in store.outbox_recipients(1)] == ["sent"]
    sent = store.record_attempt(2, NOW, tried={"me@example.org": ("sent", "accepted")}, error="")
    assert sent.status == "sent" and store.delivered_keys("me") == set(keys)
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_feedback_latest_verdict_counts_and_undo(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "f.db")
    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert store.record_feedback("me", "arxiv:2401.00001", "like", at) is True
    assert store.record_feedback("me", "arxiv:2401.00001", "like", at) is False  # replay
    assert store.record_feedback("me", "arxiv:2401.00002", "dislike", at) is True
    assert store.record_feedback("me", "arxiv:2401.00001", "dislike", at + timedelta(hours=1))
    assert [(f.paper_key, f.action) for f in store.feedback("me")] == [
        ("arxiv:2401.00001", "dislike"),
        ("arxiv:2401.00002", "dislike"),
    ]
    assert store.feedback("other") == ()
    assert store.remove_feedback("me", "arxiv:2401.00002") is True
    assert store.remove_feedback("me", "arxiv:2401.00002") is False
    assert [f.paper_key for f in store.feedback("me")] == ["arxiv:2401.00001"]


# --- a full disk --------------------------------------------------------------------------------


def test_a_full_disk_says_the_disk_is_full_not_disk_io_error(tmp_path: Path) -> None:
    """A real SQLITE_FULL: the file may not grow by a page (`max_page_count`), as on a full
    disk. The write is rolled back and the line says what to do, not "run doctor"."""
    store = Store.open(tmp_path / "d.sqlite")
    try:
        store.upsert_papers([paper("A first paper")], NOW)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages}")
        big = [paper(f"Paper {i}", abstract="lorem ipsum " * 400) for i in range(50)]
        with pytest.raises(StoreError) as caught:
            store.upsert_papers(big, NOW)
        message = str(caught.value)
        assert "the disk is full" in message and "d.sqlite" in message, message
        assert "digest doctor" not in message and "I/O" not in message
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert store.count_papers() == 1  # nothing of the failed write was kept
    finally:
        store.close()


def test_an_io_error_on_a_disk_with_no_space_left_says_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite reports a failed write of its journal index as "disk I/O error", whatever the
    errno; with no space left where the database is, that is what the line says."""
    import os

    from digest.store import store_fault

    class Full:
        f_bavail = 0
        f_frsize = 4096

    monkeypatch.setattr(os, "statvfs", lambda _: Full())
    error = store_fault(tmp_path / "d.sqlite", sqlite3.OperationalError("disk I/O error"))
    assert "the disk is full" in str(error)
    no_space = store_fault(tmp_path / "d.sqlite", OSError(28, "No space left on device"))
    assert "the disk is full" in str(no_space)


def test_an_io_error_with_space_left_stays_an_io_error(tmp_path: Path) -> None:
    from digest.store import store_fault

    error = store_fault(tmp_path, sqlite3.OperationalError("disk I/O error"))
    assert "disk I/O error" in str(error) and "the disk is full" not in str(error)
