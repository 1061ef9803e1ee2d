"""The suggestions' TF-IDF (digest.suggest.vectors): the fast reading against the matcher's own,
the recipe's arithmetic against scikit-learn's TfidfVectorizer, and a vocabulary that does not
depend on the order terms were first read in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import digest.suggest.vectors as vectors
from digest.match.text import Words
from digest.suggest.vectors import Doc, Vocabulary, WordTable, field_terms

ROOT = Path(__file__).parent.parent


def careful_words(text: str) -> list[str]:
    """The words `field_terms` keeps, read through the matcher's `Words` (the reference)."""
    return [w for w in Words(text).norms if len(w) > 1 and w[0].isalpha()]


def seed_fields() -> list[str]:
    fields = []
    for path in sorted((ROOT / "seeds").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            row = json.loads(line)
            fields += [row.get("title") or "", row.get("abstract") or ""]
    return [f for f in fields if f]


def test_the_fast_reading_reads_every_seed_field_as_the_matcher_does() -> None:
    fields = seed_fields()
    assert len(fields) > 500
    for text in fields:
        assert vectors._words(text) == careful_words(text), text[:80]


@given(
    st.lists(
        st.sampled_from([*"abcXYZ019 -'$\\{}_.,()éΘ", "\\alpha", "\\'e", "'s", "’s"]),
        max_size=30,
    ).map("".join)
)
def test_the_fast_reading_agrees_with_the_matcher_on_any_text(text: str) -> None:
    assert vectors._words(text) == careful_words(text)


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        (
            "Forgetting in Continual Learning",
            ["forgetting", "continual", "learning", "forgetting continual", "continual learning"],
        ),
        ("The model's loss", ["model", "loss", "model loss"]),
        (
            "$\\epsilon$-Greedy {\\bf Agents}",
            ["greedy", "agents", "greedy agents"],  # as the matcher: commands are skipped
        ),
        ("Jörg's Über-Modell", ["jorg", "uber", "modell", "jorg uber", "uber modell"]),
        ("3D x 2", []),
        ("", []),
    ],
    ids=["stop-word", "possessive", "tex", "accents", "digits-and-letters", "empty"],
)
def test_field_terms(text: str, terms: list[str]) -> None:
    assert field_terms(text) == terms


DOCS = [
    Doc("a", "Continual learning without forgetting", "Replay buffers keep old tasks."),
    Doc("b", "Forgetting in neural networks", "Catastrophic forgetting of old tasks."),
    Doc("c", "Image segmentation with transformers", "Pixels and masks."),
    Doc("d", "Segmentation of medical images", "Masks for organs; replay is not used."),
]


def test_the_rows_are_scikit_learns_tfidf_of_the_same_terms() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vocabulary = Vocabulary(DOCS)
    texts = [[*field_terms(d.title) * 2, *field_terms(d.abstract)] for d in DOCS]
    reference = TfidfVectorizer(
        analyzer=lambda terms: terms, sublinear_tf=True, max_df=vectors.MAX_DF
    ).fit(texts)
    assert list(vocabulary.terms) == list(reference.get_feature_names_out())
    assert np.allclose(vocabulary.idf, reference.idf_)
    ours = vocabulary.rows(DOCS).toarray()
    theirs = reference.transform(texts).toarray()
    assert np.allclose(ours, theirs, atol=1e-6)


def test_the_vocabulary_does_not_depend_on_the_order_terms_were_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = Vocabulary(DOCS)
    monkeypatch.setattr(vectors, "WORDS", WordTable())
    vectors._field_words.cache_clear()
    for doc in reversed(DOCS):  # other terms first: other ids
        vectors.field_words(doc.abstract)
        vectors.field_words(doc.title)
    again = Vocabulary(list(reversed(DOCS)))
    assert again.terms == first.terms
    assert again.digest == first.digest
    assert np.allclose(again.rows(DOCS).toarray(), first.rows(DOCS).toarray())


def test_a_vocabulary_reads_on_after_the_term_table_is_emptied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vocabulary = Vocabulary(DOCS[:2])
    before = vocabulary.rows(DOCS[2:]).toarray()
    monkeypatch.setattr(vectors, "TERM_TABLE_LIMIT", 0)
    vectors.WORDS.reset_if_full()  # the table is emptied: every id changes
    vectors.field_words("Some other words first")
    fresh = [Doc(d.key + "2", d.title, d.abstract) for d in DOCS[2:]]
    assert np.allclose(vocabulary.rows(fresh).toarray(), before)
