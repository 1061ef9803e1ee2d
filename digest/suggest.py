"""Suggestions: papers like the ones a reader keeps, that no rule picked (DESIGN.md).

Per profile, a linear classifier over TF-IDF of title and abstract (folded the way the matcher
folds text) learns the reader's positives (library entries, followed authors' stored papers,
liked papers) against negatives (disliked papers and a stable sample of stored papers). The
trained model is kept in the store as plain arrays (no pickle: a database file may come from
anywhere) with a hash of its inputs, and retrained only when they changed. Everything is
deterministic (fixed seeds, sorted inputs). scikit-learn is imported only here, and only for a
profile with a library.

Each suggestion gets one reason of kind "similar": `term` the title of the closest positive
(cosine on TF-IDF), `field` the field whose words weigh most in its score, `text` the top
weighted terms.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import StoreError
from digest.models import Match, Paper, Profile, Reason, ReasonField, fold
from digest.tex import readable

if TYPE_CHECKING:
    from digest.library import Library
    from digest.match import Matcher
    from digest.store import Store

log = logging.getLogger(__name__)

MODEL_VERSION = 1  # part of the inputs hash: a new recipe retrains every model
BACKGROUND_SIZE = 2_000  # stored papers sampled as negatives
POSITIVES_LIMIT = 20_000
# A suggestion must score above this share of the stored papers the model learned against
# (its background): a decision value alone means little across corpora of different sizes.
# Calibrated on the leave-out evaluation (bench `suggest`): most hidden library papers score
# above it, and few others do ("none rather than weak ones").
THRESHOLD_PERCENTILE = 90.0
TOP_TERMS = 5
# A paper the reader liked or disliked weighs this many background papers: an explicit verdict
# must move the model (alphaXiv's readers say its "not interested" does nothing).
FEEDBACK_WEIGHT = 3.0
_MIN_POSITIVES = 1
_MIN_NEGATIVES = 5


@dataclass(frozen=True, slots=True)
class Doc:
    """A paper as the model reads it."""

    key: str
    title: str
    abstract: str = ""


def doc_of(paper: Paper) -> Doc:
    """A stored or listed paper as a model document."""
    return Doc(paper.key, paper.title, paper.abstract)


def folded(text: str) -> str:
    """A field folded the way the matcher reads it: TeX as text, case and accents folded."""
    if not text:
        return ""
    return fold(readable(text).text if "\\" in text or "$" in text else text)


@lru_cache(maxsize=50_000)
def _text(title: str, abstract: str) -> str:
    title = folded(title)
    return f"{title}. {title}. {folded(abstract)}"


def doc_text(doc: Doc) -> str:
    """What the vectorizer reads: the title twice (it says most in fewest words), then the
    abstract (kept for a pass: every profile reads the same background and candidates)."""
    return _text(doc.title, doc.abstract)


def _vectorizer() -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    # arxiv-sanity-lite's recipe (unigrams and bigrams, sublinear tf, English stop words),
    # with min_df 1: a reader's library is small.
    return TfidfVectorizer(
        lowercase=False,  # `doc_text` folded it
        token_pattern=r"(?u)\b[^\W\d_][^\W_]+\b",
        ngram_range=(1, 2),
        stop_words="english",
        sublinear_tf=True,
        max_df=0.5,
        max_features=50_000,
        dtype=np.float32,
    )


class Vocabulary:
    """TF-IDF fitted once on a corpus (the stored background), shared by every profile of a
    pass; the rows of documents it has read are kept (in the batches they were read in), so
    each document is vectorised once however many profiles score it."""

    def __init__(self, docs: Sequence[Doc], fitted: tuple[Sequence[str], Any] | None = None):
        self.vectorizer = _vectorizer()
        self._batches: list[Any] = []
        self._where: dict[tuple[str, str, str], tuple[int, int]] = {}
        if fitted is None:
            matrix = self.vectorizer.fit_transform([doc_text(d) for d in docs]).tocsr()
            self._keep(docs, matrix)
        else:  # a kept model's: its terms and idf, nothing refitted
            self.vectorizer.vocabulary_ = {term: i for i, term in enumerate(fitted[0])}
            self.vectorizer.idf_ = fitted[1]
        self.terms: tuple[str, ...] = tuple(self.vectorizer.get_feature_names_out().tolist())
        self.idf = self.vectorizer.idf_
        content = json.dumps([MODEL_VERSION, self.terms, [float(x) for x in self.idf]])
        self.digest = hashlib.sha256(content.encode()).hexdigest()

    @classmethod
    def kept(cls, terms: Sequence[str], idf: Any) -> Vocabulary:
        """A vocabulary as a kept model has it (terms and idf)."""
        return cls((), (terms, idf))

    def _keep(self, docs: Sequence[Doc], matrix: Any) -> None:
        batch = len(self._batches)
        self._batches.append(matrix)
        for i, doc in enumerate(docs):
            self._where[(doc.key, doc.title, doc.abstract)] = (batch, i)

    def rows(self, docs: Sequence[Doc]) -> Any:
        """The TF-IDF rows of `docs`, in order, as one CSR matrix (0 rows for none)."""
        import numpy as np
        from scipy.sparse import csr_matrix, vstack

        if not docs:
            return csr_matrix((0, len(self.terms)), dtype=np.float32)
        missing = list(
            {
                (d.key, d.title, d.abstract): d
                for d in docs
                if (d.key, d.title, d.abstract) not in self._where
            }.values()
        )
        if missing:
            if len(self._where) > 200_000:  # a long-running process: keep the background only
                del self._batches[1:]
                self._where = {k: v for k, v in self._where.items() if v[0] == 0}
            fresh = self.vectorizer.transform([doc_text(d) for d in missing]).tocsr()
            self._keep(missing, fresh)
        places = [self._where[(d.key, d.title, d.abstract)] for d in docs]
        parts, order = [], np.empty(len(docs), dtype=np.int64)
        offset = 0
        for batch in sorted({b for b, _ in places}):
            positions = [i for i, (b, _) in enumerate(places) if b == batch]
            parts.append(self._batches[batch][[places[i][1] for i in positions]])
            order[positions] = np.arange(offset, offset + len(positions))
            offset += len(positions)
        stacked = parts[0] if len(parts) == 1 else vstack(parts, format="csr")
        return stacked[order]


@dataclass(frozen=True)
class Model:
    """A trained profile model over a vocabulary: the classifier's weights, its threshold,
    and the positives' vectors and titles (for the "similar to" reason)."""

    vocabulary: Vocabulary
    coef: Any  # numpy float array, one per term
    intercept: float
    positives: Any  # scipy CSR matrix, L2-normalised rows
    positive_titles: tuple[str, ...]
    threshold: float  # the decision value a suggestion must reach

    @property
    def terms(self) -> tuple[str, ...]:
        """The vocabulary's terms, by column."""
        return self.vocabulary.terms

    def vectors(self, docs: Sequence[Doc]) -> Any:
        """The TF-IDF rows of `docs`."""
        return self.vocabulary.rows(docs)

    def scores(self, matrix: Any) -> Any:
        """The decision value of each row (higher: more like the positives)."""
        return matrix @ self.coef + self.intercept


def train(
    positives: Sequence[Doc],
    negatives: Sequence[Doc],
    judged: frozenset[str] = frozenset(),
    vocabulary: Vocabulary | None = None,
) -> Model:
    """A linear SVM (class-balanced) on positives against negatives over `vocabulary`
    (default: TF-IDF fitted on these documents), the reader's own verdicts (`judged` keys)
    weighing `FEEDBACK_WEIGHT`; deterministic for the same inputs."""
    import numpy as np
    from scipy.sparse import vstack
    from sklearn.svm import LinearSVC

    if vocabulary is None:
        vocabulary = Vocabulary([*positives, *negatives])
    positive_rows = vocabulary.rows(positives)
    negative_rows = vocabulary.rows(negatives)
    matrix = vstack([positive_rows, negative_rows], format="csr")
    labels = np.array([1] * len(positives) + [0] * len(negatives))
    classifier = LinearSVC(C=0.1, class_weight="balanced", random_state=0, max_iter=5000)
    weights = [FEEDBACK_WEIGHT if d.key in judged else 1.0 for d in (*positives, *negatives)]
    classifier.fit(matrix, labels, sample_weight=np.array(weights))
    background = classifier.decision_function(negative_rows)
    return Model(
        vocabulary=vocabulary,
        coef=np.asarray(classifier.coef_[0], dtype=np.float32),
        intercept=float(classifier.intercept_[0]),
        positives=positive_rows,
        positive_titles=tuple(d.title for d in positives),
        threshold=float(np.percentile(background, THRESHOLD_PERCENTILE)),
    )


def model_bytes(model: Model) -> bytes:
    """The model as one `.npz` of plain arrays, its vocabulary (terms, idf) included, read
    back with `allow_pickle=False`: a database may come from anywhere."""
    import numpy as np

    buffer = io.BytesIO()
    meta = {
        "version": MODEL_VERSION,
        "intercept": model.intercept,
        "threshold": model.threshold,
        "vocabulary": model.vocabulary.digest,
    }
    np.savez(
        buffer,
        meta=np.array(json.dumps(meta)),
        terms=np.array(json.dumps(model.terms)),
        idf=np.asarray(model.vocabulary.idf, dtype=np.float32),
        titles=np.array(json.dumps(model.positive_titles)),
        coef=model.coef,
        data=model.positives.data,
        indices=model.positives.indices,
        indptr=model.positives.indptr,
        shape=np.array(model.positives.shape),
    )
    return buffer.getvalue()


def model_from_bytes(raw: bytes, shared: Vocabulary | None = None) -> Model | None:
    """A model kept by `model_bytes`; None when it cannot be read (it is then retrained).
    With `shared` the very vocabulary it was trained on, that one is used (its rows are
    shared with the other profiles)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("version") != MODEL_VERSION:
                return None
            if shared is not None and meta.get("vocabulary") == shared.digest:
                vocabulary = shared
            else:
                vocabulary = Vocabulary.kept(json.loads(str(arrays["terms"])), arrays["idf"])
            positives = csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]),
                shape=tuple(int(n) for n in arrays["shape"]),
            )
            return Model(
                vocabulary=vocabulary,
                coef=arrays["coef"],
                intercept=float(meta["intercept"]),
                positives=positives,
                positive_titles=tuple(json.loads(str(arrays["titles"]))),
                threshold=float(meta["threshold"]),
            )
    except (ValueError, KeyError, OSError, TypeError) as exc:
        log.info("a kept suggestion model could not be read (%s): retraining", exc)
        return None


# --- choosing and explaining suggestions ----------------------------------------------------------


def explain(model: Model, row: Any, doc: Doc) -> Reason:
    """The "similar" reason of one scored row: the closest positive's title, the field that
    weighs most, the top weighted terms."""
    import numpy as np

    contributions = row.multiply(model.coef).tocsr()
    order = np.argsort(-contributions.data, kind="stable")
    top = [
        (model.terms[contributions.indices[i]], float(contributions.data[i]))
        for i in order[:TOP_TERMS]
        if contributions.data[i] > 0
    ]
    title_words = set(folded(doc.title).replace(".", " ").split())
    in_title = sum(w for term, w in top if set(term.split()) <= title_words)
    field: ReasonField = "title" if top and in_title * 2 >= sum(w for _, w in top) else "abstract"
    closest = ""
    if model.positives.shape[0]:
        similarity = (model.positives @ row.T).toarray().ravel()
        closest = model.positive_titles[int(np.argmax(similarity))]
    return Reason("similar", closest, field, ", ".join(term for term, _ in top))


def rank_suggestions(
    model: Model, candidates: Sequence[Paper], limit: int, threshold: float | None = None
) -> tuple[Match, ...]:
    """The best `limit` candidates scoring at least `threshold` (default: the model's), each
    with its reason, best first (ties by key, so the order is deterministic)."""
    if not candidates or limit <= 0:
        return ()
    if threshold is None:
        threshold = model.threshold
    docs = [doc_of(p) for p in candidates]
    matrix = model.vectors(docs)
    scores = model.scores(matrix)
    ranked = sorted(
        (i for i in range(len(candidates)) if scores[i] >= threshold),
        key=lambda i: (-float(scores[i]), candidates[i].key),
    )[:limit]
    return tuple(
        # The score is how far above the bar it is (0: just at the threshold).
        Match(
            candidates[i],
            (explain(model, matrix[i], docs[i]),),
            round(float(scores[i]) - threshold, 3),
        )
        for i in ranked
    )


@lru_cache(maxsize=256)
def _exclude_matcher(exclude: tuple[str, ...]) -> Matcher:
    from digest.match import Matcher

    return Matcher([Profile("exclude", keywords=exclude)])


def eligible(paper: Paper, profile: Profile, skip: set[str]) -> bool:
    """A candidate a suggestion may be: not known to the reader (`skip`: library, liked,
    disliked, picked by a rule), in the profile's categories, without an excluded term."""
    from digest.match import passes_categories

    if skip.intersection((paper.key, *paper.identity_keys)):
        return False
    wanted = frozenset(c.strip().lower() for c in profile.categories if c.strip())
    if not passes_categories(paper, wanted):
        return False
    return not (profile.exclude and _exclude_matcher(profile.exclude).match(paper))


# --- the inputs of a profile's model, from its library and the store ------------------------------


@dataclass(frozen=True)
class Inputs:
    """What a profile's model learns from, and the hash that says when it changed."""

    positives: tuple[Doc, ...]
    negatives: tuple[Doc, ...]
    known: frozenset[str]  # keys of every positive and disliked paper (never suggested)
    digest: str
    judged: frozenset[str]  # keys of the liked and disliked papers
    background_digest: str
    background: tuple[Doc, ...]  # what the vocabulary is fitted on


def _followed_papers(store: Store, profile: Profile) -> list[Paper]:
    from digest.match import Matcher

    if not profile.authors:
        return []
    matcher = Matcher([Profile(profile.name, authors=profile.authors)])
    seen: dict[str, Paper] = {}
    for author in profile.authors:
        for name in author.names:
            last = name.split()[-1] if name.split() else ""
            for paper in store.papers_by_last_name(last):
                if paper.key not in seen and matcher.match(paper):
                    seen[paper.key] = paper
    return sorted(seen.values(), key=lambda p: p.key)


_BACKGROUND_SEED = "digest"  # one sample for every profile: read once a pass
_BACKGROUNDS: dict[tuple[object, ...], tuple[str, tuple[Doc, ...]]] = {}


def background(store: Store, extra: Sequence[Paper] = ()) -> tuple[str, tuple[Doc, ...]]:
    """The stored papers every model learns against (a stable sample, plus `extra`), with a
    digest of their content; read once while the store's papers do not change."""
    state = (id(store), store.papers_state(), tuple((p.key, p.title) for p in extra))
    known = _BACKGROUNDS.get(state)
    if known is not None:
        return known
    docs = {p.key: doc_of(p) for p in store.sample_papers(_BACKGROUND_SEED, BACKGROUND_SIZE)}
    for paper in extra:
        docs.setdefault(paper.key, doc_of(paper))
    ordered = tuple(sorted(docs.values(), key=lambda d: d.key))
    content = json.dumps([[d.key, d.title, d.abstract] for d in ordered])
    found = (hashlib.sha256(content.encode()).hexdigest(), ordered)
    _BACKGROUNDS.clear()  # one store state at a time
    _BACKGROUNDS[state] = found
    return found


_LIBRARIES: dict[tuple[object, ...], Library] = {}
_VOCABULARIES: dict[str, Vocabulary] = {}
_SHARED: dict[tuple[object, ...], tuple[tuple[Library, ...], Vocabulary]] = {}


def cached_library(profile: Profile) -> Library:
    """The profile's library, read again only when its files changed (size and modification
    time: the model itself is keyed by the entries read); a file that cannot be read is
    logged once per change."""
    from digest.library import load_library

    state = (profile.library, tuple(_file_state(path) for path in profile.library))
    library = _LIBRARIES.get(state)
    if library is None:
        if len(_LIBRARIES) > 1000:
            _LIBRARIES.clear()
        library = _LIBRARIES[state] = load_library(profile.library)
        for warning in library.warnings:
            log.warning("%s: %s", profile.name, warning)
    return library


def _file_state(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except OSError:
        return (-1, -1)
    return (status.st_size, status.st_mtime_ns)


def shared_vocabulary(inputs: Inputs, libraries: Sequence[Library]) -> Vocabulary:
    """The vocabulary of the background and these libraries, fitted once for all of them."""
    # The libraries are the cached objects of `cached_library`: the same while their files
    # are, so a pass over 100 profiles does not hash every library 100 times.
    chosen = tuple(sorted(libraries, key=id))  # whatever profile asks first
    quick = (inputs.background_digest, tuple(id(library) for library in chosen))
    known = _SHARED.get(quick)
    if known is not None and known[0] == chosen:
        return known[1]
    docs = {(d.key, d.title, d.abstract): d for d in inputs.background}
    for library in chosen:
        for entry in library.entries:
            if entry.keys:
                doc = Doc(entry.keys[0], entry.title, entry.abstract)
                docs.setdefault((doc.key, doc.title, doc.abstract), doc)
    ordered = [docs[k] for k in sorted(docs)]  # the same set in the same order, always
    content = json.dumps([MODEL_VERSION, [[d.key, d.title, d.abstract] for d in ordered]])
    digest = hashlib.sha256(content.encode()).hexdigest()
    vocabulary = _VOCABULARIES.get(digest)
    if vocabulary is None:
        _VOCABULARIES.clear()  # one at a time: a vocabulary holds its documents' rows
        vocabulary = _VOCABULARIES[digest] = Vocabulary(ordered)
    _SHARED.clear()
    _SHARED[quick] = (chosen, vocabulary)
    return vocabulary


def gather_inputs(
    store: Store, profile: Profile, library: Library, extra_background: Sequence[Paper] = ()
) -> Inputs:
    """The positives and negatives of a profile's model: library entries, followed authors'
    stored papers and liked papers against disliked papers and the background (a stable
    sample of stored papers, plus `extra_background`, e.g. the listing `digest match --input`
    reads)."""
    verdicts = store.feedback(profile.name)
    liked = {f.paper_key for f in verdicts if f.action == "like"}
    disliked = {f.paper_key for f in verdicts if f.action == "dislike"}
    positives: dict[str, Doc] = {}
    known: set[str] = set()
    for entry in library.entries:
        entry_keys = entry.keys
        if entry_keys and entry_keys[0] not in positives:
            positives[entry_keys[0]] = Doc(entry_keys[0], entry.title, entry.abstract)
            known.update(entry_keys)
    for paper in _followed_papers(store, profile):
        if not known.intersection(paper.identity_keys):
            positives[paper.key] = doc_of(paper)
        known.update((paper.key, *paper.identity_keys))
    negatives: dict[str, Doc] = {}
    judged: set[str] = set()
    for verdict_keys, into in ((liked, positives), (disliked, negatives)):
        for key in sorted(verdict_keys):
            found = store.get_paper(key)
            if found is not None:
                into[found.key] = doc_of(found)
                known.update((key, found.key, *found.identity_keys))
                judged.add(found.key)
            else:
                known.add(key)
    digest, docs = background(store, extra_background)
    for doc in docs:
        if doc.key not in known and doc.key not in positives:
            negatives.setdefault(doc.key, doc)
    chosen = tuple(list(positives.values())[:POSITIVES_LIMIT])
    against = tuple(sorted(negatives.values(), key=lambda d: d.key))
    content = [
        MODEL_VERSION,
        FEEDBACK_WEIGHT,
        digest,
        sorted(judged),
        [[d.key, d.title, d.abstract] for d in chosen],
        [d.key for d in against],
    ]
    inputs_digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()
    return Inputs(chosen, against, frozenset(known), inputs_digest, frozenset(judged), digest, docs)


def profile_model(
    store: Store, profile: Profile, inputs: Inputs, now: datetime, vocabulary: Vocabulary
) -> Model | None:
    """The profile's model for these inputs: the kept one when they did not change, else
    trained now and kept. None when there is too little to learn from."""
    if len(inputs.positives) < _MIN_POSITIVES or len(inputs.negatives) < _MIN_NEGATIVES:
        return None
    key = f"{inputs.digest}:{vocabulary.digest}"  # the inputs and the vocabulary
    saved = store.saved_model(profile.name)
    if saved is not None and saved[0] == key:
        model = model_from_bytes(saved[1], vocabulary)
        if model is not None:
            return model
    model = train(inputs.positives, inputs.negatives, inputs.judged, vocabulary)
    try:
        store.save_model(profile.name, key, model_bytes(model), now)
    except StoreError as exc:  # a read-only store (preview): use it for this pass only
        log.info("%s: suggestion model not kept: %s", profile.name, exc)
    return model


def suggest(
    store: Store,
    profile: Profile,
    candidates: Iterable[Paper],
    picked: Iterable[str],
    now: datetime,
    *,
    extra_background: Sequence[Paper] = (),
    circle: Sequence[Profile] = (),
) -> tuple[Match, ...]:
    """At most `profile.suggestions` of `candidates` that no rule picked (`picked`: their
    keys), like the reader's papers, best first; () for a profile without a library.

    The TF-IDF vocabulary is shared by `profile` and the `circle` of other profiles of the
    instance: fitted once on the background and every one of their libraries (a library's
    own words matter: fitted on the background alone, recall@20 on the leave-out evaluation
    falls from 0.78 to 0.57), so each paper is vectorised once for all of them.
    """
    if not profile.library or profile.suggestions <= 0:
        return ()
    library = cached_library(profile)
    inputs = gather_inputs(store, profile, library, extra_background)
    libraries = [cached_library(p) for p in (profile, *circle) if p.library]
    vocabulary = shared_vocabulary(inputs, libraries)
    model = profile_model(store, profile, inputs, now, vocabulary)
    if model is None:
        return ()
    skip = set(inputs.known) | set(picked)
    pool = [p for p in candidates if eligible(p, profile, skip)]
    return rank_suggestions(model, pool, profile.suggestions)
