"""TF-IDF rows of title and abstract, read the way the matcher reads them.

The recipe is arxiv-sanity-lite's (unigrams and bigrams, English stop words left out, sublinear
tf, scikit-learn's smooth idf, L2-normalised rows), with the title counted twice (it says most
in fewest words). Worked example: the title ``Forgetting in Continual Learning`` reads
``forgetting continual learning`` (``in`` is a stop word), so its terms are those three words
and the pairs ``forgetting continual`` and ``continual learning``, each counted twice.

How it is fast (each step measured on 3,000 generated papers, this machine): a field is read
once a process into the ids of its terms (`field_ids`, through one process-wide table of
terms, `TermTable`), and everything after that is numpy over whole arrays: which terms a
corpus keeps, each document's counts, tf-idf and the norms. scikit-learn's TfidfVectorizer
runs its analyser and its counting loop in Python per document and per n-gram (1.8 s to fit
3,000 documents); a first version here with a `Counter` per document and a vocabulary lookup
per (document, term) took 1.2 s, bound by dictionary lookups; this takes 0.3 s, most of it the
reading itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import count, pairwise
from typing import Any

MODEL_VERSION = 2  # part of every model's hash: a new recipe retrains every model
MAX_DF = 0.5  # a term in more than this share of the corpus says nothing
# A term must be in at least MIN_DF documents of a corpus of MIN_DF_CORPUS or more (a term in a
# single document of thousands is a one-off pair of words or a typo; in a handful of documents
# everything is seen once). On the leave-out evaluation recall@20 was 0.814 with 1, 0.848
# with 2, 0.824 with 3 (arxiv-sanity-lite's 5, with its max_df 0.1: 0.771).
MIN_DF = 2
MIN_DF_CORPUS = 1_000
MAX_FEATURES = 50_000
TITLE_WEIGHT = 2
# The process-wide term table is emptied past this many terms (a `digest run` process lives
# for months and every day brings new pairs of words); a vocabulary then looks its terms up
# again.
TERM_TABLE_LIMIT = 1_000_000
_FIELD_CACHE = 60_000
CHUNK = 1_000  # documents whose arrays are worked on at once


@dataclass(frozen=True, slots=True)
class Doc:
    """A paper as the model reads it."""

    key: str
    title: str
    abstract: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        """What the rows of a document are kept by (a changed abstract is another document)."""
        return (self.key, self.title, self.abstract)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def field_terms(text: str) -> list[str]:
    """The terms the model reads in one field: its words as the matcher reads them (TeX as
    text, case and accents folded, possessives dropped), two letters or more, starting with a
    letter, English stop words left out; then each pair of neighbouring words kept."""
    if not text:
        return []
    stop = _stop_words()
    words = [w for w in _words(text) if w not in stop]
    return [*words, *map(" ".join, pairwise(words))]


# A word of the matcher's fast ASCII reading (`Words`: `[a-z0-9]+` pieces) that starts with a
# letter and has two characters or more.
_ASCII_WORD = re.compile(r"(?<![a-z0-9])[a-z][a-z0-9]+")


def _words(text: str) -> list[str]:
    """The words of `text` as `Words` reads them, those of two characters or more that start
    with a letter."""
    from digest.match.text import ASCII_POSSESSIVE, Words, without_tex

    if text.isascii() and without_tex(text):
        # The matcher's own fast reading, filtered in the same C-level scan: 0.36 s for the
        # words of 2,000 abstracts through `Words` and a filter in Python, 0.05 s this way.
        if "'" in text:
            text = ASCII_POSSESSIVE.sub("", text)
        return _ASCII_WORD.findall(text.lower())
    return [w for w in Words(text).norms if len(w) > 1 and w[0].isalpha()]


_GENERATIONS = count()


class TermTable:
    """Every term read in this process, numbered in the order first seen; `generation` changes
    when the table is emptied (see TERM_TABLE_LIMIT)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.generation = next(_GENERATIONS)  # unique in the process: it keys `_field_ids`

    def numbered(self, terms: Sequence[str]) -> Any:
        """The ids of `terms`, new terms numbered now (an int64 array)."""
        import numpy as np

        ids = self.ids
        new = [t for t in dict.fromkeys(terms) if t not in ids]
        if new:
            ids.update(zip(new, count(len(ids)), strict=False))
        return np.fromiter(map(ids.__getitem__, terms), dtype=np.int32, count=len(terms))

    def known(self, terms: Sequence[str]) -> Any:
        """The ids of `terms`, -1 for a term never read (nothing numbered)."""
        import numpy as np

        return np.fromiter(map(self.ids.get, terms, [-1] * len(terms)), np.int64, len(terms))

    def reset_if_full(self) -> None:
        """Empty the table when it holds more than TERM_TABLE_LIMIT terms."""
        if len(self.ids) > TERM_TABLE_LIMIT:
            self.ids = {}
            self.generation = next(_GENERATIONS)
            _field_ids.cache_clear()


TERMS = TermTable()


@lru_cache(maxsize=_FIELD_CACHE)
def _field_ids(text: str, generation: int) -> Any:
    return TERMS.numbered(field_terms(text))


def field_ids(text: str) -> Any:
    """The term ids of a field (`field_terms` numbered in `TERMS`), read once while cached."""
    return _field_ids(text, TERMS.generation)


def _doc_arrays(docs: Sequence[Doc]) -> tuple[Any, Any, Any]:
    """Every term id of `docs` in one array, with the document it belongs to and its weight."""
    import numpy as np

    parts: list[Any] = []
    for doc in docs:
        parts.append(field_ids(doc.title))
        parts.append(field_ids(doc.abstract))
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(parts)) // 2, lengths)
    weights = np.repeat(np.tile(np.array([TITLE_WEIGHT, 1], dtype=np.float32), len(docs)), lengths)
    return ids, rows, weights


def _chunks(docs: Sequence[Doc]) -> list[Sequence[Doc]]:
    """`docs` in slices of CHUNK: the arrays of a slice are a few MB, of 12,000 documents at
    once they were 300 MB."""
    return [docs[i : i + CHUNK] for i in range(0, len(docs), CHUNK)]


class Vocabulary:
    """TF-IDF fitted once on a corpus (the stored background and the libraries), shared by
    every profile of a pass: its `terms` (columns, in alphabetical order) and their `idf`. The
    rows of documents it has read are kept, in the batches they were read in, so each document
    is vectorised once however many profiles score it."""

    def __init__(self, docs: Sequence[Doc]):
        import numpy as np

        TERMS.reset_if_full()
        self._batches: list[Any] = []
        self._where: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._recent: dict[tuple[tuple[str, str, str], ...], Any] = {}
        self.terms, in_docs = _chosen_terms(docs)
        # scikit-learn's smooth idf: as if one more document held every term.
        self.idf = (np.log((1 + len(docs)) / (1 + in_docs)) + 1).astype(np.float32)
        self._columns: Any = None
        self._generation = -1
        if docs:
            self._keep(docs, self._matrix(docs))
        content = json.dumps([MODEL_VERSION, self.terms]).encode() + self.idf.tobytes()
        self.digest = hashlib.sha256(content).hexdigest()

    def _column_of(self, ids: Any) -> Any:
        """The column of each term id (-1: not in the vocabulary)."""
        import numpy as np

        if self._generation != TERMS.generation or self._columns is None:
            # After the term table was emptied, this vocabulary's terms are numbered again.
            table = TERMS.numbered(self.terms)
            self._columns = np.full(int(table.max()) + 1 if len(table) else 0, -1, np.int64)
            self._columns[table] = np.arange(len(self.terms))
            self._generation = TERMS.generation
        inside = ids < len(self._columns)
        return np.where(inside, self._columns[np.where(inside, ids, 0)], -1)

    def _matrix(self, docs: Sequence[Doc]) -> Any:
        """The TF-IDF rows of `docs`, as one CSR matrix with sorted indices."""
        import numpy as np
        from scipy.sparse import csr_matrix, vstack

        parts = [self._chunk_matrix(chunk) for chunk in _chunks(docs)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return csr_matrix((0, len(self.terms)), dtype=np.float32)
        return vstack(parts, format="csr")

    def _chunk_matrix(self, docs: Sequence[Doc]) -> Any:
        import numpy as np
        from scipy.sparse import csr_matrix

        ids, rows, weights = _doc_arrays(docs)
        columns = self._column_of(ids)
        inside = columns >= 0
        width = max(len(self.terms), 1)
        cells, where = np.unique(rows[inside] * width + columns[inside], return_inverse=True)
        counts = np.bincount(where.ravel(), weights=weights[inside], minlength=len(cells))
        cell_rows, cell_columns = cells // width, cells % width
        data = (1 + np.log(counts)) * self.idf[cell_columns]
        norms = np.sqrt(np.bincount(cell_rows, weights=data * data, minlength=len(docs)))
        norms[norms == 0] = 1.0
        bounds = np.zeros(len(docs) + 1, dtype=np.int64)
        np.cumsum(np.bincount(cell_rows, minlength=len(docs)), out=bounds[1:])
        values = (data / norms[cell_rows]).astype(np.float32)
        shape = (len(docs), len(self.terms))
        return csr_matrix((values, cell_columns.astype(np.int32), bounds), shape=shape)

    def _keep(self, docs: Sequence[Doc], matrix: Any) -> None:
        batch = len(self._batches)
        self._batches.append(matrix)
        for i, doc in enumerate(docs):
            self._where[doc.identity] = (batch, i)

    def rows(self, docs: Sequence[Doc]) -> Any:
        """The TF-IDF rows of `docs`, in order, as one CSR matrix (0 rows for none); the
        caller must not change it (it may be handed to the next caller too)."""
        import numpy as np
        from scipy.sparse import csr_matrix

        if not docs:
            return csr_matrix((0, len(self.terms)), dtype=np.float32)
        # Every profile of a pass asks for the same negatives and the same candidates: the
        # last few answers are kept (gathering 2,000 rows took 10 ms, 300 times a pass).
        asked = tuple(d.identity for d in docs)
        answer = self._recent.get(asked)
        if answer is None:
            answer = self._gathered(docs)
            if len(self._recent) >= 8:
                self._recent.pop(next(iter(self._recent)))
            self._recent[asked] = answer
        return answer

    def _gathered(self, docs: Sequence[Doc]) -> Any:
        import numpy as np
        from scipy.sparse import vstack

        missing = list({d.identity: d for d in docs if d.identity not in self._where}.values())
        if missing:
            if len(self._where) > 200_000:  # a long-running process: keep the first batch only
                del self._batches[1:]
                self._where = {k: v for k, v in self._where.items() if v[0] == 0}
                self._recent.clear()
            self._keep(missing, self._matrix(missing))
        places = [self._where[d.identity] for d in docs]
        parts, order = [], np.empty(len(docs), dtype=np.int64)
        offset = 0
        for batch in sorted({b for b, _ in places}):
            positions = [i for i, (b, _) in enumerate(places) if b == batch]
            parts.append(self._batches[batch][[places[i][1] for i in positions]])
            order[positions] = np.arange(offset, offset + len(positions))
            offset += len(positions)
        stacked = parts[0] if len(parts) == 1 else vstack(parts, format="csr")
        return stacked[order]


def _chosen_terms(docs: Sequence[Doc]) -> tuple[tuple[str, ...], Any]:
    """The terms a corpus keeps (in at most MAX_DF of its documents; the MAX_FEATURES most
    frequent, ties by term, so the choice never depends on the order terms were numbered),
    alphabetically, with how many documents hold each."""
    import numpy as np

    frequency = np.zeros(0, dtype=np.int64)
    for chunk in _chunks(docs):
        ids, rows, _ = _doc_arrays(chunk)
        if not len(ids):
            continue
        # Each (document, term) once: then a term's count is its document frequency.
        width = int(ids.max()) + 1
        found = np.bincount(_distinct(rows * width + ids) % width, minlength=width)
        if len(found) > len(frequency):
            frequency = np.concatenate([frequency, np.zeros(len(found) - len(frequency), np.int64)])
        frequency[: len(found)] += found
    least = MIN_DF if len(docs) >= MIN_DF_CORPUS else 1
    wanted = np.nonzero((frequency >= least) & (frequency <= MAX_DF * len(docs)))[0]
    names = list(TERMS.ids)  # a dict keeps insertion order: position = id
    if len(wanted) > MAX_FEATURES:
        cutoff = np.sort(frequency[wanted])[-MAX_FEATURES]
        above = wanted[frequency[wanted] > cutoff]
        tied = sorted(names[i] for i in wanted[frequency[wanted] == cutoff])
        chosen = [names[i] for i in above] + tied[: MAX_FEATURES - len(above)]
    else:
        chosen = [names[i] for i in wanted]
    chosen.sort()
    in_docs = frequency[TERMS.known(chosen)] if chosen else np.zeros(0, np.int64)
    return tuple(chosen), in_docs.astype(np.float64)


def _distinct(values: Any) -> Any:
    """The distinct values of an int64 array, sorted."""
    import numpy as np

    # By sorting: numpy 2's hash-based `np.unique` took 0.7 s on 1M ints here, this 0.06 s.
    ordered = np.sort(values)
    if not len(ordered):
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


__all__ = ["MODEL_VERSION", "TERMS", "Doc", "TermTable", "Vocabulary", "field_ids", "field_terms"]
