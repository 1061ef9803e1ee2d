"""Suggestions: papers like the ones a reader keeps, that no rule picked (DESIGN.md).

Per profile, a linear classifier over TF-IDF of title and abstract (read the way the matcher
reads text) learns the reader's positives (library entries, followed authors' stored papers,
liked papers) against negatives (disliked papers and a stable sample of stored papers). The
trained model is kept in the store as plain arrays (no pickle: a database file may come from
anywhere) with a hash of its inputs, and retrained only when they changed. Everything is
deterministic (fixed seeds, sorted inputs). scikit-learn is imported only here, and only for a
profile with a library.

The modules, in the order a pass meets them:

1. `vectors`: each field read once into word ids; the TF-IDF `Vocabulary` of the background
   and every library of the instance, fitted once a pass and shared by every profile.
2. `model`: training (`train`), keeping (`model_bytes`), scoring and explaining
   (`rank_suggestions`).
3. here: a profile's inputs (`gather_inputs`) and one pass's `Suggester`, which reads what the
   profiles share once and keeps the models it trained in one transaction.

Each suggestion gets one reason of kind "similar": `term` the title of the closest positive
(cosine on TF-IDF), `field` the field whose words weigh most in its score, `text` the top
weighted terms.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from digest.errors import StoreError
from digest.memo import pure_memo
from digest.models import Feedback, Match, Paper, Profile
from digest.suggest.memory import LoadedLibrary, SuggestMemory
from digest.suggest.model import (
    FEEDBACK_WEIGHT,
    Model,
    doc_of,
    fit,
    model_bytes,
    model_from_bytes,
    rank_suggestions,
    train,
    training_set,
)
from digest.suggest.vectors import MODEL_VERSION, Doc, Vocabulary

if TYPE_CHECKING:
    from digest.library import Library
    from digest.match import Matcher
    from digest.store import Store

__all__ = [
    "Doc",
    "Model",
    "Suggester",
    "Vocabulary",
    "doc_of",
    "eligible_among",
    "gather_inputs",
    "model_bytes",
    "model_from_bytes",
    "rank_suggestions",
    "suggest",
    "train",
]

log = logging.getLogger(__name__)

POSITIVES_LIMIT = 20_000
_MIN_POSITIVES = 1
_MIN_NEGATIVES = 5


@pure_memo(maxsize=256)
def _exclude_matcher(exclude: tuple[str, ...]) -> Matcher:
    from digest.match import Matcher

    return Matcher([Profile("exclude", keywords=exclude)])


def eligible_among(candidates: Iterable[Paper], profile: Profile, skip: set[str]) -> list[Paper]:
    """The `candidates` a suggestion may be, in order: not known to the reader (`skip`:
    library, liked, disliked, picked by a rule), in the profile's categories, without an
    excluded term (the profile's rules worked out once)."""
    from digest.match import passes_categories

    wanted = _wanted(profile.categories)
    excluded = _exclude_matcher(profile.exclude) if profile.exclude else None
    return [
        paper
        for paper in candidates
        if paper.key not in skip
        and skip.isdisjoint(paper.identity_keys)
        and (not wanted or passes_categories(paper, wanted))
        and (excluded is None or not excluded.match(paper))
    ]


@pure_memo(maxsize=256)
def _wanted(categories: tuple[str, ...]) -> frozenset[str]:
    return frozenset(c.strip().lower() for c in categories if c.strip())


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


def _followed_papers(store: Store, profile: Profile, extra: Sequence[Paper] = ()) -> list[Paper]:
    """The followed authors' papers: stored, and among `extra` (a listing read beside the
    store, whose papers count as if stored), by key."""
    from digest.match import Matcher

    if not profile.authors:
        return []
    matcher = Matcher([Profile(profile.name, authors=profile.authors)])
    seen: dict[str, Paper] = {}
    for paper in itertools.chain(_by_last_names(store, profile), extra):
        if paper.key not in seen and matcher.match(paper):
            seen[paper.key] = paper
    return sorted(seen.values(), key=lambda p: p.key)


def _by_last_names(store: Store, profile: Profile) -> Iterator[Paper]:
    """The stored papers with an author of the same last name as a followed author's name."""
    for author in profile.authors:
        for name in author.names:
            words = name.split()
            yield from store.papers_by_last_name(words[-1] if words else "")


def gather_inputs(
    store: Store,
    profile: Profile,
    library: Library,
    background: tuple[str, tuple[Doc, ...]],
    extra_background: Sequence[Paper] = (),
) -> Inputs:
    """The positives and negatives of a profile's model: library entries, followed authors'
    stored papers and liked papers against disliked papers and the `background` (its digest
    and documents: a stable sample of stored papers, plus `extra_background`, e.g. the listing
    `digest match --input` reads, whose papers also count as stored)."""
    gathered = _Gathered()
    gathered.add_library(library)
    for paper in _followed_papers(store, profile, extra_background):
        gathered.add_followed(paper)
    gathered.add_verdicts(store, store.feedback(profile.name))
    gathered.add_background(background[1])
    return gathered.inputs(background)


@dataclass
class _Gathered:
    """A profile's model inputs as they are gathered, in the order `gather_inputs` adds them
    (a paper already known from an earlier step is not added again)."""

    positives: dict[str, Doc] = field(default_factory=dict)
    negatives: dict[str, Doc] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    judged: set[str] = field(default_factory=set)

    def add_library(self, library: Library) -> None:
        """Each library entry with a key, once, as a positive."""
        for entry in library.entries:
            entry_keys = entry.keys
            if entry_keys and entry_keys[0] not in self.positives:
                self.positives[entry_keys[0]] = Doc(entry_keys[0], entry.title, entry.abstract)
                self.known.update(entry_keys)

    def add_followed(self, paper: Paper) -> None:
        """A followed author's paper, as a positive unless the library already has it."""
        if not self.known.intersection(paper.identity_keys):
            self.positives[paper.key] = doc_of(paper)
        self.known.update((paper.key, *paper.identity_keys))

    def add_verdicts(self, store: Store, verdicts: Iterable[Feedback]) -> None:
        """Liked papers as positives, disliked ones as negatives (those still stored)."""
        liked = {f.paper_key for f in verdicts if f.action == "like"}
        disliked = {f.paper_key for f in verdicts if f.action == "dislike"}
        for keys, into in ((liked, self.positives), (disliked, self.negatives)):
            for key in sorted(keys):
                self._add_judged(store, key, into)

    def _add_judged(self, store: Store, key: str, into: dict[str, Doc]) -> None:
        found = store.get_paper(key)
        if found is None:
            self.known.add(key)
            return
        into[found.key] = doc_of(found)
        self.known.update((key, found.key, *found.identity_keys))
        self.judged.add(found.key)

    def add_background(self, docs: Iterable[Doc]) -> None:
        """The background's papers the reader does not know, as negatives."""
        for doc in docs:
            if doc.key not in self.known and doc.key not in self.positives:
                self.negatives.setdefault(doc.key, doc)

    def inputs(self, background: tuple[str, tuple[Doc, ...]]) -> Inputs:
        """The gathered inputs, with the hash of everything a model learns from."""
        chosen = tuple(list(self.positives.values())[:POSITIVES_LIMIT])
        against = tuple(sorted(self.negatives.values(), key=lambda d: d.key))
        content = [
            MODEL_VERSION,
            FEEDBACK_WEIGHT,
            background[0],
            sorted(self.judged),
            [[d.key, d.title, d.abstract] for d in chosen],
            [d.key for d in against],
        ]
        digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()
        return Inputs(
            chosen,
            against,
            frozenset(self.known),
            digest,
            frozenset(self.judged),
            background[0],
            background[1],
        )


class Suggester:
    """The suggestions of one planning pass: what every profile of the instance shares (the
    `circle`'s libraries, the background, the TF-IDF vocabulary) is read once, and the models
    trained are kept together by `keep`, in one transaction (one each was most of a profile's
    cost once training was fast).

    `extra_background`: papers the models learn against besides the stored sample (the
    listing `digest match --input` reads, so a fresh database works).
    """

    def __init__(
        self,
        store: Store,
        now: datetime,
        circle: Sequence[Profile] = (),
        extra_background: Sequence[Paper] = (),
        *,
        memory: SuggestMemory | None = None,
    ) -> None:
        self.store = store
        self.now = now
        self.circle = tuple(circle)
        self.extra_background = tuple(extra_background)
        # What passes share (`digest.plan.memory`); a pass of its own without one.
        self.memory = memory if memory is not None else SuggestMemory()
        self._circle_libraries: list[LoadedLibrary] | None = None
        self._trained: dict[str, tuple[str, Model]] = {}  # by profile: its key and model
        self._loaded: dict[str, tuple[str, Model]] = {}  # kept models read back, by profile
        self._inputs: dict[str, tuple[Inputs, Vocabulary]] = {}  # by profile, from `prepare`

    def prepare(self, profiles: Sequence[Profile]) -> None:
        """Read the inputs of `profiles` and train the models they need now, one after the
        other, before any is ranked; `suggest` then finds them ready.

        Not two at a time: liblinear frees the GIL, so two threads would be faster, but its
        random permutations come from one generator for the whole process, so two fits at
        once made different models from the same inputs (a test caught it on a fresh
        clone)."""
        for profile in profiles:
            if not profile.library or profile.suggestions <= 0:
                continue
            inputs, vocabulary = self._inputs[profile.name] = self._read(profile)
            key, model = self._kept(profile, inputs, vocabulary)
            if key and model is None:
                data = training_set(vocabulary, inputs.positives, inputs.negatives, inputs.judged)
                self._trained[profile.name] = (key, fit(data))

    def _read(self, profile: Profile) -> tuple[Inputs, Vocabulary]:
        """The profile's inputs and the pass's vocabulary."""
        own = self.memory.library(profile)
        background = self.memory.background(self.store, self.extra_background)
        inputs = gather_inputs(self.store, profile, own.library, background, self.extra_background)
        if self._circle_libraries is None:
            self._circle_libraries = [self.memory.library(p) for p in self.circle if p.library]
        return inputs, self.memory.vocabulary(background, [own, *self._circle_libraries])

    def suggest(
        self, profile: Profile, candidates: Iterable[Paper], picked: Iterable[str]
    ) -> tuple[Match, ...]:
        """At most `profile.suggestions` of `candidates` that no rule picked (`picked`: their
        keys), like the reader's papers, best first; () for a profile without a library.

        The TF-IDF vocabulary is shared by `profile` and the circle: fitted once on the
        background and every one of their libraries (a library's own words matter: fitted on
        the background alone, recall@20 on the leave-out evaluation falls from 0.78 to 0.57),
        so each paper is vectorised once for all of them.
        """
        if not profile.library or profile.suggestions <= 0:
            return ()
        prepared = self._inputs.pop(profile.name, None)
        inputs, vocabulary = prepared if prepared is not None else self._read(profile)
        model = self._model(profile, inputs, vocabulary)
        if model is None:
            return ()
        skip = set(inputs.known) | set(picked)
        pool = eligible_among(candidates, profile, skip)
        return rank_suggestions(model, pool, profile.suggestions)

    def _model(self, profile: Profile, inputs: Inputs, vocabulary: Vocabulary) -> Model | None:
        """The profile's model for these inputs: the kept one when they did not change, else
        trained now (and kept by `keep`). None when there is too little to learn from."""
        key, model = self._kept(profile, inputs, vocabulary)
        if not key or model is not None:
            return model
        model = train(inputs.positives, inputs.negatives, inputs.judged, vocabulary)
        self._trained[profile.name] = (key, model)
        return model

    def _kept(
        self, profile: Profile, inputs: Inputs, vocabulary: Vocabulary
    ) -> tuple[str, Model | None]:
        """The key the profile's model has for these inputs ("" when there is too little to
        learn from) and the model trained or kept for it, if any."""
        if len(inputs.positives) < _MIN_POSITIVES or len(inputs.negatives) < _MIN_NEGATIVES:
            return "", None
        key = f"{inputs.digest}:{vocabulary.digest}"  # the inputs and the vocabulary
        for ready in (self._trained, self._loaded):  # `prepare` asked first: read once
            known = ready.get(profile.name)
            if known is not None and known[0] == key:
                return key, known[1]
        saved = self.store.saved_model(profile.name)
        model = model_from_bytes(saved[1], vocabulary) if saved and saved[0] == key else None
        if model is not None:
            self._loaded[profile.name] = (key, model)
        return key, model

    def keep(self) -> None:
        """Keep the models trained in this pass, in one transaction (a read-only store, as
        in a preview: they are used for this pass only)."""
        if not self._trained:
            return
        # One at a time, so the peak holds one model's bytes, not every model's.
        models = ((name, key, model_bytes(m)) for name, (key, m) in self._trained.items())
        try:
            self.store.save_models(models, self.now)
        except StoreError as exc:
            log.info("suggestion models not kept: %s", exc)
        self._trained.clear()


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
    """One profile's suggestions (`Suggester.suggest`), its model kept at once."""
    suggester = Suggester(store, now, circle, extra_background)
    found = suggester.suggest(profile, candidates, picked)
    suggester.keep()
    return found
