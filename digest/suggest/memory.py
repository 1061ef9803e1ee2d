"""What suggestions share between planning passes: libraries, the background, the vocabulary.

A `SuggestMemory` belongs to one app (`digest.plan.memory.PassMemory.suggest`) and so to one
store. Each thing it keeps is keyed by what it was made from, so it is never stale:

- a profile's `library`: by its files' paths, sizes and modification times;
- the `background` sample: by the store's papers state (count, last sequence, last update) and
  the extra papers' keys and titles;
- the shared `vocabulary`: by the background's digest and the libraries' file states; the fitted
  vocabulary itself by the digest of every document it was fitted on.

Example::

    memory = SuggestMemory()
    library = memory.library(profile)              # read once while its files do not change
    digest, docs = memory.background(store)        # sampled once while the papers do not change
    vocabulary = memory.vocabulary((digest, docs), [library, *circle_libraries])
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from digest.models import Paper, Profile
from digest.suggest.model import doc_of
from digest.suggest.vectors import MODEL_VERSION, Doc, Vocabulary

if TYPE_CHECKING:
    from digest.library import Library
    from digest.store import Store

log = logging.getLogger(__name__)

BACKGROUND_SIZE = 2_000  # stored papers sampled as negatives
_BACKGROUND_SEED = "digest"  # one sample for every profile: read once a pass
_LIBRARY_LIMIT = 1000  # library states kept, then it starts afresh

# Where a profile's library files are and what they were: (paths, (size, mtime) of each).
LibraryState = tuple[tuple[Path, ...], tuple[tuple[int, int], ...]]


class LoadedLibrary(NamedTuple):
    """A profile's library as read, and the state of its files it was read at."""

    state: LibraryState
    library: Library


def library_state(profile: Profile) -> LibraryState:
    """The profile's library files and their sizes and modification times now."""
    return (profile.library, tuple(_file_state(path) for path in profile.library))


def _file_state(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except OSError:
        return (-1, -1)
    return (status.st_size, status.st_mtime_ns)


class SuggestMemory:
    """The libraries, background and vocabulary of one app's suggestions (module docstring)."""

    def __init__(self) -> None:
        self._libraries: dict[LibraryState, Library] = {}
        self._background: tuple[tuple[object, ...], tuple[str, tuple[Doc, ...]]] | None = None
        self._shared: tuple[tuple[object, ...], Vocabulary] | None = None
        self._fitted: tuple[str, Vocabulary] | None = None

    def library(self, profile: Profile) -> LoadedLibrary:
        """The profile's library and the state of its files, read again only when they
        changed; a file that cannot be read is logged once per change."""
        from digest.library import load_library

        state = library_state(profile)
        library = self._libraries.get(state)
        if library is None:
            if len(self._libraries) >= _LIBRARY_LIMIT:
                self._libraries.clear()
            library = self._libraries[state] = load_library(profile.library)
            for warning in library.warnings:
                log.warning("%s: %s", profile.name, warning)
        return LoadedLibrary(state, library)

    def background(self, store: Store, extra: Sequence[Paper] = ()) -> tuple[str, tuple[Doc, ...]]:
        """The stored papers every model learns against (a stable sample, plus `extra`), with a
        digest of their content; read once while the store's papers do not change."""
        state = (store.papers_state(), tuple((p.key, p.title) for p in extra))
        if self._background is not None and self._background[0] == state:
            return self._background[1]
        docs = {p.key: doc_of(p) for p in store.sample_papers(_BACKGROUND_SEED, BACKGROUND_SIZE)}
        for paper in extra:
            docs.setdefault(paper.key, doc_of(paper))
        ordered = tuple(sorted(docs.values(), key=lambda d: d.key))
        content = json.dumps([[d.key, d.title, d.abstract] for d in ordered])
        found = (hashlib.sha256(content.encode()).hexdigest(), ordered)
        self._background = (state, found)  # one store state at a time
        return found

    def vocabulary(
        self, background: tuple[str, tuple[Doc, ...]], libraries: Sequence[LoadedLibrary]
    ) -> Vocabulary:
        """The vocabulary of the `background` (its digest and documents) and these libraries
        (each once, whichever profile brought it), fitted once for all of them."""
        chosen = {loaded.state: loaded.library for loaded in libraries}
        quick = (background[0], tuple(sorted(chosen, key=repr)))
        if self._shared is not None and self._shared[0] == quick:
            return self._shared[1]
        docs = set(background[1])
        for library in chosen.values():
            docs.update(Doc(e.keys[0], e.title, e.abstract) for e in library.entries if e.keys)
        vocabulary = self._fit(sorted(docs))  # the same set in the same order, always
        self._shared = (quick, vocabulary)
        return vocabulary

    def _fit(self, ordered: list[Doc]) -> Vocabulary:
        """The vocabulary of these documents, fitted again only when they changed."""
        content = json.dumps([MODEL_VERSION, [[d.key, d.title, d.abstract] for d in ordered]])
        digest = hashlib.sha256(content.encode()).hexdigest()
        if self._fitted is None or self._fitted[0] != digest:
            # One at a time: a vocabulary holds its documents' rows.
            self._fitted = (digest, Vocabulary(ordered))
        return self._fitted[1]
