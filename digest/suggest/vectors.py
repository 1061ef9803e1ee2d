"""TF-IDF rows of title and abstract, read the way the matcher reads them.

The recipe is arxiv-sanity-lite's (unigrams and bigrams, English stop words left out, sublinear
tf, scikit-learn's smooth idf, L2-normalised rows), with the title counted twice (it says most
in fewest words). Worked example: the title ``Forgetting in Continual Learning`` reads
``forgetting continual learning`` (``in`` is a stop word), so its terms are those three words
and the pairs ``forgetting continual`` and ``continual learning``, each counted twice.

How it is fast (each step measured on 3,000 generated papers, this machine): a field is read
once a process into the ids of its words (`field_words`, through one process-wide table of
words, `WordTable`); a pair of words is not a string but a number made of its two word ids, so
only single words are ever looked up in a dictionary (a small, hot one). Everything after that
is numpy over whole arrays, 1,000 documents at a time: which terms a corpus keeps, each
document's counts, tf-idf and the norms. scikit-learn's TfidfVectorizer runs its analyser and
its counting loop in Python per document and per n-gram (1.8 s to fit 3,000 documents); a first
version here with a `Counter` per document and a vocabulary lookup per (document, term) took
1.2 s; numbering every term, pairs included, as a string 0.42 s of reading; this way 0.2 s.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from itertools import count, pairwise
from typing import Any, NamedTuple

from digest.memo import pure_memo

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
# The process-wide word table is emptied past this many words (a `digest run` process lives for
# months, and names, formulas and typos keep coming); a vocabulary then numbers its terms again.
TERM_TABLE_LIMIT = 1_000_000
# A word id takes WORD_BITS bits; a pair of words is the key ((first + 1) << WORD_BITS) | second,
# so keys of single words and of pairs never meet, and a key with a document's row in the low
# ROW_BITS bits still fits in 64 bits.
WORD_BITS = 24
ROW_BITS = 10
_FIELD_CACHE = 60_000
CHUNK = 1_000  # documents whose arrays are worked on at once (< 2 ** ROW_BITS)


class Doc(NamedTuple):
    """A paper as the model reads it. A tuple: the rows of a document are kept by the document
    itself (a changed abstract is another document), and hashing a tuple of three strings is
    cheap (a dataclass with an `identity` property cost 0.8 s in a day of 100 profiles)."""

    key: str
    title: str
    abstract: str = ""


@pure_memo(maxsize=1)
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
    from digest.match.text import ASCII_POSSESSIVE, Words, tex_free, without_tex

    if text.isascii():
        # The matcher's own fast readings, filtered in the same C-level scan, instead of
        # `Words` and a filter in Python (about 7x faster, bench/README.md, "Measured
        # gains"). ASCII TeX without accented letters reads, its commands dropped, as text
        # without TeX (`Words` does the same, `tex_free`): a quarter of a day's fields.
        plain = text if without_tex(text) else tex_free(text)
        if plain is not None:
            if "'" in plain:
                plain = ASCII_POSSESSIVE.sub("", plain)
            return _ASCII_WORD.findall(plain.lower())
    return [w for w in Words(text).norms if len(w) > 1 and w[0].isalpha()]


_GENERATIONS = count()


class WordTable:
    """Every word read in this process, numbered in the order first seen (`names` by id);
    `generation` changes when the table is emptied (see TERM_TABLE_LIMIT)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.generation = next(_GENERATIONS)  # unique in the process: it keys `_field_words`

    def numbered(self, words: Sequence[str]) -> Any:
        """The ids of `words`, new words numbered now (an int64 array)."""
        import numpy as np

        ids = self.ids
        found = list(map(ids.get, words))
        if None in found:
            for word in words:
                if word not in ids:
                    if len(ids) >= 1 << WORD_BITS:
                        raise OverflowError("too many words read for one table")
                    ids[word] = len(self.names)
                    self.names.append(word)
            found = list(map(ids.__getitem__, words))
        return np.array(found, dtype=np.int64)

    def keys(self, terms: Sequence[str]) -> Any:
        """The key of each term (a word, or two words and a space), its words numbered."""
        import numpy as np

        words = [term.partition(" ") for term in terms]
        firsts = self.numbered([first for first, _, _ in words])
        seconds = self.numbered([second or first for first, _, second in words])
        paired = np.array([bool(second) for _, _, second in words], dtype=bool)
        return np.where(paired, ((firsts + 1) << WORD_BITS) | seconds, firsts)

    def term(self, key: int) -> str:
        """The term a key stands for."""
        if key >> WORD_BITS:
            return f"{self.names[(key >> WORD_BITS) - 1]} {self.names[key & _WORD_MASK]}"
        return self.names[key]

    def reset_if_full(self) -> None:
        """Empty the table when it holds more than TERM_TABLE_LIMIT words."""
        if len(self.ids) > TERM_TABLE_LIMIT:
            self.ids, self.names = {}, []
            self.generation = next(_GENERATIONS)
            _field_words.cache_clear()


_WORD_MASK = (1 << WORD_BITS) - 1
WORDS = WordTable()


@pure_memo(maxsize=_FIELD_CACHE)
def _field_words(text: str, generation: int) -> Any:
    import numpy as np

    if not text:
        return np.zeros(0, dtype=np.int32)
    stop = _stop_words()
    # int32, and the pairs worked out when asked, not stored: the field cache of a lab's day
    # is a quarter of its int64 size (bench/README.md, "Measured gains").
    return WORDS.numbered([w for w in _words(text) if w not in stop]).astype(np.int32)


def field_words(text: str) -> Any:
    """The ids of a field's words (stop words left out, numbered in `WORDS`), read once while
    cached; the caller must not change the array."""
    return _field_words(text, WORDS.generation)


def _doc_arrays(docs: Sequence[Doc]) -> tuple[Any, Any, Any]:
    """Every term key of `docs` in one array, with the document (row) it belongs to and its
    weight: each field's words, then the pairs of neighbouring words within a field."""
    import numpy as np

    parts: list[Any] = []
    for doc in docs:
        parts.append(field_words(doc.title))
        parts.append(field_words(doc.abstract))
    lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    words = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    field = np.repeat(np.arange(len(parts)), lengths)
    # A pair is two neighbours of one field: not the last word of a field and the next one.
    paired = field[:-1] == field[1:]
    pairs = (((words[:-1] + 1) << WORD_BITS) | words[1:])[paired]
    keys = np.concatenate([words, pairs])
    fields = np.concatenate([field, field[:-1][paired]])
    weight = np.tile(np.array([TITLE_WEIGHT, 1], dtype=np.float32), len(docs))
    return keys, fields // 2, weight[fields]


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

        WORDS.reset_if_full()
        self._batches: list[Any] = []
        self._where: dict[Doc, tuple[int, int]] = {}
        self._recent: dict[tuple[Doc, ...], Any] = {}
        self.terms, in_docs = _chosen_terms(docs)
        # scikit-learn's smooth idf: as if one more document held every term.
        self.idf = (np.log((1 + len(docs)) / (1 + in_docs)) + 1).astype(np.float32)
        self._columns: Any = None
        self._pairs: Any = None
        self._pair_columns: Any = None
        self._generation = -1
        if docs:
            self._keep(docs, self._matrix(docs))
        content = json.dumps([MODEL_VERSION, self.terms]).encode() + self.idf.tobytes()
        self.digest = hashlib.sha256(content).hexdigest()

    def _column_of(self, keys: Any) -> Any:
        """The column of each term key (-1: not in the vocabulary): a word's by a table
        indexed by its id, a pair's by a binary search among the vocabulary's pairs (one
        search over every key took 0.17 s of the 1.25 s a 1,000-entry library costs)."""
        import numpy as np

        if self._generation != WORDS.generation or self._columns is None:
            # Once per vocabulary (and again after the word table was emptied).
            own = WORDS.keys(self.terms)
            single = own < (1 << WORD_BITS)
            self._columns = np.full(int(own[single].max()) + 1 if single.any() else 0, -1)
            self._columns[own[single]] = np.nonzero(single)[0]
            pair_columns = np.nonzero(~single)[0]
            order = np.argsort(own[pair_columns], kind="stable")
            self._pairs, self._pair_columns = own[pair_columns][order], pair_columns[order]
            self._generation = WORDS.generation
        columns = np.full(len(keys), -1, dtype=np.int64)
        single = keys < (1 << WORD_BITS)
        words = keys[single]
        inside = words < len(self._columns)
        columns[single] = np.where(inside, self._columns[np.where(inside, words, 0)], -1)
        if len(self._pairs):
            # Searched in order: with the keys sorted first, `searchsorted` reads the pairs
            # front to back (about 5x faster, sort included; bench/README.md, "Measured gains").
            pairs = keys[~single]
            order = np.argsort(pairs)
            ordered = pairs[order]
            at = np.minimum(np.searchsorted(self._pairs, ordered), len(self._pairs) - 1)
            found = np.empty(len(pairs), dtype=np.int64)
            found[order] = np.where(self._pairs[at] == ordered, self._pair_columns[at], -1)
            columns[~single] = found
        return columns

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

        keys, rows, weights = _doc_arrays(docs)
        columns = self._column_of(keys)
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
            self._where[doc] = (batch, i)

    def rows(self, docs: Sequence[Doc]) -> Any:
        """The TF-IDF rows of `docs`, in order, as one CSR matrix (0 rows for none); the
        caller must not change it (it may be handed to the next caller too)."""
        import numpy as np
        from scipy.sparse import csr_matrix

        if not docs:
            return csr_matrix((0, len(self.terms)), dtype=np.float32)
        # Every profile of a pass asks for the same negatives and the same candidates, about
        # three times each: the last few answers are kept.
        asked = tuple(docs)
        answer = self._recent.pop(asked, None)
        if answer is None:
            answer = self._gathered(docs)
            if len(self._recent) >= 8:  # the least recently asked goes
                self._recent.pop(next(iter(self._recent)))
        self._recent[asked] = answer
        return answer

    def _gathered(self, docs: Sequence[Doc]) -> Any:
        """The rows of `docs`, in order: read and kept first for those never seen."""
        missing = list(dict.fromkeys(d for d in docs if d not in self._where))
        if missing:
            if len(self._where) > 200_000:  # a long-running process: keep the first batch only
                del self._batches[1:]
                self._where = {k: v for k, v in self._where.items() if v[0] == 0}
                self._recent.clear()
            self._keep(missing, self._matrix(missing))
        return self._stacked(list(map(self._where.__getitem__, docs)))

    def _stacked(self, places: Sequence[tuple[int, int]]) -> Any:
        """The kept rows at `places` ((batch, row) each), in that order, as one CSR matrix."""
        import numpy as np
        from scipy.sparse import vstack

        parts, order = [], np.empty(len(places), dtype=np.int64)
        offset = 0
        for batch in sorted({b for b, _ in places}):
            positions = [i for i, (b, _) in enumerate(places) if b == batch]
            parts.append(self._batches[batch][[places[i][1] for i in positions]])
            order[positions] = np.arange(offset, offset + len(positions))
            offset += len(positions)
        if len(parts) == 1:  # already in order: no second copy
            return parts[0]
        return vstack(parts, format="csr")[order]


def _chosen_terms(docs: Sequence[Doc]) -> tuple[tuple[str, ...], Any]:
    """The terms a corpus keeps (in at most MAX_DF of its documents and at least MIN_DF; the
    MAX_FEATURES most frequent, ties by term, so the choice never depends on the order words
    were numbered), alphabetically, with how many documents hold each."""
    import numpy as np

    found: list[Any] = []
    for chunk in _chunks(docs):
        keys, rows, _ = _doc_arrays(chunk)
        # Each (document, term) once, then each term with the number of documents holding it.
        per_document = _distinct((keys << ROW_BITS) | rows) >> ROW_BITS
        found.append(_counted(per_document))
    if not found:
        return (), np.zeros(0)
    keys = np.concatenate([k for k, _ in found])
    counts = np.concatenate([c for _, c in found])
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    starts = _starts(keys)
    keys, frequency = keys[starts], np.add.reduceat(counts, starts) if len(keys) else counts
    least = MIN_DF if len(docs) >= MIN_DF_CORPUS else 1
    wanted = np.nonzero((frequency >= least) & (frequency <= MAX_DF * len(docs)))[0]
    if len(wanted) > MAX_FEATURES:
        cutoff = np.sort(frequency[wanted])[-MAX_FEATURES]
        above = wanted[frequency[wanted] > cutoff]
        tied = wanted[frequency[wanted] == cutoff]
        tied = tied[np.argsort(_term_names(keys[tied]), kind="stable")]
        wanted = np.concatenate([above, tied[: MAX_FEATURES - len(above)]])
    names = _term_names(keys[wanted])
    order = np.argsort(names, kind="stable")
    return tuple(names[order].tolist()), frequency[wanted][order].astype(np.float64)


def _term_names(keys: Any) -> Any:
    """The terms of term keys, as a numpy array of strings (sorts in C)."""
    import numpy as np

    names = np.array(WORDS.names, dtype=object)
    single = keys < (1 << WORD_BITS)
    out = np.empty(len(keys), dtype=object)
    out[single] = names[keys[single]]
    pairs = keys[~single]
    out[~single] = names[(pairs >> WORD_BITS) - 1] + " " + names[pairs & _WORD_MASK]
    return out.astype(str) if len(out) else np.zeros(0, dtype=str)


def _counted(values: Any) -> tuple[Any, Any]:
    """The distinct values of a sorted int64 array, and how often each occurs."""
    import numpy as np

    if not len(values):
        return values, np.zeros(0, dtype=np.int64)
    starts = _starts(values)
    return values[starts], np.diff(np.append(starts, len(values)))


def _starts(ordered: Any) -> Any:
    """Where each run of equal values starts in a sorted array."""
    import numpy as np

    if not len(ordered):
        return np.zeros(0, dtype=np.int64)
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return np.nonzero(first)[0]


def _distinct(values: Any) -> Any:
    """The distinct values of an int64 array, sorted."""
    import numpy as np

    # By sorting, not numpy 2's hash-based `np.unique` (about 10x faster on int64 keys;
    # bench/README.md, "Measured gains").
    ordered = np.sort(values)
    return ordered[_starts(ordered)]


__all__ = ["MODEL_VERSION", "WORDS", "Doc", "Vocabulary", "WordTable", "field_terms", "field_words"]
