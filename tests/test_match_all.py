"""`digest match --all` from stored hits: the papers stored since a time matched from the scans
made when they were stored (`digest.plan.stored`), with the same matches as reading their text,
no text read to decide once the scans are current, and a keyword added since scanned alone.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from digest.cli_output import print_matches
from digest.match import Matcher, match_profiles
from digest.match.hitscan import ScanReading
from digest.match.identity import confirm_listing
from digest.match.termbook import TermBook
from digest.models import Paper, Profile
from digest.plan.hits import HitKeeper, profile_terms
from digest.plan.stored import stored_matches
from digest.settings import load_settings
from digest.store import EPOCH, Store
from tests.stored_path import STORED_AT, said, scanners_made
from tests.test_cli import digest
from tests.test_hits import SEED_PROFILES
from tests.test_match import seed_papers

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _seeded_store() -> Store:
    store = Store.open(None)
    store.ingest("seeds", seed_papers(), (), {}, STORED_AT)
    return store


def test_stored_matches_are_the_matches_of_reading_the_text() -> None:
    store = _seeded_store()
    found = stored_matches(store, HitKeeper(SEED_PROFILES), Matcher(SEED_PROFILES), EPOCH)
    direct = match_profiles(list(store.papers_seen_since(EPOCH)), SEED_PROFILES)
    assert sum(map(len, direct.values())) > 20
    assert {n: said(m) for n, m in found.matches.items()} == {n: said(m) for n, m in direct.items()}
    assert [p.key for p in found.papers] == [p.key for p in store.papers_seen_since(EPOCH)]


def test_once_the_scans_are_current_no_text_is_read_to_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _seeded_store()
    keeper, matcher = HitKeeper(SEED_PROFILES), Matcher(SEED_PROFILES)
    first = stored_matches(store, keeper, matcher, EPOCH)

    def no_reading(text: str) -> None:
        raise AssertionError(f"read {text[:40]!r}")

    monkeypatch.setattr("digest.match.matcher.Words", no_reading)
    monkeypatch.setattr("digest.match.hitscan.Words", no_reading)
    again = stored_matches(store, HitKeeper(SEED_PROFILES), Matcher(SEED_PROFILES), EPOCH)
    assert {n: said(m) for n, m in again.matches.items()} == {
        n: said(m) for n, m in first.matches.items()
    }


def test_a_keyword_added_since_is_scanned_alone_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    store = _seeded_store()
    before = SEED_PROFILES[0]
    stored_matches(store, HitKeeper([before]), Matcher([before]), EPOCH)
    made = scanners_made(monkeypatch)
    after = replace(before, keywords=(*before.keywords, "reinforcement learning"))
    found = stored_matches(store, HitKeeper([after]), Matcher([after]), EPOCH)
    size = len(profile_terms([before]))
    assert made == [(size + 1, size)]  # one scanner, of the one new term
    assert any(r.term == "reinforcement learning" for m in found.matches["llm"] for r in m.reasons)
    stored_matches(store, HitKeeper([after]), Matcher([after]), EPOCH)
    assert made == [(size + 1, size)]  # written the first time: not scanned again


def test_only_the_papers_stored_since_the_time_are_matched() -> None:
    store = _seeded_store()
    earlier = STORED_AT.replace(day=STORED_AT.day - 1)
    profile = Profile("me", keywords=("language model",))
    assert stored_matches(store, HitKeeper([profile]), Matcher([profile]), STORED_AT).matches["me"]
    next_day = STORED_AT.replace(hour=STORED_AT.hour + 1)
    nothing = stored_matches(store, HitKeeper([profile]), Matcher([profile]), next_day)
    assert nothing.matches == {"me": ()} and nothing.papers == ()
    assert stored_matches(store, HitKeeper([profile]), Matcher([profile]), earlier).matches["me"]


def _config(tmp_path: Path, keywords: str) -> Path:
    config = tmp_path / "config.toml"
    files = ", ".join(
        f'{{ name = "s{n}", path = "{path}" }}'
        for n, path in enumerate(sorted(SEEDS.glob("*.jsonl")))
    )
    config.write_text(
        '[store]\npath = "d.sqlite"\n[delivery]\nmethod = "maildir"\nmaildir = "mail"\n'
        f"[sources]\nfiles = [{files}]\n"
        f'[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = [{keywords}]\n'
        '[[profiles]]\nname = "vision"\nemail = "v@example.org"\n'
        'keywords = ["vision transformer", "segmentation"]\ncategories = ["cs.CV"]\n'
        'authors = [{ name = "Kaiming He" }]\n',
        encoding="utf-8",
    )
    return config


def _expected_lines(config: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `match --all --format jsonl` printed before it read stored hits: the stored
    papers' text read and matched, followed ids confirmed."""
    profiles = load_settings(config).profile_records()
    database = config.parent / "d.sqlite"
    store = Store.open(database, read_only=True)
    try:
        papers = list(store.papers_seen_since(EPOCH))
    finally:
        store.close()
    capsys.readouterr()
    print_matches(confirm_listing(profiles, papers, match_profiles(papers, profiles)), "jsonl")
    return capsys.readouterr().out.splitlines()


def _book_and_covered(database: Path) -> tuple[int, set[int]]:
    """How many terms the store's book has, and how many its papers' scans cover."""
    with sqlite3.connect(database) as conn:
        terms = int(conn.execute("SELECT count(*) FROM match_terms").fetchone()[0])
        covered = {int(row[0]) for row in conn.execute("SELECT DISTINCT covered FROM paper_hits")}
    return terms, covered


def test_match_all_prints_what_reading_the_text_gives_and_follows_a_new_keyword(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, '"language model", "KV cache"')
    assert digest("--config", str(config), "fetch", cwd=tmp_path).returncode == 0
    database = tmp_path / "d.sqlite"
    terms, covered = _book_and_covered(database)
    assert covered == {terms}  # `fetch` scanned what it stored
    shown = digest("--config", str(config), "match", "--all", "--format", "jsonl", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == _expected_lines(config, capsys)
    assert len(shown.stdout.splitlines()) > 10
    # A keyword added: the next `match --all` shows its matches and keeps its scans.
    config = _config(tmp_path, '"language model", "KV cache", "diffusion"')
    more = digest("--config", str(config), "match", "--all", "--format", "jsonl", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert more.stdout.splitlines() == _expected_lines(config, capsys)
    said = [json.loads(line) for line in more.stdout.splitlines()]
    assert any(r["term"] == "diffusion" for line in said for r in line["reasons"])
    # The new term's scans were written: the store's book has it and every scan covers it.
    assert _book_and_covered(database) == (terms + 1, {terms + 1})


ScansOf = Callable[[Sequence[Paper]], tuple[TermBook, Sequence[ScanReading]]]


def _counted_scans() -> tuple[list[Paper], list[int], ScansOf]:
    """The seeded store's papers, scanned, and a `scans_of` for `VerdictMemo.from_scans` that
    notes the size of each batch it is asked for (in the list beside it)."""
    store = _seeded_store()
    keeper = HitKeeper(SEED_PROFILES)
    keeper.refresh(store, EPOCH)
    asked: list[int] = []

    def scans_of(batch: Sequence[Paper]) -> tuple[TermBook, Sequence[ScanReading]]:
        asked.append(len(batch))
        return keeper.scans_for(store, batch)

    return list(store.papers_seen_since(EPOCH)), asked, scans_of


def test_a_planning_pass_decides_its_new_papers_a_batch_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`VerdictMemo.from_scans` asks for scans and decides `BATCH` papers at a time (a year's
    window is not held as readings at once), with the matches of deciding them all together."""
    from digest.plan.memory import VerdictMemo

    papers, asked, scans_of = _counted_scans()
    whole = VerdictMemo(SEED_PROFILES).from_scans(SEED_PROFILES, papers, scans_of)
    assert asked == [len(papers)]
    monkeypatch.setattr("digest.plan.memory.BATCH", 7)
    asked.clear()
    batched = VerdictMemo(SEED_PROFILES).from_scans(SEED_PROFILES, papers, scans_of)
    assert asked == [7] * (len(papers) // 7) + ([len(papers) % 7] if len(papers) % 7 else [])
    assert [batched(paper) for paper in papers] == [whole(paper) for paper in papers]
    assert sum(map(len, (whole(paper) for paper in papers))) > 20


def test_the_next_pass_over_the_same_papers_keys_no_content_and_scans_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The day's next send group plans over the papers the pass before decoded (the same
    objects): their verdicts are found by the object, without a content key or a scan; an
    equal copy (a paper decoded again) is found by its content, and a longer pass than the
    memo holds keeps its papers for itself."""
    import digest.plan.memory as memory

    papers, asked, scans_of = _counted_scans()
    memo = memory.VerdictMemo(SEED_PROFILES)
    first = memo.from_scans(SEED_PROFILES, papers, scans_of)
    expected = [first(paper) for paper in papers]
    keyed: list[Paper] = []
    real_content = memory._content

    def content(paper: Paper) -> memory.Content:
        keyed.append(paper)
        return real_content(paper)

    monkeypatch.setattr(memory, "_content", content)
    again = memo.from_scans(SEED_PROFILES, papers, scans_of)
    assert [again(paper) for paper in papers] == expected
    assert keyed == [] and asked == [len(papers)]
    copies = [replace(paper) for paper in papers]
    assert [memo.from_scans(SEED_PROFILES, copies, scans_of)(c) for c in copies] == expected
    assert len(keyed) == len(papers) and asked == [len(papers)]  # by content: no scan
    small = memory.VerdictMemo(SEED_PROFILES, limit=len(papers) - 1)
    assert [small.from_scans(SEED_PROFILES, papers, scans_of)(p) for p in papers] == expected
    assert small.by_object == {}


def _stored_batches(
    store: Store, keeper: HitKeeper, size: int
) -> list[tuple[Sequence[Paper], list[ScanReading], TermBook]]:
    papers = list(store.papers_seen_since(EPOCH))
    chunks = [papers[start : start + size] for start in range(0, len(papers), size)]
    return list(keeper.scanned(store, chunks))


@pytest.mark.parametrize("keep", [1, 3, 50], ids=["keep-1", "keep-3", "keep-50"])
def test_the_best_from_stored_scans_are_the_best_of_reading_the_text(keep: int) -> None:
    """`Matcher.best_stored` keeps, ranks and counts as `Matcher.best(keep=)` does, with the
    same reasons, whatever the batches."""
    store = _seeded_store()
    keeper, matcher = HitKeeper(SEED_PROFILES), Matcher(SEED_PROFILES)
    keeper.refresh(store, EPOCH)
    direct = matcher.best(list(store.papers_seen_since(EPOCH)), keep)
    for size in (7, 1_000):
        stored = matcher.best_stored(_stored_batches(store, keeper, size), keep)
        assert {n: (said(b.matches), b.total) for n, b in stored.items()} == {
            n: (said(b.matches), b.total) for n, b in direct.items()
        }
    assert any(len(b.matches) == keep < b.total for b in direct.values())  # some were cut


def test_a_stored_pass_makes_no_garbage_cycle() -> None:
    """What pausing the cyclic collector for a whole stored pass rests on (`best_stored`,
    `stored_matches`): nothing it makes is left in a cycle, so nothing waits for the
    collector."""
    import gc

    store = _seeded_store()
    keeper, matcher = HitKeeper(SEED_PROFILES), Matcher(SEED_PROFILES)
    stored_matches(store, keeper, matcher, EPOCH)  # scans written, memos filled
    gc.collect()
    for _ in range(2):
        stored_matches(store, keeper, matcher, EPOCH)
        matcher.best_stored(_stored_batches(store, keeper, 5), 3)
    assert gc.collect() == 0


def test_a_matcher_reads_scans_against_a_book_that_grew() -> None:
    """A matcher keeps its table of known terms per book: read against a book that grew
    since (a term another profile added), its verdicts are those of a fresh matcher."""
    store = _seeded_store()
    before = SEED_PROFILES[0]
    after = replace(before, name="after", keywords=(*before.keywords, "reinforcement learning"))
    papers = list(store.papers_seen_since(EPOCH))
    keeper = HitKeeper([before])
    keeper.refresh(store, EPOCH)
    small_book, small_scans = keeper.scans_for(store, papers)
    matcher = Matcher([before])
    first = matcher.match_stored_all(papers, small_scans, small_book)
    grown = HitKeeper([before, after])
    grown.refresh(store, EPOCH)
    book, scans = grown.scans_for(store, papers)
    assert len(book) == len(small_book) + 1
    again = matcher.match_stored_all(papers, scans, book)
    fresh = Matcher([before]).match_stored_all(papers, scans, book)
    assert [{n: said([m]) for n, m in x.items()} for x in again] == [
        {n: said([m]) for n, m in x.items()} for x in fresh
    ]
    assert [{n: said([m]) for n, m in x.items()} for x in again] == [
        {n: said([m]) for n, m in x.items()} for x in first
    ]
