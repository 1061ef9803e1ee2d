"""The compile cache: compiled profiles kept in the store and loaded by a later process.

The one rule: a profile loaded from the cache is exactly the profile compiled now
(`test_a_cached_profile_equals_a_fresh_compile`), whatever it holds; an entry is used only for
the profile and code it was made by, a corrupt one is compiled again, and the table holds the
configured profiles only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.match import Matcher, compile_profile
from digest.match import compile_cache as cache_module
from digest.match.compile_cache import (
    COMPILED_FORMAT,
    cache_salt,
    compile_profiles,
    decode,
    encode,
    profile_hash,
)
from digest.match.rules import CompiledProfile
from digest.models import FollowedAuthor, Profile
from digest.plan.hits import HitKeeper, profile_terms
from digest.plan.memory import PassMemory
from digest.store import Store
from tests.test_match import index_terms, seed_papers

LIU = FollowedAuthor("C. Karen Liu", aliases=("Karen Liu", "Liu, C. K."))
IDENTIFIED = FollowedAuthor("Jane Doe", openalex="A5023888391", orcid="0000-0002-1825-0097")

PROFILES = [
    Profile("empty"),
    Profile("wildcards", keywords=("quantiz*", "diffus*", "*", "--")),
    Profile("phrases", keywords=("mixture of experts", "KV-Caches", "state space model")),
    Profile("acronyms", keywords=("LLM", "RL", "R/L", "KV cache", "KV-cache", "LLMs")),
    Profile(
        "groups",
        all_of=(("diffusion", "language model"), (), ("RL", "--"), ("policy", "policies")),
    ),
    Profile("excludes", keywords=("graph",), exclude=("survey", "medical*", "")),
    Profile("categories", keywords=("graph",), categories=("cs.LG", " CS ", "", "stat.ML")),
    Profile("by name", authors=(LIU, FollowedAuthor("Seyed-Iman Mirzadeh"), LIU)),
    Profile("by id", authors=(IDENTIFIED, FollowedAuthor("Hinton"))),
    Profile(
        "everything",
        keywords=("KV cache", "quantiz*", "analysis", "Über-Modell"),
        all_of=(("diffusion", "language model"),),
        exclude=("medical",),
        authors=(LIU, IDENTIFIED),
        categories=("cs.LG",),
    ),
]


@pytest.fixture
def store() -> Iterator[Store]:
    opened = Store.open(None)
    yield opened
    opened.close()


class Compiles:
    """How often the cache compiled a profile (the real `compile_profile`, counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = compile_profile

        def counted(profile: Profile) -> CompiledProfile:
            self.names.append(profile.name)
            return real(profile)

        monkeypatch.setattr(cache_module, "compile_profile", counted)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Compiles:
    return Compiles(monkeypatch)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_a_cached_profile_equals_a_fresh_compile(
    profile: Profile, store: Store, compiles: Compiles
) -> None:
    written = compile_profiles([profile], store, write=True)
    assert compiles.names == [profile.name]
    loaded = compile_profiles([profile], store, write=True)
    assert compiles.names == [profile.name]  # loaded, not compiled again
    fresh = compile_profile(profile)
    assert written == loaded == (fresh,)
    # What equality does not compare: the keys, the lookup tables and the readings.
    (got,) = loaded
    assert [t.key for t in got.terms()] == [t.key for t in fresh.terms()]
    assert got.keyword_positions == fresh.keyword_positions
    assert got.exclude_keys == fresh.exclude_keys and got.groups == fresh.groups
    assert got.authors == fresh.authors and got.profile is profile


@settings(max_examples=200)
@given(
    st.lists(index_terms, max_size=6),
    st.lists(st.lists(index_terms, max_size=3), max_size=3),
    st.lists(index_terms, max_size=3),
)
def test_any_profile_reads_back_as_compiled(
    keywords: list[str], groups: list[list[str]], exclude: list[str]
) -> None:
    profile = Profile(
        "me", keywords=tuple(keywords), all_of=tuple(map(tuple, groups)), exclude=tuple(exclude)
    )
    compiled = compile_profile(profile)
    assert decode(encode(compiled), profile, {}) == compiled


def test_equal_terms_are_built_once_per_load(store: Store) -> None:
    profiles = [Profile("a", keywords=("KV cache", "RL")), Profile("b", keywords=("RL",))]
    compile_profiles(profiles, store, write=True)
    a, b = compile_profiles(profiles, store)
    assert a.keywords[1] is b.keywords[0]


def test_a_profile_edited_in_its_terms_is_compiled_again_and_its_old_entry_dropped(
    store: Store, compiles: Compiles
) -> None:
    before = Profile("me", keywords=("KV cache",))
    compile_profiles([before], store, write=True)
    after = replace(before, keywords=("KV cache", "speculative decoding"))
    assert compile_profiles([after], store, write=True) == (compile_profile(after),)
    assert compiles.names == ["me", "me"]
    assert store.compiled_hashes() == {profile_hash(after)}


@pytest.mark.parametrize(
    "change",
    [
        {"keywords": ("KV caches",)},
        {"all_of": (("a", "b"),)},
        {"exclude": ("survey",)},
        {"authors": (LIU,)},
        {"authors": (replace(IDENTIFIED, orcid=""),)},
        {"categories": ("cs.CL",)},
    ],
)
def test_every_matching_field_is_in_the_hash(change: dict[str, Any]) -> None:
    profile = Profile("me", keywords=("KV cache",), authors=(IDENTIFIED,))
    assert profile_hash(replace(profile, **change)) != profile_hash(profile)


def test_a_profile_edited_elsewhere_keeps_its_entry(store: Store, compiles: Compiles) -> None:
    before = Profile("me", keywords=("KV cache",), emails=("a@example.org",))
    compile_profiles([before], store, write=True)
    after = replace(before, name="renamed", emails=("b@example.org",), max_items=5)
    (loaded,) = compile_profiles([after], store, write=True)
    assert compiles.names == ["me"] and loaded.profile is after
    assert loaded == compile_profile(after)


@pytest.fixture
def bumped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    cache_salt.cache_clear()
    monkeypatch.setattr(cache_module, "COMPILED_FORMAT", COMPILED_FORMAT + 1)
    yield
    monkeypatch.undo()
    cache_salt.cache_clear()


def test_the_salt_names_the_format_and_the_libraries() -> None:
    from importlib import metadata

    from digest import __version__

    salt = cache_salt().split("\x1f")
    assert salt == [str(COMPILED_FORMAT), __version__, metadata.version("lemminflect")]
    profile = Profile("me", keywords=("KV cache",))
    assert profile_hash(profile, "another version") != profile_hash(profile)


def test_a_format_bump_compiles_everything_again(
    store: Store, compiles: Compiles, request: pytest.FixtureRequest
) -> None:
    profiles = PROFILES[:3]
    compile_profiles(profiles, store, write=True)
    old = store.compiled_hashes()
    request.getfixturevalue("bumped")
    assert compile_profiles(profiles, store, write=True) == tuple(map(compile_profile, profiles))
    assert compiles.names == [p.name for p in profiles] * 2
    assert store.compiled_hashes().isdisjoint(old) and len(store.compiled_hashes()) == 3


def _another_profiles_entry(blob: bytes) -> bytes:
    return encode(compile_profile(Profile("other", keywords=("graph",))))


def _valid_checksum_of(text: bytes) -> bytes:
    return cache_module._checksum(text) + text


CORRUPTIONS = {
    "a flipped byte": lambda blob: blob[:40] + bytes([blob[40] ^ 1]) + blob[41:],
    "truncated": lambda blob: blob[: len(blob) // 2],
    "empty": lambda blob: b"",
    "not JSON": lambda blob: _valid_checksum_of(b"\xff\xfe not json"),
    "another shape": lambda blob: _valid_checksum_of(b"[1, 2, 3]"),
    "wrong items": lambda blob: _valid_checksum_of(b'[[[1]], [], [], [[99, "a", [], "b"]], []]'),
    "another profile's": _another_profiles_entry,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_entry_is_compiled_again_and_mended(
    corrupt: Any, store: Store, compiles: Compiles
) -> None:
    profile = PROFILES[-1]
    compile_profiles([profile], store, write=True)
    key = profile_hash(profile)
    store.save_compiled([(key, corrupt(store.compiled_blobs([key])[key]))])
    assert compile_profiles([profile], store, write=True) == (compile_profile(profile),)
    assert compiles.names == [profile.name] * 2
    assert decode(store.compiled_blobs([key])[key], profile, {}) == compile_profile(profile)


def test_the_cache_holds_the_configured_profiles_only(store: Store) -> None:
    compile_profiles(PROFILES, store, write=True)
    # Two profiles with the same terms share their entry.
    twin = replace(PROFILES[3], name="twin")
    assert len(store.compiled_hashes()) == len(PROFILES)
    compile_profiles([PROFILES[3], twin, PROFILES[4]], store, write=True)
    assert store.compiled_hashes() == {profile_hash(PROFILES[3]), profile_hash(PROFILES[4])}
    compile_profiles([PROFILES[0]], store)  # not a writer: nothing pruned, nothing stored
    assert len(store.compiled_hashes()) == 2


def test_a_read_only_process_reads_the_cache_and_writes_nothing(
    tmp_path: Path, compiles: Compiles
) -> None:
    path = tmp_path / "digest.sqlite"
    writer = Store.open(path)
    compile_profiles(PROFILES[:2], writer, write=True)
    writer.close()
    reader = Store.open(path, read_only=True)
    got = compile_profiles(PROFILES[1:3], reader, write=True)
    reader.close()
    assert got == tuple(map(compile_profile, PROFILES[1:3]))
    assert compiles.names == ["empty", "wildcards", "phrases"]  # "wildcards" was loaded
    with sqlite3.connect(path) as conn:
        rows = {row[0] for row in conn.execute("SELECT hash FROM compiled_profiles")}
    assert rows == {profile_hash(p) for p in PROFILES[:2]}


def test_an_app_keeps_its_profiles_compiled_in_its_store(
    tmp_path: Path, compiles: Compiles
) -> None:
    path = tmp_path / "digest.sqlite"
    store = Store.open(path)
    first = PassMemory(PROFILES, store)
    assert store.compiled_hashes() == {profile_hash(p) for p in PROFILES}
    store.close()
    store = Store.open(path)
    again = PassMemory(PROFILES, store)  # a later process: nothing compiled
    store.close()
    assert compiles.names == [p.name for p in PROFILES]
    assert again.compiled == first.compiled == tuple(map(compile_profile, PROFILES))
    assert again.hits.terms == profile_terms(PROFILES)
    assert again.verdicts.matcher.compiled == again.compiled


def test_a_matcher_of_cached_profiles_matches_as_one_compiled_now(store: Store) -> None:
    papers = seed_papers()
    compile_profiles(PROFILES, store, write=True)
    cached = Matcher(PROFILES, compile_profiles(PROFILES, store))
    fresh = Matcher(PROFILES)
    assert [cached.match(p) for p in papers] == [fresh.match(p) for p in papers]
    assert HitKeeper(PROFILES, cached.compiled).terms == HitKeeper(PROFILES).terms


def test_a_matcher_refuses_compiled_profiles_of_other_profiles() -> None:
    with pytest.raises(ValueError, match="other profiles"):
        Matcher(PROFILES[:2], [compile_profile(PROFILES[1]), compile_profile(PROFILES[0])])


def test_a_memory_that_does_not_keep_loads_and_writes_nothing(
    store: Store, compiles: Compiles
) -> None:
    PassMemory(PROFILES[:1], store)
    memory = PassMemory(PROFILES[:2], store, keep=False)
    assert compiles.names == ["empty", "wildcards"]  # the first loaded, the second compiled
    assert memory.compiled == tuple(map(compile_profile, PROFILES[:2]))
    assert store.compiled_hashes() == {profile_hash(PROFILES[0])}


def _digest(tmp_path: Path, *args: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[profiles]]\nname = "me"\nkeywords = ["hallucination", "KV cache"]\n')
    env = {**os.environ, "DIGEST_STORE__PATH": str(tmp_path / "digest.sqlite")}
    command = [sys.executable, "-m", "digest", "--config", str(config), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr


def test_digest_match_keeps_compiled_profiles_and_a_listing_match_does_not(
    tmp_path: Path,
) -> None:
    listing = tmp_path / "listing.jsonl"
    listing.write_text(json.dumps({"id": "x1", "title": "KV cache", "source": "t"}) + "\n")
    _digest(tmp_path, "match", "--input", str(listing))
    with sqlite3.connect(tmp_path / "digest.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM compiled_profiles").fetchone()[0] == 0
    _digest(tmp_path, "match")  # the next digests: a command that writes the store
    profile = Profile("me", keywords=("hallucination", "KV cache"))
    with sqlite3.connect(tmp_path / "digest.sqlite") as conn:
        rows = [row[0] for row in conn.execute("SELECT hash FROM compiled_profiles")]
    assert rows == [profile_hash(profile)]
