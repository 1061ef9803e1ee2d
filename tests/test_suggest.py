"""Suggestions: the model of a reader's library over a small real corpus (the seed listings),
how feedback and rules steer it, when it is retrained, and where the suggestions show."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.app import App, build_app, plan_digest
from digest.library import load_library
from digest.models import Match, Paper, Profile
from digest.render import fit_digest
from digest.settings import settings_from_dict
from digest.sources.clean import clean_paper
from digest.sources.files import listing_to_paper
from digest.store import Store
from digest.suggest import (
    Doc,
    model_bytes,
    model_from_bytes,
    rank_suggestions,
    suggest,
    train,
)
from tests.children import child_env

from .conftest import Clock

ROOT = Path(__file__).parent.parent
LIBRARY = Path(__file__).parent / "data" / "library"
NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
# A continual-learning reader: three exports of papers on forgetting (see data/library/README).
CONTINUAL = ["hand.bib", "library.ris", "zotero-preprints.csl.json"]
ON_TOPIC = "Challenging Common Assumptions about Catastrophic Forgetting"
OFF_TOPIC = "TokenHMR: Advancing Human Mesh Recovery with a Tokenized Pose Representation"
TOPIC_WORDS = ("continual", "forget", "lifelong", "incremental", "plasticity", "rehearsal")


def seed_papers() -> list[Paper]:
    papers = []
    for path in sorted((ROOT / "seeds").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            papers.append(clean_paper(listing_to_paper(json.loads(line), "seeds")))
    return papers


def _app(tmp_path: Path, **profile: Any) -> App:
    library = tmp_path / "library"
    if not library.exists():
        library.mkdir()
        for name in CONTINUAL:
            shutil.copy(LIBRARY / name, library / name)
    fields: dict[str, Any] = {
        "name": "me",
        "email": ["me@example.org"],
        "keywords": ["speculative decoding"],
        "library": [f"library/{n}" for n in CONTINUAL],
        **profile,
    }
    settings = settings_from_dict({"profiles": [fields]}, tmp_path / "config.toml")
    store = Store.open(tmp_path / "d.sqlite")
    if not store.count_papers():
        store.upsert_papers(seed_papers(), NOW - timedelta(hours=1))
    return build_app(settings, store=store, clock=Clock(NOW))


def _suggested(app: App) -> tuple[Match, ...]:
    [profile] = app.settings.profile_records()
    return plan_digest(app, profile).digest.suggestions


def _titles(matches: tuple[Match, ...]) -> list[str]:
    return [m.paper.title for m in matches]


def test_papers_on_the_library_topic_are_suggested_without_any_keyword(tmp_path: Path) -> None:
    app = _app(tmp_path)
    suggested = _suggested(app)
    assert len(suggested) == 5
    for match in suggested:
        text = (match.paper.title + " " + match.paper.abstract).lower()
        assert any(word in text for word in TOPIC_WORDS), match.paper.title
        assert "speculative decoding" not in text, "a rule picked it: not a suggestion"
        [reason] = match.reasons
        assert reason.kind == "similar" and reason.field in ("title", "abstract")
        assert reason.term in {
            e.title for e in load_library(app.settings.profile_records()[0].library).entries
        }
        assert 3 <= len(reason.text.split(", ")) <= 5
    assert [m.score for m in suggested] == sorted((m.score for m in suggested), reverse=True)
    wide = _app(tmp_path, suggestions=50)
    titles = _titles(_suggested(wide))
    assert ON_TOPIC in titles and OFF_TOPIC not in titles
    assert len(titles) < 50, "only those above the threshold: none rather than weak ones"
    app.close()
    wide.close()


def test_a_profile_may_be_a_library_alone(tmp_path: Path) -> None:
    app = _app(tmp_path, keywords=[])
    [profile] = app.settings.profile_records()
    plan = plan_digest(app, profile)
    assert plan.digest.matches == () and len(plan.digest.suggestions) == 5
    assert "Nothing new matched" not in plan.rendered.html
    assert plan.rendered.subject.endswith(": 5 suggested")
    app.close()


def test_disliked_and_rule_picked_papers_are_never_suggested(tmp_path: Path) -> None:
    app = _app(tmp_path)
    first = _suggested(app)
    disliked = first[0].paper
    assert app.store.record_feedback("me", disliked.key, "dislike", NOW)
    again = _suggested(app)
    assert disliked.key not in {m.paper.key for m in again}
    [profile] = app.settings.profile_records()
    picked = {m.paper.key for m in plan_digest(app, profile).digest.matches}
    assert picked and not picked & {m.paper.key for m in again}
    app.close()


def test_a_liked_paper_changes_the_next_suggestions(tmp_path: Path) -> None:
    app = _app(tmp_path, suggestions=20)
    before = _suggested(app)
    liked = next(p for p in seed_papers() if p.title.startswith("RESTOR"))
    stored = app.store.get_paper(liked.identity_keys[-1])
    assert stored is not None
    app.store.record_feedback("me", stored.key, "like", NOW)
    after = _suggested(app)
    assert _titles(after) != _titles(before)
    assert stored.key not in {m.paper.key for m in after}, "what was liked is not suggested"
    like_it = [m for m in after if m.reasons[0].term == stored.title]
    assert like_it, "papers similar to the liked one now come"
    assert not {m.paper.key for m in like_it} & {m.paper.key for m in before}
    app.close()


def test_categories_and_exclude_are_respected(tmp_path: Path) -> None:
    app = _app(tmp_path)
    [profile] = app.settings.profile_records()
    top = _suggested(app)[0].paper
    candidates = [top, *(p for p in app.store.papers_seen_since(NOW - timedelta(days=1)))]
    elsewhere = replace(top, categories=("q-bio.NC",))
    in_cs = replace(profile, categories=("cs",))
    keys = {m.paper.key for m in suggest(app.store, in_cs, [elsewhere], (), NOW)}
    assert top.key not in keys, "a paper outside the profile's categories"
    keys = {
        m.paper.key
        for m in suggest(app.store, in_cs, [replace(top, categories=("cs.LG",))], (), NOW)
    }
    assert top.key in keys, "cs stands for every cs.* category"
    excluding = replace(profile, exclude=("continual learning",), suggestions=50)
    for match in suggest(app.store, excluding, candidates, (), NOW):
        text = (match.paper.title + " " + match.paper.abstract).lower()
        assert "continual learning" not in text.replace("-", " "), match.paper.title
    app.close()


def test_the_model_is_retrained_only_when_its_inputs_change(tmp_path: Path) -> None:
    app = _app(tmp_path)

    def trainings() -> int:
        saved = app.store.saved_model("me")
        return saved[2] if saved else 0

    _suggested(app)
    _suggested(app)
    assert trainings() == 1, "same library, feedback and background: the kept model"
    some = next(iter(app.store.papers_seen_since(NOW - timedelta(days=1))))
    app.store.record_feedback("me", some.key, "dislike", NOW)
    _suggested(app)
    _suggested(app)
    assert trainings() == 2, "feedback changed"
    bib = tmp_path / "library" / "hand.bib"
    bib.write_text(bib.read_text() + "\n@misc{x, title = {Replay buffers for lifelong agents}}\n")
    _suggested(app)
    assert trainings() == 3, "the library changed"
    app.store.upsert_papers(
        [Paper(key="", title="A new paper on graph coloring", abstract="Colors.")], NOW
    )
    _suggested(app)
    assert trainings() == 4, "the background (stored papers) changed"
    _suggested(app)
    assert trainings() == 4
    app.close()


def test_the_kept_model_reads_back_as_plain_arrays_and_ranks_the_same(tmp_path: Path) -> None:
    positives = [Doc("a", "Continual learning without forgetting", "Replay and regularisation.")]
    negatives = [Doc(f"n{i}", f"Image segmentation method {i}", "Pixels.") for i in range(6)]
    model = train(positives, negatives)
    raw = model_bytes(model)
    assert b"pickle" not in raw
    again = model_from_bytes(raw, model.vocabulary)
    assert again is not None
    papers = [
        Paper(key="x", title="Forgetting in continual learning", abstract="Replay."),
        Paper(key="y", title="Segmentation of images", abstract="Pixels."),
    ]
    assert rank_suggestions(model, papers, 5) == rank_suggestions(again, papers, 5)
    assert model_from_bytes(b"not a model", model.vocabulary) is None
    other = train(positives, [*negatives, Doc("m", "Graph colouring", "Colours.")])
    assert model_from_bytes(raw, other.vocabulary) is None, "another vocabulary: retrained"


def test_the_digest_shows_the_section_with_its_reason(tmp_path: Path) -> None:
    app = _app(tmp_path)
    [profile] = app.settings.profile_records()
    plan = plan_digest(app, profile)
    html, text = plan.rendered.html, plan.rendered.text
    suggested = plan.digest.suggestions
    assert html.index("On your topics") < html.index("Suggested for you · 5")
    assert html.count("Similar to “") == 5
    assert "SUGGESTED FOR YOU (5)" in text and text.count("Why: similar to") == 5
    for match in suggested:
        assert match.paper.key in plan.rendered.paper_keys, "delivered like the others"
    app.close()


def test_fit_digest_keeps_suggestions_under_the_clip_size(tmp_path: Path) -> None:
    app = _app(tmp_path, suggestions=50)
    [profile] = app.settings.profile_records()
    suggested = _suggested(app)
    papers = seed_papers()
    matches = [Match(p, (), 1.0) for p in papers[:150]]
    digest, rendered = fit_digest(profile, matches, NOW, clip_bytes=40_000, suggestions=suggested)
    assert len(rendered.html.encode()) <= 40_000
    assert digest.suggestions and digest.more > 0
    tiny = fit_digest(profile, matches, NOW, clip_bytes=8_000, suggestions=suggested)
    assert len(tiny[1].html.encode()) <= 8_000 or len(tiny[0].suggestions) == 0
    assert len(tiny[0].suggestions) < len(suggested)
    app.close()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}),
    )


def test_match_input_on_a_fresh_database_learns_against_the_listing(tmp_path: Path) -> None:
    for name in CONTINUAL:
        shutil.copy(LIBRARY / name, tmp_path / name)
    listing = tmp_path / "in.jsonl"
    listing.write_text(
        "".join(
            (ROOT / "seeds" / n).read_text()
            for n in sorted(p.name for p in (ROOT / "seeds").glob("00[234]*.jsonl"))
        )
    )
    (tmp_path / "config.toml").write_text(
        '[store]\npath = "fresh.sqlite"\n[[profiles]]\nname = "lib"\n'
        f"library = {json.dumps(CONTINUAL)}\nsuggestions = 4\n"
    )
    result = _run(["match", "--input", str(listing), "--format", "jsonl"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4 and all(r["profile"] == "lib" for r in rows)
    for row in rows:
        [reason] = row["reasons"]
        assert reason["kind"] == "similar" and reason["term"] and reason["text"]
        assert reason["field"] in ("title", "abstract")
    assert (tmp_path / "fresh.sqlite").exists()


def test_a_profile_without_a_library_never_imports_the_model(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from datetime import datetime, UTC\n"
        "from digest.app import build_app, plan_digest\n"
        "from digest.settings import settings_from_dict\n"
        "from pathlib import Path\n"
        "s = settings_from_dict({'profiles': [{'name': 'k', 'keywords': ['x']}]},"
        f" Path({str(tmp_path / 'c.toml')!r}))\n"
        f"app = build_app(s, db_path={str(tmp_path / 'd.sqlite')!r})\n"
        "plan_digest(app, s.profile_records()[0])\n"
        "heavy = ('sklearn', 'scipy', 'bibtexparser', 'rispy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env({"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (Profile("a", library=(Path("x.bib"),), suggestions=0), "off"),
        (Profile("b", suggestions=5), "no library"),
    ],
    ids=["zero-turns-them-off", "no-library"],
)
def test_no_suggestions_without_a_library_or_with_zero(
    tmp_path: Path, profile: Profile, expected: str
) -> None:
    store = Store.open(tmp_path / "d.sqlite")
    store.upsert_papers(seed_papers()[:20], NOW)
    assert suggest(store, profile, seed_papers()[:20], (), NOW) == (), expected
    assert store.saved_model(profile.name) is None
    store.close()


def test_a_pass_trains_every_library_profile_once_and_the_same_every_time(
    tmp_path: Path,
) -> None:
    """`plan_digests` trains the models of a pass before ranking (`Suggester.prepare`) and
    keeps them together: each model is trained once, the same from the same inputs in another
    database (two fits at once in threads broke this), and each profile gets what it gets
    planned alone."""
    import io

    import numpy as np

    from digest.app import plan_digests

    _app(tmp_path).close()  # the library files and the stored seed papers
    fields = [
        {"name": name, "library": [f"library/{n}" for n in libraries], "suggestions": 5}
        for name, libraries in (("all", CONTINUAL), ("bib", CONTINUAL[:1]), ("ris", CONTINUAL[1:2]))
    ]
    settings = settings_from_dict({"profiles": fields}, tmp_path / "config.toml")

    def planned(db: Path) -> tuple[App, dict[str, Any], list[Any]]:
        app = build_app(settings, store=Store.open(db), clock=Clock(NOW))
        if not app.store.count_papers():
            app.store.upsert_papers(seed_papers(), NOW - timedelta(hours=1))
        plans = plan_digests(app, settings.profile_records())
        kept = [app.store.saved_model(name) for name in ("all", "bib", "ris")]
        assert [k[2] if k else 0 for k in kept] == [1, 1, 1], "each trained once, all kept"
        coefs = [np.load(io.BytesIO(k[1]))["coef"] for k in kept if k]
        return app, plans, coefs

    app, together, coefs = planned(tmp_path / "d.sqlite")
    for _ in range(3):
        again = planned(tmp_path / f"e{_}.sqlite")
        again[0].close()
        assert all(np.array_equal(a, b) for a, b in zip(coefs, again[2], strict=True))
    for profile in settings.profile_records():
        alone = plan_digest(app, profile).digest.suggestions
        assert alone, profile.name
        assert _titles(together[profile.name].digest.suggestions) == _titles(alone)
    app.close()
