"""Identity-aware matching and citation alerts, end to end: a store of papers from an id-less
listing, the OpenAlex source on a real HTTP server on 127.0.0.1 (tests/openalex_server.py), the
pure post-step (digest.match.identity, digest.match.cites), and the rendered digest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine

from digest.app import App, build_app, fetch, plan_digests
from digest.match.identity import confirm_authors
from digest.models import FollowedAuthor, Match, Paper, Profile, Reason
from digest.settings import Settings
from digest.store import Store

from .conftest import Clock, HttpServer
from .openalex_server import FakeOpenAlex

FOLLOWED = {"name": "Wei Chen", "openalex": "https://openalex.org/A5023888391"}
LISTING = [
    {
        "id": "2411.00001",
        "title": "Graph Transformers for the Wei Chen We Follow",
        "authors": ["Wei Chen", "Ann Lee"],
        "abstract": "Graphs.",
        "categories": ["cs.LG"],
        "published": "2026-11-20",
        "url": "https://arxiv.org/abs/2411.00001",
        "source": "arxiv",
    },
    {
        "id": "2411.00002",
        "title": "Protein Folding by Another Wei Chen",
        "authors": ["Wei Chen"],
        "abstract": "Proteins.",
        "categories": ["q-bio.BM"],
        "published": "2026-11-21",
        "url": "https://arxiv.org/abs/2411.00002",
        "source": "arxiv",
    },
]


def make_app(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    clock: Clock,
    server: HttpServer | None,
    **profile: Any,
) -> App:
    listing = tmp_path / "listing.jsonl"
    listing.write_text("".join(json.dumps(item) + "\n" for item in LISTING))
    sources: dict[str, Any] = {"files": [{"name": "files", "path": str(listing)}]}
    if server is not None:
        sources["openalex"] = {"base_url": server.url, "per_page": 50, "pacing_seconds": 0}
    settings = make_settings(
        http={"attempts": 2, "backoff_seconds": 0.01, "read_timeout": 2},
        sources=sources,
        profiles=[{"name": "me", "authors": [FOLLOWED], **profile}],
    )
    return build_app(settings, store=Store.open(None), clock=clock)


def shown(app: App) -> dict[str, list[str]]:
    """Each delivered paper's key and why: the author reasons' terms, the cited titles."""
    [plan] = plan_digests(app, app.settings.profile_records()).values()
    return {
        m.paper.key: [r.term if r.kind == "author" else f"cites {r.text}" for r in m.reasons]
        for m in plan.digest.papers
    }


def test_only_the_followed_wei_chen_arrives_with_the_source_on(
    tmp_path: Path, make_settings: Callable[..., Settings], clock: Clock, http_server: HttpServer
) -> None:
    FakeOpenAlex().install(http_server)
    app = make_app(tmp_path, make_settings, clock, http_server)
    reports = fetch(app)
    assert [r.error for r in reports] == ["", ""]
    assert shown(app) == {"arxiv:2411.00001": ["Wei Chen (OpenAlex A5023888391)"]}
    # The namesake's paper was looked up once (found, with its own author id) and is not
    # asked again on the next fetch.
    assert app.store.looked_up(["arxiv:2411.00002"]) == {"arxiv:2411.00002"}
    lookups = [r for r in http_server.hits("/works") if "2411.00002" in r.query]
    fetch(app)
    assert [r for r in http_server.hits("/works") if "2411.00002" in r.query] == lookups
    stored = app.store.get_paper("arxiv:2411.00001")
    assert stored is not None and stored.sources == ("files", "openalex")
    assert stored.author_ids == ("A5023888391", "A5011111111")


def test_with_the_source_off_both_wei_chens_arrive_marked_name_match(
    tmp_path: Path, make_settings: Callable[..., Settings], clock: Clock
) -> None:
    app = make_app(tmp_path, make_settings, clock, None)
    fetch(app)
    assert shown(app) == {
        "arxiv:2411.00001": ["Wei Chen (name match)"],
        "arxiv:2411.00002": ["Wei Chen (name match)"],
    }


def test_a_citing_paper_comes_first_in_its_own_section(
    tmp_path: Path, make_settings: Callable[..., Settings], clock: Clock, http_server: HttpServer
) -> None:
    FakeOpenAlex().install(http_server)
    app = make_app(tmp_path, make_settings, clock, http_server, cites=["arxiv:2402.17193"])
    fetch(app)
    [plan] = plan_digests(app, app.settings.profile_records()).values()
    digest = plan.digest
    # The followed author's preprint cites the watched paper too: it is shown once, in
    # "Citing your work" (newest first), with both its reasons, not again among the followed.
    assert [m.paper.key for m in digest.citing] == [
        "arxiv:2411.00001",
        "doi:10.5555/citing.2026.3",
    ]
    cited = Reason("cites", "arxiv:2402.17193", "title", "The Watched Paper")
    assert digest.citing[1].reasons == (cited,)
    assert digest.citing[0].reasons[0] == cited
    assert digest.citing[0].reasons[1].term == "Wei Chen (OpenAlex A5023888391)"
    assert digest.matches == ()
    keys = [m.paper.key for m in digest.papers]
    assert len(keys) == len(set(keys))
    text, html = plan.rendered.text, plan.rendered.html
    assert text.index("CITING YOUR WORK") < text.index("A Journal Paper Citing")
    assert "Cites “The Watched Paper”" in html
    assert "Why: cites “The Watched Paper”; because you follow Wei Chen (OpenAlex" in text
    assert html.index("Citing your work") < html.index("A Journal Paper Citing")
    assert "citing your work" in plan.rendered.subject


def test_digest_match_shows_citing_papers_as_jsonl(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    clock: Clock,
    http_server: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    FakeOpenAlex().install(http_server)
    listing = tmp_path / "listing.jsonl"
    listing.write_text("".join(json.dumps(item) + "\n" for item in LISTING))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[sources.files]]\nname = "files"\npath = "{listing}"\n'
        f'[sources.openalex]\nbase_url = "{http_server.url}"\npacing_seconds = 0\n'
        '[[profiles]]\nname = "me"\n'
        'authors = [{ name = "Wei Chen", openalex = "A5023888391" }]\n'
        'cites = ["arxiv:2402.17193"]\n'
    )
    db = tmp_path / "d.sqlite"
    runner = CliRunner()
    # The CLI reads the system clock: set it to the fixtures' day, whatever day the test runs on.
    with time_machine.travel(clock(), tick=True):
        fetched = runner.invoke(cli, ["--config", str(config), "--db", str(db), "fetch"])
        assert fetched.exit_code == 0, fetched.output
        result = runner.invoke(
            cli, ["--config", str(config), "--db", str(db), "match", "--format", "jsonl"]
        )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    [journal] = [line for line in lines if line["title"].startswith("A Journal Paper Citing")]
    assert journal["reasons"] == [
        {"kind": "cites", "term": "arxiv:2402.17193", "field": "title", "text": "The Watched Paper"}
    ]
    kinds = {r["kind"] for line in lines for r in line["reasons"]}
    assert kinds <= {"cites", "author"}
    assert not any("Protein Folding" in line["title"] for line in lines)


def paper(*, ids: tuple[str, ...] = (), orcids: tuple[str, ...] = ()) -> Paper:
    return Paper(
        "arxiv:1", "T", authors=("Wei Chen", "Ann Lee"), author_ids=ids, author_orcids=orcids
    )


def name_hit(p: Paper) -> Match:
    return Match(p, (Reason("author", "Wei Chen", "authors", "Wei Chen"),), 100.0)


BY_ID = Profile("me", authors=(FollowedAuthor("Wei Chen", openalex="A1"),))
BY_ORCID = Profile("me", authors=(FollowedAuthor("Wei Chen", orcid="0000-0002-1825-0097"),))


@pytest.mark.parametrize(
    ("profile", "given", "term"),
    [
        pytest.param(BY_ID, paper(ids=("A1", "")), "Wei Chen (OpenAlex A1)", id="same-id"),
        pytest.param(BY_ID, paper(ids=("A2", "")), None, id="namesake"),
        pytest.param(BY_ID, paper(), "Wei Chen (name match)", id="no-ids"),
        pytest.param(BY_ID, paper(ids=("", "A3")), "Wei Chen (name match)", id="id-unknown-there"),
        pytest.param(
            BY_ORCID,
            paper(orcids=("0000-0002-1825-0097", "")),
            "Wei Chen (ORCID 0000-0002-1825-0097)",
            id="same-orcid",
        ),
        pytest.param(BY_ORCID, paper(ids=("A2", "")), "Wei Chen (name match)", id="orcid-unknown"),
    ],
)
def test_a_name_hit_on_an_id_followed_author(
    profile: Profile, given: Paper, term: str | None
) -> None:
    confirmed = confirm_authors(profile, given, name_hit(given))
    assert (confirmed.reasons[0].term if confirmed else None) == term


def test_an_id_on_the_paper_matches_whatever_the_spelling() -> None:
    spelled = Paper("arxiv:1", "T", authors=("Chen, W.-Z.", "Ann Lee"), author_ids=("A1", ""))
    confirmed = confirm_authors(BY_ID, spelled, None)
    assert confirmed is not None and confirmed.followed
    assert confirmed.reasons == (
        Reason("author", "Wei Chen (OpenAlex A1)", "authors", "Chen, W.-Z."),
    )


def test_a_namesake_with_a_keyword_stays_for_the_keyword() -> None:
    given = paper(ids=("A2", ""))
    keyword = Reason("keyword", "graphs", "title", "Graphs")
    hit = Match(given, (*name_hit(given).reasons, keyword), 110.0)
    confirmed = confirm_authors(BY_ID, given, hit)
    assert confirmed is not None and confirmed.reasons == (keyword,) and not confirmed.followed
    assert confirmed.score == 11.0  # one term, in the title


def test_plain_name_authors_keep_the_name_rules() -> None:
    plain = Profile("me", authors=(FollowedAuthor("Wei Chen"),))
    given = paper(ids=("A2", ""))
    assert confirm_authors(plain, given, name_hit(given)) == name_hit(given)


def test_a_namesake_leaving_the_window_is_not_expired_a_citing_paper_is(
    tmp_path: Path, make_settings: Callable[..., Settings], clock: Clock, http_server: HttpServer
) -> None:
    from datetime import timedelta

    from digest.app import expire_stale

    FakeOpenAlex().install(http_server)
    app = make_app(tmp_path, make_settings, clock, http_server, cites=["arxiv:2402.17193"])
    [profile] = app.settings.profile_records()
    expire_stale(app, profile)  # the window starts here
    fetch(app)
    clock.now += timedelta(days=10)
    assert expire_stale(app, profile) == 2
    expired = {
        row[0] for row in app.store.db.execute("SELECT paper_key FROM expired WHERE profile = 'me'")
    }
    assert expired == {"arxiv:2411.00001", "doi:10.5555/citing.2026.3"}


def test_digest_match_input_marks_name_hits_on_id_followed_authors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    listing = tmp_path / "listing.jsonl"
    listing.write_text("".join(json.dumps(item) + "\n" for item in LISTING))
    config = tmp_path / "config.toml"
    config.write_text(
        '[[profiles]]\nname = "me"\nauthors = [{ name = "Wei Chen", openalex = "A5023888391" }]\n'
    )
    result = CliRunner().invoke(
        cli, ["--config", str(config), "match", "--input", str(listing), "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    terms = [
        [r["term"] for r in json.loads(line)["reasons"]] for line in result.output.splitlines()
    ]
    assert terms == [["Wei Chen (name match)"], ["Wei Chen (name match)"]]
