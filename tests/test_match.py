"""Matching and ranking (DESIGN.md, "The profile"): keyword and author semantics, profile rules,
ranking order, and properties of the tokenizer. Pure functions, no fixtures needed."""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.match import (
    Matcher,
    Scanner,
    Term,
    TokenSpan,
    Words,
    best_matches,
    compile_profile,
    compile_term,
    match_profiles,
    names_match,
    parse_name,
    rank,
    same_person,
    score,
    tokenize,
)
from digest.match.authors import AuthorIndex, author_keys, name_readings
from digest.match.matcher import collection_paused
from digest.match.scan import occurrences
from digest.models import FollowedAuthor, Match, Paper, Profile, Reason
from digest.sources.files import parse_listing_jsonl
from tests.reference_match import analyse, find_term, match_paper, read_field


def paper(
    title: str = "An unrelated title",
    abstract: str = "",
    authors: tuple[str, ...] = ("Ann Example",),
    **fields: object,
) -> Paper:
    base = Paper(key=f"title:{title}", title=title, abstract=abstract, authors=authors)
    return replace(base, **fields)  # type: ignore[arg-type]


def matched_texts(keyword: str, text: str) -> list[str]:
    field = read_field(text)
    return [text[start:end] for start, end in find_term(compile_term(keyword), field)]


# --- keywords -----------------------------------------------------------------------------------

KEYWORD_CASES: list[tuple[str, str, bool]] = [
    # case, accents and compatibility forms
    ("naive", "Naïve Bayes for text", True),
    ("Naïve", "a naive baseline", True),
    ("naive", "Nai\u0308ve Bayes (decomposed accent)", True),
    ("LLM", "ＬＬＭ agents", True),
    ("ＬＬＭ", "LLM agents", True),
    ("kv cache", "KV CACHE eviction", True),
    ("fine-tuning", "ﬁne-tuning with a ligature", True),
    ("naive", "naivety is not the word", False),
    # whole words only
    ("RL", "deep RL for robots", True),
    ("RL", "parsing a URL", False),
    ("RL", "the CTRL model", False),
    ("RL", "R/L is not RL spelled out", True),
    ("R/L", "RL", True),
    ("RL", "R/L and R L", False),
    ("cat", "a cat sat", True),
    ("cat", "we concatenate tensors", False),
    ("cat", "categorical data", False),
    ("LLM", "LLM-based agents", True),
    ("KV cache", "KV_cache (underscore splits words)", False),
    # spaces, hyphens, slashes and line breaks between words
    ("KV cache", "a KV cache", True),
    ("KV cache", "a KV-cache", True),
    ("KV cache", "a KV/cache", True),
    ("KV cache", "a KV\ncache", True),
    ("KV cache", "a KV \u2013 cache", True),
    ("KV-cache", "a KV cache", True),
    ("KV/cache", "a KV cache", True),
    ("KV cache", "a KVcache", True),
    ("speculative decoding", "Speculative\n  Decoding at scale", True),
    # ... but never across punctuation
    ("KV cache", "we use KV. Cache is cheap", False),
    ("KV cache", "KV, cache and more", False),
    ("KV cache", "KV; cache", False),
    ("KV cache", "KV: cache", False),
    ("KV cache", "KV.cache", False),
    ("KV cache", "KV (cache)", False),
    ("KV cache", "cache KV", False),
    # split compounds and their closed form, both directions
    ("pre-training", "large-scale pretraining", True),
    ("pre-training", "large-scale pre training", True),
    ("pretraining", "large-scale pre-training", True),
    ("pretraining", "large-scale pre training", True),
    ("pre training", "large-scale pretraining", True),
    ("pre-training", "pre. Training", False),
    ("pretraining", "training", False),
    # singular and plural, both directions
    ("cache", "two caches", True),
    ("caches", "one cache", True),
    ("policy", "learned policies", True),
    ("policies", "a learned policy", True),
    ("LLM", "open LLMs", True),
    ("LLMs", "an open LLM", True),
    ("process", "Gaussian processes", True),
    ("language model", "large language models", True),
    ("analysis", "two analyses", True),
    ("theses", "one thesis", True),
    ("axis", "both axes", True),
    ("index", "sparse indices", True),
    ("criterion", "the criteria", True),
    ("corpus", "parallel corpora", True),
    ("matrix", "low-rank matrices", True),
    ("mixture of experts", "Mixtures of Experts", True),
    ("mixture of experts", "mixture-of-expert layers", True),
    ("status", "the statu quo", False),
    ("news", "new results", False),
    ("lens", "a len", False),
    ("cache", "cached values", False),
    ("policy", "policing", False),
    ("language model", "language modeling", False),
    # possessive 's
    ("model", "the model's weights", True),
    ("model", "the model’s weights", True),
    ("model's", "the model", True),
    ("LLMs", "the LLM's output", True),
    ("model", "the modelss", False),
    # trailing * is a word prefix
    ("quantiz*", "we quantize weights", True),
    ("quantiz*", "post-training quantization", True),
    ("quantiz*", "Quantized models", True),
    ("quantiz*", "pre-quantized models", True),
    ("quantiz*", "we dequantize weights", False),
    ("quantiz*", "quantum computing", False),
    ("KV cach*", "KV caching", True),
    # LaTeX markup read as text
    ("SPECS", r"$\texttt{SPECS}$: fast drafting", True),
    ("SPECS", r"\textbf{SPECS} is fast", True),
    ("fast decoding", r"\emph{fast} decoding", True),
    ("texttt", r"$\texttt{SPECS}$", False),
    ("ωTest", "$ω$Test beats it", True),
    ("kNN", "a $k$NN baseline", True),
    ("kNN", "a $k$-NN baseline", False),  # a one-letter word joins only at a term break
    ("k NN", "the $k$ NN", True),
    # a double possessive reads alike in ASCII and in other text
    ("GPT model", "GPT's's model", True),
    ("GPT model", "Über GPT's's model", True),
    # nothing left to match
    ("*", "anything at all", False),
    ("--", "anything -- at all", False),
]


@pytest.mark.parametrize(("keyword", "text", "should_match"), KEYWORD_CASES)
def test_keyword_semantics(keyword: str, text: str, should_match: bool) -> None:
    assert bool(find_term(compile_term(keyword), read_field(text))) is should_match


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("naive", "A Naïve Bayes baseline", ["Naïve"]),
        ("LLM", "ＬＬＭs and LLMs", ["ＬＬＭs", "LLMs"]),
        ("KV cache", "The KV-cache; a KV\ncache", ["KV-cache", "KV\ncache"]),
        ("pretraining", "pre-training and pre training", ["pre-training", "pre training"]),
        ("policy", "Policies everywhere", ["Policies"]),
        ("model", "the model's weights", ["model's"]),
        ("quantiz*", "Quantization, dequantize, quantized", ["Quantization", "quantized"]),
        ("SPECS", r"$\texttt{SPECS}$ wins", ["SPECS"]),
        ("speculative decoding", "Speculative\n  Decoding", ["Speculative\n  Decoding"]),
    ],
)
def test_matched_text_is_the_original_substring(
    keyword: str, text: str, expected: list[str]
) -> None:
    assert matched_texts(keyword, text) == expected


# --- authors ------------------------------------------------------------------------------------

AUTHOR_CASES: list[tuple[str, str, bool]] = [
    ("Rishabh Tiwari", "rishabh TIWARI", True),
    ("André Martins", "Andre Martins", True),
    ("Andre Martins", "André F. T. Martins", True),
    ("R. Tiwari", "Rishabh Tiwari", True),
    ("R Tiwari", "Rishabh Tiwari", True),
    ("Tiwari, Rishabh", "Rishabh Tiwari", True),
    ("Hannah, Lauren A.", "Lauren Hannah", True),
    ("Seyed-Iman Mirzadeh", "Seyed Iman Mirzadeh", True),
    ("Mirzadeh, Seyed-Iman", "Seyed Iman Mirzadeh", True),
    ("J.-P. Sartre", "Jean-Paul Sartre", True),
    ("Lauren A. Hannah", "Lauren Hannah", True),
    ("Lauren A. Hannah", "Lauren. A Hannah", True),
    ("Lauren A. Hannah", "Lauren Alice Hannah", True),
    ("L. A. Hannah", "Lauren Hannah", True),
    ("Martin Luther King Jr.", "Martin L. King", True),
    ("O'Brien, Pat", "Pat OBrien", True),
    ("Lauren A. Hannah", "Lauren B. Hannah", False),
    ("Lauren Alice Hannah", "Lauren Amy Hannah", False),
    ("Rishabh Tiwari", "Rahul Tiwari", False),
    ("R. Tiwari", "S. Tiwari", False),
    ("Rishabh Tiwari", "Rishabh Sharma", False),
    ("Rishabh Tiwari", "Tiwari Rishabh", False),
    ("Iman Mirzadeh", "Seyed Iman Mirzadeh", False),
    ("Tiwari", "Rishabh Tiwari", False),
    ("Mausam", "Mausam", True),
    # an initial with a full middle name: a different full first name is someone else
    ("C. Karen Liu", "Chengjie Liu", False),
    ("C. Karen Liu", "Chunhua Liu", False),
    ("C. Karen Liu", "Karen Liu", False),
    ("C. Karen Liu", "C. Karen Liu", True),
    ("C. Karen Liu", "C. K. Liu", True),
    ("C. Karen Liu", "C. Liu", True),
    ("C. Karen Liu", "Chris Karen Liu", True),
]


@pytest.mark.parametrize(("a", "b", "same"), AUTHOR_CASES)
def test_author_names(a: str, b: str, same: bool) -> None:
    name_a, name_b = parse_name(a), parse_name(b)
    assert name_a is not None and name_b is not None
    assert names_match(name_a, name_b) is same
    assert names_match(name_b, name_a) is same


def test_parse_name_of_nothing_is_none() -> None:
    assert parse_name("") is None
    assert parse_name(" . - ") is None


def test_alias_matches_a_name_the_rules_do_not() -> None:
    text = analyse(paper(authors=("Iman Mirzadeh", "Ann Example")))
    without_alias = compile_profile(Profile("me", authors=(FollowedAuthor("Seyed Iman Mirzadeh"),)))
    assert match_paper(text, without_alias) is None

    with_alias = compile_profile(
        Profile("me", authors=(FollowedAuthor("Seyed Iman Mirzadeh", ("Iman Mirzadeh",)),))
    )
    found = match_paper(text, with_alias)
    assert found is not None
    assert found.reasons == (Reason("author", "Seyed Iman Mirzadeh", "authors", "Iman Mirzadeh"),)
    assert found.followed_names == ("Iman Mirzadeh",)


def test_a_name_in_the_abstract_is_not_authorship() -> None:
    profile = compile_profile(Profile("me", authors=(FollowedAuthor("Rishabh Tiwari"),)))
    text = analyse(paper(abstract="We extend the method of Rishabh Tiwari (2024) and R. Tiwari."))
    assert match_paper(text, profile) is None


# --- profile rules ------------------------------------------------------------------------------

TOPICS = Profile(
    "me",
    keywords=("KV cache", "quantiz*"),
    all_of=(("diffusion", "language model"),),
    exclude=("medical",),
    authors=(FollowedAuthor("Rishabh Tiwari"),),
    categories=("cs.LG", "cs.CL"),
)


@pytest.mark.parametrize(
    ("candidate", "matches"),
    [
        (paper("KV cache compression", categories=("cs.LG",)), True),
        (paper("KV cache compression", categories=("cs.CV", "cs.CL")), True),
        (paper("KV cache compression", categories=("cs.CV",)), False),
        (paper("KV cache compression", categories=()), True),
        (paper("KV cache compression", categories=("CS.lg",)), True),
        (paper("KV cache for medical notes", categories=("cs.LG",)), False),
        (paper("KV cache", abstract="Applied to Medical records.", categories=()), False),
        (paper("Nothing relevant", categories=("cs.LG",)), False),
        # followed authors ignore exclude and categories
        (paper("Medical imaging", authors=("R. Tiwari",), categories=("eess.IV",)), True),
        (paper("Medical KV cache", authors=("Tiwari, Rishabh",), categories=("q-bio",)), True),
        # all_of needs every term of the group
        (paper("Diffusion language models", categories=("cs.CL",)), True),
        (paper("Diffusion", abstract="A masked language model.", categories=("cs.CL",)), True),
        (paper("Diffusion models for images", categories=("cs.CL",)), False),
        (paper("Language models", categories=("cs.CL",)), False),
        (paper("Diffusion language models for medical text", categories=("cs.CL",)), False),
    ],
)
def test_profile_rules(candidate: Paper, matches: bool) -> None:
    assert (match_paper(analyse(candidate), compile_profile(TOPICS)) is not None) is matches


@pytest.mark.parametrize(
    ("wanted", "categories", "passes"),
    [
        (("cs",), ("cs.LG",), True),
        (("cs",), ("stat.ML", "cs.AI"), True),
        (("cs",), ("stat.ML",), False),
        (("cs.LG",), ("cs.LGX",), False),
        (("cs.LG",), (), True),
        ((), ("math.CO",), True),
        ((" cs.lg ",), ("cs.LG",), True),
    ],
)
def test_category_filter(
    wanted: tuple[str, ...], categories: tuple[str, ...], passes: bool
) -> None:
    profile = compile_profile(Profile("me", keywords=("graph",), categories=wanted))
    text = analyse(paper("A graph paper", categories=categories))
    assert (match_paper(text, profile) is not None) is passes


def test_reasons_say_which_author_term_field_and_text() -> None:
    candidate = paper(
        "Quantized KV-Caches",
        abstract="We quantize the KV cache of a diffusion language model.",
        authors=("Ann Example", "R. Tiwari"),
        categories=("cs.LG",),
    )
    found = match_paper(analyse(candidate), compile_profile(TOPICS))
    assert found is not None
    simple = [(r.kind, r.term, r.field, r.text) for r in found.reasons]
    assert simple == [
        ("author", "Rishabh Tiwari", "authors", "R. Tiwari"),
        ("keyword", "KV cache", "title", "KV-Caches"),
        ("keyword", "KV cache", "abstract", "KV cache"),
        ("keyword", "quantiz*", "title", "Quantized"),
        ("keyword", "quantiz*", "abstract", "quantize"),
        ("all_of", "diffusion", "abstract", "diffusion"),
        ("all_of", "language model", "abstract", "language model"),
    ]
    for reason in found.reasons:
        if reason.kind == "author":
            assert reason.spans == ()
            continue
        source = candidate.title if reason.field == "title" else candidate.abstract
        start, end = reason.spans[0]
        assert source[start:end] == reason.text
        assert find_term(compile_term(reason.term), read_field(source)) == reason.spans
    assert found.followed
    assert found.score == score(found.reasons)


def test_all_of_reasons_only_when_the_whole_group_matches() -> None:
    profile = compile_profile(Profile("me", all_of=(("diffusion", "language model", "RL"),)))
    partial = analyse(paper("Diffusion language models"))
    assert match_paper(partial, profile) is None
    whole = match_paper(analyse(paper("Diffusion language models trained with RL")), profile)
    assert whole is not None
    assert {r.kind for r in whole.reasons} == {"all_of"}
    assert [r.term for r in whole.reasons] == ["diffusion", "language model", "RL"]


def test_match_profiles_reads_each_paper_for_every_profile() -> None:
    papers = [
        paper("KV cache eviction", key="a"),
        paper("Speculative decoding", key="b"),
        paper("Unrelated", key="c", authors=("Rishabh Tiwari",)),
    ]
    profiles = [
        Profile("cache", keywords=("KV cache",)),
        Profile(
            "decode", keywords=("speculative decoding",), authors=(FollowedAuthor("R Tiwari"),)
        ),
        Profile("none", keywords=("protein folding",)),
    ]
    found = match_profiles(papers, profiles)
    assert {name: [m.paper.key for m in ms] for name, ms in found.items()} == {
        "cache": ["a"],
        "decode": ["c", "b"],
        "none": [],
    }


# --- ranking ------------------------------------------------------------------------------------


def ranked_keys(candidates: list[Paper], profile: Profile) -> list[str]:
    return [m.paper.key for m in match_profiles(candidates, [profile])[profile.name]]


RANK_PROFILE = Profile(
    "me",
    keywords=("KV cache", "quantiz*", "speculative decoding"),
    authors=(FollowedAuthor("A B"),),
)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        # followed first, even with fewer terms
        (
            [
                paper("KV cache quantization", key="topic"),
                paper("Nothing", key="followed", authors=("A. B",)),
            ],
            ["followed", "topic"],
        ),
        # more distinct terms beats fewer, even abstract-only against a title hit
        (
            [
                paper("KV cache", key="one"),
                paper("x", abstract="KV cache and quantization", key="two"),
            ],
            ["two", "one"],
        ),
        # a title hit beats an abstract-only hit at the same count
        (
            [
                paper("x", abstract="a KV cache", key="abstract"),
                paper("A KV cache", key="title"),
            ],
            ["title", "abstract"],
        ),
        # repeats of one term do not count as more terms
        (
            [
                paper("KV cache", abstract="KV cache KV caches", key="repeats"),
                paper("KV cache quantization", key="distinct"),
            ],
            ["distinct", "repeats"],
        ),
        # ties: upvotes, then recency, then key
        (
            [
                paper("KV cache", key="a", extra=(("upvotes", 3),)),
                paper("KV cache", key="b", extra=(("upvotes", 9),)),
            ],
            ["b", "a"],
        ),
        (
            [
                paper("KV cache", key="old", published=date(2026, 11, 1)),
                paper("KV cache", key="new", published=date(2026, 11, 20)),
                paper("KV cache", key="undated"),
            ],
            ["new", "old", "undated"],
        ),
        (
            [
                paper("KV cache", key="y", published=date(2026, 11, 1), extra=(("upvotes", 5),)),
                paper("KV cache", key="z", published=date(2026, 11, 1), extra=(("upvotes", 5),)),
                paper("KV cache", key="x", published=date(2026, 11, 1), extra=(("upvotes", 5),)),
            ],
            ["x", "y", "z"],
        ),
        # upvotes outrank recency
        (
            [
                paper("KV cache", key="new", published=date(2026, 11, 20)),
                paper("KV cache", key="liked", published=date(2026, 1, 1), extra=(("upvotes", 1),)),
            ],
            ["liked", "new"],
        ),
    ],
)
def test_ranking(candidates: list[Paper], expected: list[str]) -> None:
    assert ranked_keys(candidates, RANK_PROFILE) == expected


def _ranking_pool() -> list[Match]:
    compiled = compile_profile(RANK_PROFILE)
    titles = ["KV cache", "Quantized KV cache", "x", "Speculative decoding", "KV cache"]
    pool = []
    for i in range(20):
        candidate = paper(
            titles[i % len(titles)],
            abstract="speculative decoding" if i % 3 == 0 else "KV caches",
            authors=("A. B",) if i % 7 == 0 else ("C D",),
            key=f"k{i:02d}",
            published=date(2026, 11, 1 + i % 4) if i % 5 else None,
            extra=(("upvotes", i % 3),),
        )
        found = match_paper(analyse(candidate), compiled)
        assert found is not None
        pool.append(found)
    return pool


POOL = _ranking_pool()


@given(st.permutations(POOL))
def test_rank_is_deterministic(shuffled: list[Match]) -> None:
    assert rank(shuffled) == rank(POOL)


def test_rank_is_deterministic_with_seeded_shuffles() -> None:
    expected = rank(POOL)
    assert expected[0].followed and not expected[-1].followed
    rng = random.Random(20261122)
    for _ in range(20):
        shuffled = list(POOL)
        rng.shuffle(shuffled)
        assert rank(shuffled) == expected


# --- properties of the tokenizer ----------------------------------------------------------------

LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZàéîõüçñÀÉÎÕÜÇÑßøåæ0123456789"
words = st.text(alphabet=LATIN, min_size=1, max_size=10)
sentences = st.lists(words, min_size=1, max_size=8)


def norms(text: str) -> list[str]:
    return [t.norm for t in tokenize(text)]


def careful_entries(text: str) -> list[str]:
    """The careful reading's entries: `tokenize`'s words, a separator where a gap is not only
    joiners."""
    entries: list[str] = []
    for token in tokenize(text):
        if entries and not token.joined:
            entries.append(",")
        entries.append(token.norm)
    return entries


# Unicode text without TeX, with what makes reading it hard: marks, soft hyphens, possessives
# with either apostrophe, compatibility forms, Unicode spaces and hyphens, underscores, math
# delimiters between spaces.
UNICODE_PIECES = st.sampled_from(
    [
        "Naïve",
        "ＬＬＭ",
        "e\u0301",
        "\u0301",
        "co\u00adop",
        "’s",
        "'s",
        "½",
        "ﬁne",
        "Ŀ",
        "ß",
        "_",
        "-",
        "\u2010",
        "\u00a0",
        " ",
        "\n",
        "; ",
        "(",
        "$",
        " $x$ ",
        "über",
        "Ωmega",
        "x²",
        "٣",
        "ـ",
        "a",
    ]
)


# TeX as abstracts write it: commands, escapes, braces, math, and TeX letters.
TEX_PIECES = st.sampled_from(
    [
        "\\times",
        "\\%",
        "\\&",
        "\\$",
        "{",
        "}",
        "\\bf ",
        "$",
        "\\emph{",
        '\\"o',
        "{\\o}",
        "\\ss",
        "\\i ",
        "\\v{z}",
        "\\",
        "x",
        "ab",
        " ",
        "-",
        "$k$",
        "\\textit{",
        "é",
        "; ",
        "'s",
        "~",
    ]
)


@settings(max_examples=600)
@given(
    st.lists(UNICODE_PIECES, max_size=14).map("".join)
    | st.lists(TEX_PIECES, max_size=14).map("".join)
    | st.text(max_size=60)
)
def test_fast_unicode_reading_gives_the_careful_entries(text: str) -> None:
    read = Words(text)
    if not read._careful:
        return  # the ASCII reading keeps its own separators (`_ascii_offsets` maps them)
    assert read.norms == careful_entries(text)
    # Offsets of every word agree with the careful tokens.
    words_at = [i for i, norm in enumerate(read.norms) if norm != ","]
    spans = read.char_spans([TokenSpan(i, i) for i in words_at])
    assert list(spans) == [(t.start, t.end) for t in tokenize(text)]


@given(st.text(max_size=80))
def test_tokenize_never_crashes_and_offsets_are_in_range(text: str) -> None:
    for token in tokenize(text):
        assert 0 <= token.start < token.end <= len(text)
        assert token.norm


@given(st.text(max_size=80))
def test_tokenize_norms_are_idempotent(text: str) -> None:
    once = norms(text)
    assert norms(" ".join(once)) == once


@given(sentences)
def test_tokenize_ignores_case(parts: list[str]) -> None:
    text = " ".join(parts)
    assert norms(text.upper()) == norms(text) == norms(text.lower()) == norms(text.swapcase())


ACCENTS = ["\u0301", "\u0300", "\u0302", "\u0308", "\u0303", "\u030a", "\u0327"]


@given(sentences, st.data())
def test_tokenize_ignores_accents(parts: list[str], data: st.DataObject) -> None:
    text = " ".join(parts)
    marked = "".join(
        ch + data.draw(st.sampled_from(ACCENTS)) if ch.isascii() and ch.isalpha() else ch
        for ch in text
    )
    assert norms(marked) == norms(text)
    assert norms(unicodedata.normalize("NFC", marked)) == norms(text)
    assert norms(unicodedata.normalize("NFD", text)) == norms(text)


@given(sentences, st.data())
def test_tokenize_ignores_joiner_swaps_and_extra_whitespace(
    parts: list[str], data: st.DataObject
) -> None:
    gaps = st.sampled_from([" ", "-", "/", "\n", "  \t ", " - ", "\u2010", "\u2013"])
    text = parts[0] + "".join(data.draw(gaps) + part for part in parts[1:])
    tokens = tokenize(text)
    assert [t.norm for t in tokens] == norms(" ".join(parts))
    assert all(t.joined for t in tokens[1:])


# A term built from a word `w` over one alphabet; text words that contain `w` only after at least
# one letter from a disjoint alphabet, so `w` (or its plural) is never at the start of a word.
TERM_LETTERS = "abcdfghjklm"
OTHER_LETTERS = "nopqrtuvwxz0123456789"
term_words = st.text(alphabet=TERM_LETTERS, min_size=1, max_size=8)
other_words = st.text(alphabet=OTHER_LETTERS, min_size=1, max_size=6)


@given(
    term_words,
    st.lists(st.tuples(other_words, st.text(alphabet=LATIN, max_size=4)), min_size=1, max_size=6),
    st.sampled_from([" ", "-", "/", ". ", "\n"]),
    st.booleans(),
)
def test_term_never_matches_inside_a_longer_word(
    w: str, hosts: list[tuple[str, str]], gap: str, as_prefix: bool
) -> None:
    text = gap.join(before + w + after for before, after in hosts)
    term = compile_term(w + ("*" if as_prefix else ""))
    assert find_term(term, read_field(text)) == ()
    assert find_term(term, read_field(text.upper())) == ()


@given(term_words, st.lists(other_words, max_size=5), st.lists(other_words, max_size=5))
def test_term_matches_its_own_word_exactly(w: str, before: list[str], after: list[str]) -> None:
    text = " ".join([*before, w.upper(), *after])
    start = len(" ".join([*before, ""])) if before else 0
    assert find_term(compile_term(w), read_field(text)) == ((start, start + len(w)),)


@settings(max_examples=50)
@given(st.lists(term_words, min_size=2, max_size=3), st.sampled_from([" ", "-", "/", "\n"]))
def test_multiword_terms_match_any_joiner(parts: list[str], gap: str) -> None:
    text = "zz " + gap.join(parts) + " zz"
    spans = find_term(compile_term(" ".join(parts)), read_field(text))
    assert spans and text[spans[0][0] : spans[0][1]] == gap.join(parts)


# --- the index agrees with the one-term reference -------------------------------------------------

# Few letters, so words collide often: prefixes, plurals, closed and split compounds all occur.
INDEX_WORDS = [
    "a",
    "to",
    "in",
    "pre",
    "train",
    "training",
    "trains",
    "kv",
    "cache",
    "caches",
    "policy",
    "policies",
    "for",
    "getting",
    "forgetting",
    "r",
    "l",
    "rl",
    "url",
    "s",
]
INDEX_GAPS = [" ", "-", "/", ", ", " (", "\n", "~", "'s ", "{\\bf ", "}", " \\emph{", "_", "é "]
index_terms = st.builds(
    lambda words, sep, star: sep.join(words) + ("*" if star else ""),
    st.lists(st.sampled_from(INDEX_WORDS), min_size=1, max_size=3),
    st.sampled_from([" ", "-", "", "/"]),
    st.booleans(),
)
index_texts = st.lists(
    st.tuples(st.sampled_from(INDEX_WORDS), st.sampled_from(INDEX_GAPS)), max_size=12
).map(lambda pairs: "".join(w.upper() if i % 3 == 0 else w + g for i, (w, g) in enumerate(pairs)))


def index_spans(
    terms: list[Term], text: str, scanner: Scanner | None = None
) -> dict[str, tuple[tuple[int, int], ...]]:
    index, words = scanner or Scanner(terms), Words(text)
    found = {key: words.char_spans(occurrences(s)) for key, s in index.scan(words).items()}
    return {t.raw: found.get(t.key, ()) for t in terms}


@given(st.lists(index_terms, min_size=1, max_size=6), index_texts)
def test_a_scans_spans_are_its_occurrences_character_spans_in_text_order(
    raws: list[str], text: str
) -> None:
    """What the ingest-time scan stores for a term (`Words.spans_of`) is its occurrences'
    character spans (`char_spans` of `occurrences`)."""
    words = Words(text)
    for found in Scanner([compile_term(raw) for raw in raws]).scan(words).values():
        assert words.spans_of(found) == words.char_spans(occurrences(found))


@settings(max_examples=500)
@given(st.lists(index_terms, min_size=1, max_size=6), index_texts)
def test_one_index_for_many_terms_finds_what_each_term_finds_alone(
    raws: list[str], text: str
) -> None:
    terms = [compile_term(raw) for raw in raws]
    field = read_field(text)
    expected = {t.raw: find_term(t, field) for t in terms}
    assert index_spans(terms, text) == expected


def seed_papers() -> list[Paper]:
    seeds = Path(__file__).resolve().parents[1] / "seeds"
    found: list[Paper] = []
    for path in sorted(seeds.glob("*.jsonl")):
        found.extend(parse_listing_jsonl(path.read_bytes(), path.name))
    return found


def test_the_index_agrees_with_the_reference_on_the_seeds() -> None:
    papers = seed_papers()
    # Every word pair of every title, with hyphens and as prefixes: terms that really occur.
    raws = {"KV cache", "speculative decoding", "quantiz*", "pre-training", "LLMs", "RL"}
    for paper in papers:
        words = paper.title.split()
        raws.update(" ".join(words[i : i + 2]) for i in range(0, len(words) - 1, 7))
        raws.update(w[:5] + "*" for w in words[::9] if len(w) > 6)
    terms = [compile_term(raw) for raw in sorted(raws)]
    assert len(terms) > 100
    hits = 0
    scanner = Scanner(terms)
    for paper in papers:
        for text in (paper.title, paper.abstract):
            field = read_field(text)
            expected = {t.raw: find_term(t, field) for t in terms}
            assert index_spans(terms, text, scanner) == expected, text[:80]
            hits += sum(1 for spans in expected.values() if spans)
    assert hits > 300


# --- a matcher shared by every profile of a run ---------------------------------------------------


def test_a_shared_matcher_reads_each_paper_once_for_all_profiles() -> None:
    kv = Profile("kv", keywords=("KV cache",))
    spec = Profile("spec", keywords=("speculative decoding",))
    papers = [
        paper("KV cache eviction", key="a"),
        paper("Speculative decoding, fast", key="b"),
        paper("Nothing here", key="c"),
    ]
    matcher = Matcher([kv, spec])
    assert [m.paper.key for m in matcher.ranked("kv", papers)] == ["a"]
    assert [m.paper.key for m in matcher.ranked("spec", papers)] == ["b"]
    together = matcher.match_all(papers)  # one reading of each paper for both profiles
    assert {name: [m.paper.key for m in ms] for name, ms in together.items()} == {
        "kv": ["a"],
        "spec": ["b"],
    }
    assert together["kv"] == list(matcher.ranked("kv", papers))


def test_ranked_reads_the_paper_it_is_asked_about() -> None:
    kv = Profile("kv", keywords=("KV cache",))
    matcher = Matcher([kv])
    first = paper("KV cache eviction", key="a")
    assert matcher.ranked("kv", [first])[0].paper.upvotes == 0
    liked = replace(first, extra=(("upvotes", 7),))
    assert matcher.ranked("kv", [liked])[0].paper.upvotes == 7
    retitled = replace(first, title="Something else entirely")
    assert matcher.ranked("kv", [retitled]) == ()


@settings(max_examples=30)
@given(st.integers(min_value=1, max_value=6), st.randoms(use_true_random=False))
def test_best_matches_keeps_the_top_of_what_match_profiles_ranks(
    keep: int, rng: random.Random
) -> None:
    papers = [
        paper(
            rng.choice(
                ["KV cache", "Speculative decoding", "KV cache and speculative decoding", "x"]
            ),
            key=f"k{i:02d}",
            extra=(("upvotes", rng.randrange(3)),),
        )
        for i in range(40)
    ]
    profiles = [
        Profile("a", keywords=("KV cache",)),
        Profile("b", keywords=("speculative decoding", "KV cache")),
    ]
    everything = match_profiles(papers, profiles)
    best = best_matches(papers, profiles, keep)
    for name, ranked in everything.items():
        assert best[name].matches == ranked[:keep]
        assert best[name].total == len(ranked)


# --- the README's rule tables, run against the production matcher ---------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
_CODE = re.compile(r"`([^`]+)`")


def readme_table(header: str) -> list[tuple[str, str, str, bool]]:
    """(rule, term or followed name, text or written name, should match) from a README table
    whose header row starts with `header`. In the match columns, `;` separates the examples of
    each term in turn, and `X` for `T` names the term `T` an example belongs to."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows: list[tuple[str, str, str, bool]] = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rule, terms_cell, matches, misses = (c.strip() for c in line.strip()[1:-1].split("|"))
        terms = _CODE.findall(terms_cell)
        for cell, should in ((matches, True), (misses, False)):
            groups = [g for g in cell.split(";") if g.strip()]
            for number, group in enumerate(groups):
                named = re.search(r" for `([^`]+)`\s*$", group)
                owners = (
                    [named.group(1)]
                    if named
                    else ([terms[number]] if len(groups) == len(terms) > 1 else terms)
                )
                examples = _CODE.findall(group[: named.start()] if named else group)
                rows += [(rule, t, text, should) for t in owners for text in examples]
    return rows


KEYWORD_TABLE = readme_table("| rule | keyword |")
AUTHOR_TABLE = readme_table("| rule | followed |")


def test_the_readme_tables_are_read() -> None:
    assert len(KEYWORD_TABLE) >= 30 and len(AUTHOR_TABLE) >= 15
    assert ("words that only look plural stay whole", "news", "new", False) in KEYWORD_TABLE


@pytest.mark.parametrize(
    ("rule", "keyword", "text", "should_match"),
    KEYWORD_TABLE,
    ids=[f"{kw}~{text}" for _, kw, text, _ in KEYWORD_TABLE],
)
def test_readme_keyword_table(rule: str, keyword: str, text: str, should_match: bool) -> None:
    found = match_profiles([paper(text)], [Profile("me", keywords=(keyword,))])["me"]
    assert bool(found) is should_match, rule


@pytest.mark.parametrize(
    ("rule", "followed", "written", "should_match"),
    AUTHOR_TABLE,
    ids=[f"{a}~{b}" for _, a, b, _ in AUTHOR_TABLE],
)
def test_readme_author_table(rule: str, followed: str, written: str, should_match: bool) -> None:
    profile = Profile("me", authors=(FollowedAuthor(followed),))
    found = match_profiles([paper(authors=(written,))], [profile])["me"]
    assert bool(found) is should_match, rule
    assert same_person(followed, written) is should_match


NAME_WORDS = st.sampled_from(
    [
        "Wei",
        "W.",
        "Chen",
        "chen",
        "Chén",
        "O'Brien",
        "OBrien",
        "Jr.",
        "van",
        "de",
        "Ven",
        "Han-Byul",
        "Hanbyul",
        "Kim",
        "M",
        "Li",
        "Müller",
        "Mueller",
        "K.",
    ]
)
written_names = st.lists(NAME_WORDS, min_size=1, max_size=4).flatmap(
    lambda words: st.sampled_from([" ".join(words), f"{words[-1]}, {' '.join(words[:-1])}"])
)


@settings(max_examples=300)
@given(written_names, written_names)
def test_the_author_index_finds_exactly_the_same_people(followed: str, written: str) -> None:
    """The index's shortcuts (by last name and initial, skipping names whose words nobody
    follows as a last name) find whom `same_person` says."""
    author = FollowedAuthor(followed)
    index = AuthorIndex([[(author, name) for name in name_readings(followed)]])
    assert bool(index.hits([written])) == same_person(followed, written)


@settings(max_examples=200)
@given(st.lists(written_names, min_size=1, max_size=6), st.lists(written_names, max_size=8))
def test_the_author_index_answers_a_name_asked_again_as_the_first_time(
    followed: list[str], listing: list[str]
) -> None:
    """A written name's answer is kept (`AuthorIndex.named_by`): asked again, in another
    paper and at another position, it gives the hits a fresh index gives."""
    people = [
        [(FollowedAuthor(name), parsed) for parsed in name_readings(name)] for name in followed
    ]
    index = AuthorIndex(people)
    index.hits(listing)
    again = [*reversed(listing), *listing]
    assert index.hits(again) == AuthorIndex(people).hits(again)


@settings(max_examples=300)
@given(
    st.lists(written_names, min_size=1, max_size=6),
    st.lists(written_names, max_size=8),
    st.lists(written_names, max_size=8),
)
def test_stored_author_keys_find_whom_reading_every_author_finds(
    followed: list[str], listing: list[str], other: list[str]
) -> None:
    """Only the authors whose stored keys somebody follows are read (`author_keys`): the same
    hits as reading them all; keys made for another author list are not trusted."""
    people = [
        [(FollowedAuthor(name), parsed) for parsed in name_readings(name)] for name in followed
    ]
    every = AuthorIndex(people).hits(listing)
    assert AuthorIndex(people).hits(listing, author_keys(listing)) == every
    assert AuthorIndex(people).hits(listing, author_keys(other)) == every


def test_author_keys_are_a_header_and_a_key_a_reading() -> None:
    # Worked example of digest.match.authors: two authors, one reading each.
    blob = author_keys(("Ada Lovelace", "Charles Babbage"))
    assert len(blob) == 4 * (3 + 2 * 2)
    ada = FollowedAuthor("A. Lovelace")
    index = AuthorIndex([[(ada, name) for name in name_readings(ada.name)]])
    assert index.hits(("Ada Lovelace", "Charles Babbage"), blob)[0][0].position == 0


def test_the_author_index_keeps_a_bounded_number_of_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("digest.match.authors._NAMED_LIMIT", 3)
    author = FollowedAuthor("Ada Lovelace")
    index = AuthorIndex([[(author, name) for name in name_readings(author.name)]])
    listing = [f"Person{n} Other" for n in range(10)] + ["A. Lovelace"]
    for _ in range(2):
        found = index.hits(listing)
        assert [hit.position for hit in found[0]] == [10]
    assert len(index._named) <= 3


@pytest.mark.parametrize("enabled", [True, False], ids=["collector-on", "collector-off"])
def test_compiling_leaves_the_garbage_collector_as_it_was(enabled: bool) -> None:
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        Matcher([Profile(name="p", keywords=("KV cache",))])
        assert gc.isenabled() is enabled
        with pytest.raises(ZeroDivisionError), collection_paused():
            assert not gc.isenabled()
            _ = 1 / 0
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
