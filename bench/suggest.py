"""The `suggest` phase: how well and how fast the suggestion model works.

Quality is a leave-out evaluation on the seeds: the reader's circle (the papers of the two author
pages, `seed:author-page`) is the library; a seeded 30% of it is hidden among every other seed
paper and papers generated from the Hugging Face seed pages only (so no hidden abstract leaks
into a distractor); recall@10 and @20 of the hidden papers over 10 splits, for the model, for
plain TF-IDF cosine (each paper's best cosine to a library paper) and for random order. The
model learns, as in `plan_digests`, against a background: more generated papers plus the pool
itself (stored papers include the day's candidates).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generate import SEEDS_DIR, iter_papers
from digest.models import Paper
from digest.sources.clean import clean_paper
from digest.sources.files import listing_to_paper
from digest.suggest.vectors import Doc

SPLITS = 10
HIDDEN_SHARE = 0.3


def _seed_papers() -> tuple[list[Paper], list[Paper]]:
    """(the reader's circle, every other seed paper), one paper per title."""
    circle: dict[str, Paper] = {}
    others: dict[str, Paper] = {}
    for path in sorted(SEEDS_DIR.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            paper = clean_paper(listing_to_paper(row, "seeds"))
            into = circle if row["source"] == "seed:author-page" else others
            into.setdefault(paper.title, paper)
    return list(circle.values()), [p for t, p in others.items() if t not in circle]


def _hf_generated(count: int, seed: int) -> list[Paper]:
    """Generated papers drawn from the Hugging Face seed pages only."""
    pages = tempfile.mkdtemp(prefix="hf-seeds-")
    for path in sorted(SEEDS_DIR.glob("*.jsonl")):
        if "author-page" not in path.read_text("utf-8")[:2000]:
            (Path(pages) / path.name).write_text(path.read_text("utf-8"), "utf-8")
    return list(iter_papers(count, seed=seed, seeds_dir=Path(pages)))


def leave_out(splits: int, distractors: int) -> dict[str, Any]:
    """Recall@10/@20 of the hidden circle papers for the model, cosine and random order, and
    how the model's threshold separates them."""
    import numpy as np

    from digest.suggest import Vocabulary, doc_of, train

    circle, others = _seed_papers()
    generated = _hf_generated(distractors * 2, seed=11)
    pool_extra, background = generated[:distractors], generated[distractors:]
    recalls: dict[str, list[tuple[float, float]]] = {"model": [], "cosine": [], "random": []}
    above, above_hidden = [], []
    for split in range(splits):
        order = circle[:]
        random.Random(split).shuffle(order)
        hidden_n = int(len(order) * HIDDEN_SHARE)
        hidden, library = order[:hidden_n], order[hidden_n:]
        pool = hidden + others + pool_extra
        positives = [doc_of(p) for p in library]
        negatives = [doc_of(p) for p in background + pool]
        vocabulary = Vocabulary(positives + negatives)
        model = train(positives, negatives, vocabulary=vocabulary)
        rows = vocabulary.rows([doc_of(p) for p in pool])
        scores = {
            "model": np.asarray(model.scores(rows)),
            "cosine": (rows @ model.positives.T).toarray().max(axis=1),
            "random": np.array(random.Random(1000 + split).sample(range(len(pool)), len(pool))),
        }
        for name, values in scores.items():
            ranked = list(np.argsort(-values, kind="stable"))
            top10, top20 = set(ranked[:10]), set(ranked[:20])
            hits = set(range(hidden_n))
            recalls[name].append((len(hits & top10) / hidden_n, len(hits & top20) / hidden_n))
        passing = set(np.nonzero(scores["model"] >= model.threshold)[0])
        above.append(len(passing) / len(pool))
        above_hidden.append(len(passing & set(range(hidden_n))) / hidden_n)
    result: dict[str, Any] = {
        name: (statistics.mean(r[0] for r in values), statistics.mean(r[1] for r in values))
        for name, values in recalls.items()
    }
    result["threshold"] = (statistics.mean(above_hidden), statistics.mean(above))
    result["sizes"] = (len(circle), len(others), distractors)
    return result


def train_and_score(library_n: int, candidates_n: int) -> tuple[float, float, float]:
    """Seconds to read the 2,000-paper background's text (once a pass, shared), then to fit
    the profile's vocabulary and model on a `library_n` library against it and score
    `candidates_n` candidates (what one profile costs), and the same work the textbook way
    (`textbook_train_and_score`), on the same papers in the same process."""
    from digest.suggest import doc_of, rank_suggestions, train
    from digest.suggest.vectors import field_words

    papers = list(iter_papers(2_000 + library_n + candidates_n, seed=5))
    background = [doc_of(p) for p in papers[:2_000]]
    library = [doc_of(p) for p in papers[2_000 : 2_000 + library_n]]
    candidates = papers[2_000 + library_n :]
    # In a child process: the figure of this phase's peak RSS is digest's, not the baseline's.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as child:
        docs = [doc_of(p) for p in candidates]
        baseline = child.submit(textbook_train_and_score, library, background, docs).result()
    started = time.perf_counter()
    for doc in background:
        field_words(doc.title)
        field_words(doc.abstract)
    fitted = time.perf_counter()
    model = train(library, background)
    rank_suggestions(model, candidates, 5)
    return fitted - started, time.perf_counter() - fitted, baseline


def textbook_train_and_score(
    library: list[Doc], background: list[Doc], candidates: list[Doc]
) -> float:
    """Seconds for arxiv-sanity-lite's recipe done with scikit-learn's own parts, with digest's
    settings: TfidfVectorizer (unigrams and bigrams, English stop words, sublinear tf, the same
    max_df and min_df) fitted on the library and the background, the same LinearSVC, the
    candidates transformed and scored. Everything read inside the time: TfidfVectorizer keeps
    nothing between fits."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from digest.suggest.model import SVM_C, SVM_TOL
    from digest.suggest.vectors import MAX_DF, MAX_FEATURES, MIN_DF

    def texts(docs: list[Doc]) -> list[str]:
        return [f"{d.title} {d.title} {d.abstract}" for d in docs]

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        stop_words="english",
        sublinear_tf=True,
        max_df=MAX_DF,
        min_df=MIN_DF,
        max_features=MAX_FEATURES,
        dtype=np.float32,
    )
    matrix = vectorizer.fit_transform(texts(library + background))
    labels = np.array([1] * len(library) + [0] * len(background))
    classifier = LinearSVC(C=SVM_C, tol=SVM_TOL, class_weight="balanced", random_state=0)
    classifier.fit(matrix, labels)
    classifier.decision_function(vectorizer.transform(texts(candidates)))
    return time.perf_counter() - started


def lab_day(workdir: Path, profiles_n: int, library_n: int, day_n: int) -> float:
    """Seconds `plan_digests` takes for `profiles_n` library-only profiles (CSL-JSON libraries
    of `library_n` papers each) over a store of 2,000 older papers and a day of `day_n`."""
    from digest.app import build_app, plan_digests
    from digest.settings import settings_from_dict
    from digest.store import Store

    root = workdir / "suggest-day"
    root.mkdir(parents=True, exist_ok=True)
    db = root / "day.sqlite"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    papers = list(iter_papers(2_000 + day_n, seed=9))
    now = datetime(2025, 12, 31, 6, tzinfo=UTC)
    store = Store.open(db)
    store.upsert_papers(papers[:2_000], now - timedelta(days=30))
    store.upsert_papers(papers[2_000:], now - timedelta(hours=2))
    configs = []
    for i in range(profiles_n):
        items = [
            {"title": p.title, "abstract": p.abstract, "URL": p.url}
            for p in iter_papers(library_n, seed=100 + i)
        ]
        path = root / f"library-{i}.json"
        path.write_text(json.dumps(items), "utf-8")
        configs.append({"name": f"p{i}", "library": str(path), "first_run_days": 1})
    settings = settings_from_dict({"profiles": configs}, root / "bench.toml")
    app = build_app(settings, store=store, clock=lambda: now)
    started = time.perf_counter()
    plans = plan_digests(app, settings.profile_records())
    seconds = time.perf_counter() - started
    app.close()
    if not all(len(plan.digest.suggestions) for plan in plans.values()):
        raise RuntimeError("a profile got no suggestions")
    return seconds


def example_titles(workdir: Path, count: int = 20) -> list[str]:
    """The first `count` suggestions of the example profile on the seeds (as `digest demo`
    stores them, before anything is sent)."""
    from dataclasses import replace

    from digest.app import build_app, data_path, fetch, plan_digests
    from digest.settings import load_settings
    from digest.sources import Source
    from digest.sources.files import FilesSource

    settings = load_settings(data_path("config.example.toml"))
    db = workdir / "suggest-example.sqlite"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    seeds: list[Source] = [FilesSource("seeds", str(SEEDS_DIR / "*.jsonl"))]
    app = build_app(settings, db_path=db, sources=seeds)
    try:
        fetch(app)
        [profile] = settings.profile_records()
        wide = replace(profile, suggestions=count)
        plan = plan_digests(app, [wide])[profile.name]
        return [m.paper.title for m in plan.digest.suggestions]
    finally:
        app.close()
