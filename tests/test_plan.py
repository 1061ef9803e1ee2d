"""One pass per run: `digest send`, `run`'s send jobs at the same minute and `preview` plan every
due profile from one candidate query (DESIGN.md's window rule, applied per profile), each
candidate decoded and matched once for all of them, then each profile's digest."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest import app as app_module
from digest.app import App, build_app, plan_digest, send
from digest.deliver import MaildirMailer
from digest.match import Matcher
from digest.models import Paper
from digest.preview import render_previews
from digest.schedule import catch_up
from digest.settings import Settings
from digest.store import Store

from .conftest import Clock

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
# A statement that reads whole paper rows (what the candidate query returns, to be decoded).
_ALL_COLUMNS = re.compile(r"\bSELECT\s+(p\.)?\*", re.IGNORECASE)
_PAPERS = re.compile(r"\bpapers\b", re.IGNORECASE)


def _profile(name: str, keywords: list[str], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "email": [f"{name}@example.org"],
        "send_at": "07:30",
        "timezone": "UTC",
        "keywords": keywords,
        **more,
    }


def _papers(prefix: str, count: int) -> list[Paper]:
    return [
        Paper(key="", title=f"{prefix} number {i:03d}", abstract="A study.", source="files")
        for i in range(count)
    ]


def _three_profiles(make_settings: Callable[..., Settings], tmp_path: Path) -> App:
    settings = make_settings(
        delivery={"method": "maildir", "maildir": str(tmp_path / "mail")},
        profiles=[
            _profile("widgets", ["widget"]),
            _profile("gadgets", ["gadget"], first_run_days=1),
            _profile("both", ["widget", "gadget"], first_run_days=7, window_days=7),
        ],
    )
    app = build_app(
        settings,
        store=Store.open(tmp_path / "d.sqlite"),
        mailer=MaildirMailer(tmp_path / "mail"),
        clock=Clock(NOW),
    )
    app.store.upsert_papers(_papers("Widget", 4) + _papers("Gadget", 3), NOW - timedelta(hours=1))
    app.store.upsert_papers(_papers("Old gadget", 2), NOW - timedelta(days=5))
    return app


def _plan_all(app: App) -> None:
    app_module.plan_digests(app, app.settings.profile_records())


def _send_all(app: App) -> None:
    send(app, app.settings.profile_records())


def _dry_run(app: App) -> None:
    send(app, app.settings.profile_records(), dry_run=True)


def _preview(app: App) -> None:
    assert app.store.path is not None
    render_previews(app, app.store.path.parent / "preview")


def _catch_up(app: App) -> None:
    catch_up(app)


def _whole_row_reads(app: App, entry: Callable[[App], None]) -> list[str]:
    """The statements of `entry` that read whole paper rows."""
    statements: list[str] = []
    app.store.db.conn.set_trace_callback(statements.append)
    try:
        entry(app)
    finally:
        app.store.db.conn.set_trace_callback(None)
    return [s for s in statements if _ALL_COLUMNS.search(s) and _PAPERS.search(s)]


@pytest.mark.parametrize(
    "entry",
    [_plan_all, _send_all, _dry_run, _preview, _catch_up],
    ids=["plan_digests", "send", "send --dry-run", "preview", "run catch-up"],
)
def test_every_due_profile_is_planned_from_one_candidate_query(
    make_settings: Callable[..., Settings], tmp_path: Path, entry: Callable[[App], None]
) -> None:
    reads = _whole_row_reads(_three_profiles(make_settings, tmp_path), entry)
    assert len(reads) == 1, reads


def test_the_next_pass_over_unchanged_papers_reads_their_keys_not_their_rows(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The day's send groups plan one after another over the same window: the candidates the
    pass before decoded are not read again until a paper changes, and then only the rows the
    window rule keeps are read."""
    app = _three_profiles(make_settings, tmp_path)
    first = app_module.plan_digests(app, app.settings.profile_records())
    assert _whole_row_reads(app, _plan_all) == []
    again = app_module.plan_digests(app, app.settings.profile_records())
    assert _keys(again) == _keys(first)
    app.store.upsert_papers(_papers("New widget", 1), NOW)
    [read] = _whole_row_reads(app, _plan_all)
    assert "IN (" in read  # the kept candidates' rows, by key
    plans = app_module.plan_digests(app, app.settings.profile_records())
    assert len(plans["widgets"].digest.papers) == len(first["widgets"].digest.papers) + 1


def test_one_pass_decodes_and_matches_each_candidate_once(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _three_profiles(make_settings, tmp_path)
    matched: list[str] = []
    real_match, real_stored = Matcher.match, Matcher.match_stored_all

    def counting_match(self: Matcher, paper: Paper) -> Any:
        matched.append(paper.key)
        return real_match(self, paper)

    def counting_stored(self: Matcher, papers: list[Paper], *args: Any) -> Any:
        matched.extend(paper.key for paper in papers)
        return real_stored(self, papers, *args)

    # Matched from its stored scan (in one batch) or read now: either way once.
    monkeypatch.setattr(Matcher, "match", counting_match)
    monkeypatch.setattr(Matcher, "match_stored_all", counting_stored)
    plans = app_module.plan_digests(app, app.settings.profile_records())
    seen: dict[str, Paper] = {}
    for plan in plans.values():
        for match in plan.digest.papers:
            # One decoded Paper per candidate, shared by every profile's digest.
            assert seen.setdefault(match.paper.key, match.paper) is match.paper
    assert sorted(matched) == sorted(set(matched)) and len(matched) == 9
    assert {name: len(plan.digest.papers) for name, plan in plans.items()} == {
        "widgets": 4,
        "gadgets": 3,
        "both": 9,
    }


def _keys(plans: dict[str, Any]) -> dict[str, set[str]]:
    return {name: set(plan.rendered.paper_keys) for name, plan in plans.items()}


def _by_title(store: Store) -> dict[str, str]:
    return {p.title: p.key for p in store.papers_seen_since(NOW - timedelta(days=30))}


@pytest.fixture
def planned_apart(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[App]:
    """Three profiles whose delivered, expired, reserved and released papers differ."""
    app = _three_profiles(make_settings, tmp_path)
    store = app.store
    key = _by_title(store)
    # "widgets" has Widget 000 delivered, "both" has Widget 001 held by a pending digest and
    # Gadget 000 recorded as expired, "gadgets" has an old gadget released by a failed digest.
    sent = store.add_outbox(
        profile="widgets",
        message_id="<1@x>",
        recipients=("widgets@example.org",),
        subject="s",
        raw=b"x",
        paper_keys=(key["Widget number 000"],),
        cutoff=NOW,
        now=NOW,
    )
    store.record_attempt(sent, NOW, tried={"widgets@example.org": ("sent", "250")}, error="")
    store.add_outbox(
        profile="both",
        message_id="<2@x>",
        recipients=("both@example.org",),
        subject="s",
        raw=b"x",
        paper_keys=(key["Widget number 001"],),
        cutoff=NOW,
        now=NOW,
    )
    store.record_expired(
        "both", [key["Gadget number 000"]], origin=NOW - timedelta(days=7), until=NOW, now=NOW
    )
    failed = store.add_outbox(
        profile="gadgets",
        message_id="<3@x>",
        recipients=("gadgets@example.org",),
        subject="s",
        raw=b"x",
        paper_keys=(key["Old gadget number 000"],),
        cutoff=NOW,
        now=NOW,
    )
    store.record_attempt(
        failed,
        NOW,
        tried={"gadgets@example.org": ("refused", "550 no")},
        error="550 no",
        give_up=True,
    )
    yield app
    app.close()


def test_each_profile_keeps_its_own_window_and_sets_in_one_pass(planned_apart: App) -> None:
    app = planned_apart
    key = _by_title(app.store)
    together = _keys(app_module.plan_digests(app, app.settings.profile_records()))
    apart = {
        p.name: set(plan_digest(app, p).rendered.paper_keys) for p in app.settings.profile_records()
    }
    widgets = {key[f"Widget number {i:03d}"] for i in range(4)}
    gadgets = {key[f"Gadget number {i:03d}"] for i in range(3)}
    old = {key[f"Old gadget number {i:03d}"] for i in range(2)}
    assert (
        together
        == apart
        == {
            "widgets": widgets - {key["Widget number 000"]},
            "gadgets": gadgets | {key["Old gadget number 000"]},
            "both": (widgets | gadgets | old)
            - {key["Widget number 001"], key["Gadget number 000"]},
        }
    )


@pytest.mark.parametrize(
    ("key", "first_seen", "wanted"),
    [
        ("k0", "2026-11-21", {"a"}),
        ("k0", "2026-11-22", {"a", "b"}),
        ("k0", "2026-11-23", {"a", "b"}),
        ("k1", "2026-11-23", {"b"}),
        ("k2", "2026-11-19", {"b"}),
        ("k3", "2026-11-19", set()),
    ],
    ids=[
        "in one window only",
        "a window's start is in it",
        "in both windows",
        "delivered to one profile",
        "released by a failed digest, before the window",
        "before every window",
    ],
)
def test_the_window_rule_applies_each_profiles_sets_to_it_alone(
    key: str, first_seen: str, wanted: set[str]
) -> None:
    from digest.store.window import WindowRule

    rule = WindowRule({"a": "2026-11-20", "b": "2026-11-22"})
    rule.held["k1"] = {"a"}
    rule.released["k2"] = {"b"}
    assert rule.wanted_by(key, first_seen) == wanted


# --- `digest match --input` plans like the digest -------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
WATCHED_WORK = {"arxiv:2402.17193": {"W4392": "The Watched Paper"}}


def _seeds_settings(tmp_path: Path, muted: str) -> Settings:
    """The example profile on the seeds, with an author muted and a paper watched (OpenAlex on
    for "Citing your work"; its server is never asked: nothing is fetched)."""
    import tomllib

    from digest.settings import settings_from_dict

    data = tomllib.loads((ROOT / "config.example.toml").read_text())
    data["sources"] = {
        "files": data["sources"]["files"],
        "openalex": {"base_url": "http://127.0.0.1:9", "enabled": True},
    }
    data["store"] = {"path": str(tmp_path / "unused.sqlite")}
    profile = data["profiles"][0]
    profile.update(mute_authors=[muted], cites=list(WATCHED_WORK))
    return settings_from_dict(data, ROOT / "config.example.toml")


def _seed_papers() -> list[Paper]:
    """The seeds as `digest match --input` reads them, two of them citing the watched work."""
    from dataclasses import replace

    from digest.sources import FetchResult
    from digest.sources.clean import clean_result
    from digest.sources.files import parse_listing_jsonl, read_listing_file

    listed: dict[str, Paper] = {}
    for path in sorted((ROOT / "seeds").glob("*.jsonl")):
        for paper in parse_listing_jsonl(read_listing_file(path), str(path)):
            listed.setdefault(paper.key, paper)  # one reading of a paper listed twice
    papers = list(clean_result(FetchResult(papers=tuple(listed.values()))).papers)
    citing = {papers[3].key, papers[40].key}
    return [replace(p, referenced=("W4392",)) if p.key in citing else p for p in papers]


def _shown(plan: Any) -> list[tuple[str, list[tuple[str, str, str]]]]:
    return [
        (m.paper.key, [(r.kind, r.term, r.field) for r in m.reasons]) for m in plan.digest.papers
    ]


def test_match_input_plans_a_listing_exactly_as_the_next_digest_of_it(tmp_path: Path) -> None:
    clock = Clock(NOW)
    papers = _seed_papers()
    probe = build_app(_seeds_settings(tmp_path, "nobody"), store=Store.open(None), clock=clock)
    [unmuted] = probe.plan_pass().plan_listing(probe.settings.profile_records(), papers).values()
    # Mute a keyword match's author that no followed author wrote with.
    muted = next(
        m.paper.authors[0] for m in unmuted.digest.matches if not m.followed and m.paper.authors
    )
    settings = _seeds_settings(tmp_path, muted)
    stored = build_app(settings, store=Store.open(tmp_path / "stored.sqlite"), clock=clock)
    stored.store.upsert_papers(papers, NOW - timedelta(hours=1))
    listing = build_app(settings, store=Store.open(tmp_path / "listing.sqlite"), clock=clock)
    for app in (stored, listing):
        app.store.record_resolved(WATCHED_WORK, NOW)
    profiles = settings.profile_records()

    [digest] = stored.plan_pass().plan(profiles).values()
    [from_listing] = listing.plan_pass().plan_listing(profiles, papers).values()

    assert _shown(from_listing) == _shown(digest)
    keys = [m.paper.key for m in digest.digest.papers]
    assert len(digest.digest.citing) == 2  # citing, muting and suggestions all took part

    def by_muted(plan: Any) -> list[str]:  # papers of the muted author no followed one wrote
        return [
            m.paper.key for m in plan.digest.matches if muted in m.paper.authors and not m.followed
        ]

    assert by_muted(unmuted) and not by_muted(digest)
    assert digest.digest.suggestions and len(keys) == len(set(keys))


# --- the verdict memo -----------------------------------------------------------------------


def test_the_verdict_memo_matches_each_content_once_and_starts_afresh_at_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from digest.models import Match, Profile
    from digest.plan.memory import VerdictMemo

    profile = Profile("me", keywords=("widget",))
    memo = VerdictMemo([profile], limit=2)
    calls: list[str] = []
    real = memo.matcher.match

    def counting(paper: Paper) -> dict[str, Match]:
        calls.append(paper.key)
        return real(paper)

    monkeypatch.setattr(memo.matcher, "match", counting)
    match = memo.for_profiles([profile])
    paper = Paper(key="arxiv:1", title="A widget")
    assert "me" in match(paper) and "me" in match(paper)
    assert calls == ["arxiv:1"]  # the same content: matched once
    assert match(replace(paper, title="A gadget")) == {}  # new text, new verdicts
    match(Paper(key="arxiv:2", title="x"))  # a third content: past the limit of 2
    assert len(memo.known) == 1 and calls == ["arxiv:1", "arxiv:1", "arxiv:2"]
    edited = replace(profile, keywords=("gadget",))
    assert "me" in memo.for_profiles([edited])(replace(paper, title="A gadget"))
