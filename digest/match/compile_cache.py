"""Compiled profiles kept across processes: a cron `digest send` with unchanged profiles loads
what the last run compiled instead of compiling it again.

`compile_profile` folds every keyword (`terms.compile_term`) and reads every followed name
(`authors.followed_names`): most of what a new process spends before it can match. Its result
depends only on the profile's matching fields (keywords, `all_of`, `exclude`, authors,
categories) and on this code, so it is stored in the database (`compiled_profiles`, one row per
distinct profile) keyed by `profile_hash`: those fields as JSON, hashed with `COMPILED_FORMAT`,
digest's version and lemminflect's, so a change of the compiled format, of the code or of the
dictionary never reuses an entry. A profile whose name, schedule or recipients change keeps its
entry; one whose keywords change gets a new one.

An entry is plain JSON of the compiled parts, never pickle: each term as written with its
folded words (the rest of a `Term` follows from them), each followed name's reading with the
author's place in the profile, the keyword positions. Loading builds each distinct term once
per process (1,000 profiles drawing on one vocabulary share most of theirs). An entry starts
with a checksum of its JSON, and what it decodes to must name the profile's own keywords and
authors; anything else (a flipped byte, an entry of another format) is compiled again, never an
error. A database that cannot be read is the store's fault like any other (`StoreError`: a
damaged file stops the command with one line, `digest doctor` says how to recover).

Only a writer (`write`: a process that opened the store for writing) stores what it compiled,
and it prunes: the entries of profiles no longer configured are dropped in the same
transaction, so the table holds one row per distinct configured profile (bounded by the
config: 4.5 MB for bench's 1,000 day profiles). A read-only process (`digest preview`,
`digest match --input`) reads the cache and writes nothing.

Worked example: 1,000 configured profiles, one edited since the last run. `compile_profiles`
hashes all 1,000, reads the 1,000 rows it finds, loads 999 and compiles the edited one; a
writer then stores its entry and drops the one its old version had. On bench's day profiles
(`python -m bench.compile_cache`; bench/README.md, "Compiling is cached") a new process
compiles them in 0.67-0.97 s of CPU and loads them in 0.53-0.73 s: loading is bound by making
the 53k `Term`s (about 2.6 µs each) and 26k `Name`s that matching holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any, Protocol

from digest.match.authors import Name
from digest.match.matcher import collection_paused
from digest.match.rules import CompiledProfile, assemble_profile, compile_profile
from digest.match.terms import Term
from digest.memo import pure_memo
from digest.models import FollowedAuthor, Profile

log = logging.getLogger(__name__)

# The compiled format's version: bump it whenever what `compile_profile` makes, or how it is
# encoded here, changes (every stored entry is then compiled again, and pruned).
COMPILED_FORMAT = 1

# What a corrupt or foreign entry raises while it is decoded and checked.
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)
_CHECK_BYTES = 16


class CompiledRows(Protocol):
    """Where compiled profiles are kept (`digest.store.compiled_rows.CompiledStore`)."""

    read_only: bool

    def compiled_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """The stored entries among `hashes`, by hash."""
        ...

    def compiled_hashes(self) -> set[str]:
        """Every stored entry's hash."""
        ...

    def save_compiled(self, rows: Iterable[tuple[str, bytes]], stale: Iterable[str] = ()) -> None:
        """Store entries and drop the `stale` ones, in one transaction."""
        ...


@pure_memo(maxsize=1)
def cache_salt() -> str:
    """What every entry's hash includes besides the profile: the compiled format's version,
    digest's and lemminflect's (read from its metadata: importing it loads its dictionary)."""
    from importlib import metadata

    from digest import __version__

    try:
        lemminflect = metadata.version("lemminflect")
    except metadata.PackageNotFoundError:
        lemminflect = ""
    return f"{COMPILED_FORMAT}\x1f{__version__}\x1f{lemminflect}"


def profile_hash(profile: Profile, salt: str | None = None) -> str:
    """The hash an entry is kept under: the profile's matching fields (all `compile_profile`
    reads), as JSON, with `cache_salt`."""
    fields = [
        cache_salt() if salt is None else salt,
        profile.keywords,
        profile.all_of,
        profile.exclude,
        [[a.name, a.aliases, a.openalex, a.orcid] for a in profile.authors],
        profile.categories,
    ]
    # ASCII JSON: a lone surrogate from a config file still hashes.
    text = json.dumps(fields, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def encode(compiled: CompiledProfile) -> bytes:
    """An entry: a checksum, then JSON of the compiled parts (see the module docstring)."""
    profile = compiled.profile
    places = {author: n for n, author in reversed(list(enumerate(profile.authors)))}
    parts = [
        [_term_item(t) for t in compiled.keywords],
        [[_term_item(t) for t in group] for group in compiled.all_of],
        [_term_item(t) for t in compiled.exclude],
        [[places[a], n.first, n.middles, n.last] for a, n in compiled.authors],
        list(compiled.keyword_positions.values()),
    ]
    text = json.dumps(parts, separators=(",", ":")).encode()
    return _checksum(text) + text


def _term_item(term: Term) -> list[Any]:
    """A term as an entry keeps it: as written, whether a prefix, its folded words."""
    return [term.raw, term.prefix, term.parts]


def _checksum(text: bytes) -> bytes:
    return hashlib.blake2b(text, digest_size=_CHECK_BYTES).digest()


def decode(blob: bytes, profile: Profile, known: dict[str, Term]) -> CompiledProfile:
    """The compiled profile an entry holds, for `profile`; each term looked up in `known` by
    the keyword as written (and added to it), so equal terms are built once. ValueError (or
    another of `_UNREADABLE`) when the entry is corrupt or does not fit the profile."""
    text = blob[_CHECK_BYTES:]
    if _checksum(text) != blob[:_CHECK_BYTES]:
        raise ValueError("checksum")
    keyword_items, group_items, exclude_items, name_items, position_lists = json.loads(text)
    keywords = _terms(keyword_items, known)
    all_of = tuple(_terms(items, known) for items in group_items)
    exclude = _terms(exclude_items, known)
    _require(profile, keywords, all_of, exclude)
    authors = tuple(_followed(profile.authors, item) for item in name_items)
    positions = {keywords[found[0]].key: tuple(found) for found in position_lists}
    return assemble_profile(profile, keywords, all_of, exclude, authors, positions)


def _terms(items: Sequence[Sequence[Any]], known: dict[str, Term]) -> tuple[Term, ...]:
    """The terms of an entry's items, each distinct one built once (`known`): the term
    `compile_term(raw)` makes, from its folded words. Most of a load's time, so one loop with
    no call per term: loading bench's 1,000 day profiles took 0.46-0.53 s with a helper called
    per term, 0.31-0.39 s without (one process, December 2026)."""
    terms = []
    for raw, prefix, parts in items:
        term = known.get(raw)
        if term is None:
            words = tuple(parts)
            boundaries = tuple(accumulate(map(len, words[:-1])))
            term = known[raw] = Term(raw, "".join(words), len(words), prefix, boundaries, words)
        terms.append(term)
    return tuple(terms)


def _require(
    profile: Profile,
    keywords: tuple[Term, ...],
    all_of: tuple[tuple[Term, ...], ...],
    exclude: tuple[Term, ...],
) -> None:
    """ValueError unless the terms are the profile's own, as written, in order."""
    groups = tuple(tuple(t.raw for t in group) for group in all_of)
    if (
        tuple(t.raw for t in keywords) != profile.keywords
        or groups != tuple(group for group in profile.all_of if group)
        or tuple(t.raw for t in exclude) != profile.exclude
    ):
        raise ValueError("the entry is another profile's")


def _followed(
    authors: Sequence[FollowedAuthor], item: Sequence[Any]
) -> tuple[FollowedAuthor, Name]:
    """A followed name's reading, with its author (by place in the profile)."""
    place, first, middles, last = item
    return authors[place], Name(first, tuple(middles), last)


def compile_profiles(
    profiles: Sequence[Profile], cache: CompiledRows | None = None, *, write: bool = False
) -> tuple[CompiledProfile, ...]:
    """Every profile compiled, in order: loaded from `cache` where it holds the profile's entry,
    else compiled now. With `write` (a process that writes the store, passing every configured
    profile), what was compiled is stored and the entries of other profiles are dropped."""
    with collection_paused():  # as `Matcher` compiles: each term lives on, none forms a cycle
        if cache is None:
            return tuple(map(compile_profile, profiles))
        salt = cache_salt()
        hashes = [profile_hash(profile, salt) for profile in profiles]
        compiled, fresh = _loaded(profiles, hashes, cache.compiled_blobs(hashes))
        if write and not cache.read_only:
            _keep(cache, fresh, set(hashes))
        return compiled


def _loaded(
    profiles: Sequence[Profile], hashes: Sequence[str], stored: Mapping[str, bytes]
) -> tuple[tuple[CompiledProfile, ...], dict[str, bytes]]:
    """Each profile loaded from its entry or compiled; the entries of those compiled, by hash."""
    known: dict[str, Term] = {}
    compiled: list[CompiledProfile] = []
    fresh: dict[str, bytes] = {}
    for profile, key in zip(profiles, hashes, strict=True):
        found = _load(stored.get(key), profile, known)
        if found is None:
            found = compile_profile(profile)
            fresh[key] = encode(found)
        compiled.append(found)
    return tuple(compiled), fresh


def _load(blob: bytes | None, profile: Profile, known: dict[str, Term]) -> CompiledProfile | None:
    """The profile from its entry; None when there is none, or it is corrupt."""
    if blob is None:
        return None
    try:
        return decode(blob, profile, known)
    except _UNREADABLE:
        log.info("compiled profile %s: entry unreadable, compiled again", profile.name)
        return None


def _keep(cache: CompiledRows, fresh: Mapping[str, bytes], wanted: set[str]) -> None:
    """Store the fresh entries and drop those of profiles not among `wanted`."""
    stale = cache.compiled_hashes() - wanted
    if fresh or stale:
        cache.save_compiled(fresh.items(), stale)
