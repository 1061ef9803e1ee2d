"""TeX in titles and abstracts read as Unicode text, and the offset map that keeps the matched
terms' highlight on the right letters (digest.tex)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.tex import readable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param(r"$\varepsilon_1$-close", "ε₁-close", id="subscript-digit"),
        pytest.param(r"$\Theta(\sqrt{n})$", "Θ(√n)", id="sqrt-one-letter"),
        pytest.param(r"$\sqrt{n+1}$", "√(n+1)", id="sqrt-expression"),
        pytest.param(r"$\{1, \dots, n\}$", "{1, …, n}", id="braces-and-dots"),
        pytest.param(r"$ω$Test", "ωTest", id="unicode-in-math"),
        pytest.param(r"$\texttt{SPECS}$: specs", "SPECS: specs", id="texttt-in-math"),
        pytest.param(r"the \texttt{SPECS} tool", "the SPECS tool", id="texttt"),
        pytest.param(r"a `memory allocation' bug", "a ‘memory allocation’ bug", id="single-quotes"),
        pytest.param(r"``quoted'' and don't", "“quoted” and don't", id="double-quotes"),
        pytest.param(r"$x^2$ and $x_{ij}$", "x² and xᵢⱼ", id="simple-scripts"),
        pytest.param(r"$O(n^{1/2})$", "O(n^(1/2))", id="script-without-unicode-form"),
        pytest.param(r"$\mathbb{R}^d$, $\ell_2$", "ℝᵈ, ℓ₂", id="letters-with-scripts"),
        pytest.param(r"na\"ive {\bf P}ost S{\o}ren", "naïve Post Søren", id="text-accents"),
        pytest.param(r"100\% done \& more", "100% done & more", id="escaped-specials"),
        pytest.param(r"$\alpha$-$\beta$ mixing", "α-β mixing", id="two-math-pieces"),
        # the closing quote due falls inside math read since: never reached, the text goes on
        pytest.param(r"`a $b'$ c' d", "‘a b' c' d", id="quote-closed-inside-math"),
        pytest.param(r"x `y' ``z''", "x ‘y’ “z”", id="quotes-one-after-another"),
        # not TeX: a feed's text is kept as written
        pytest.param("costs $5 and $6", "costs $5 and $6", id="dollar-amounts"),
        pytest.param("50% of A & B ~ C", "50% of A & B ~ C", id="plain-specials"),
        pytest.param("Plain title", "Plain title", id="plain"),
        pytest.param("", "", id="empty"),
    ],
)
def test_readable_text(raw: str, shown: str) -> None:
    assert readable(raw).text == shown


@pytest.mark.parametrize(
    ("raw", "span", "marked"),
    [
        pytest.param(r"An $\varepsilon_1$-close KV cache", (25, 33), "KV cache", id="after-math"),
        pytest.param(r"An $\varepsilon_1$-close KV cache", (19, 24), "close", id="right-after"),
        pytest.param(r"A `memory allocation' bug", (3, 9), "memory", id="inside-quotes"),
        # a span inside a converted piece covers all of the piece
        pytest.param(r"the $\texttt{SPECS}$ tool", (13, 18), "SPECS", id="inside-math"),
        pytest.param(r"na\"ive Bayes", (0, 7), "naïve", id="across-accent"),
        pytest.param("plain KV cache", (6, 14), "KV cache", id="plain"),
    ],
)
def test_spans_move_onto_the_shown_text(raw: str, span: tuple[int, int], marked: str) -> None:
    shown = readable(raw)
    (start, end), *_ = shown.spans((span,))
    assert shown.text[start:end] == marked


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{" * 5000 + "x" + "}" * 5000, id="deep-braces"),
        pytest.param("$" + "{" * 300 + "$", id="deep-math"),
        pytest.param(r"\emph{" * 3000, id="unclosed-commands"),
        pytest.param(r"$\alpha$ x " * 20000, id="many-pieces"),
        pytest.param("\\", id="lone-backslash"),
        pytest.param("$", id="lone-dollar"),
        pytest.param("`" * 1000 + "'" * 1000, id="quote-storm"),
    ],
)
def test_pathological_input_is_bounded(raw: str) -> None:
    shown = readable(raw)  # no RecursionError, no blow-up
    assert len(shown.text) <= 2 * len(raw) + 10
    assert shown.spans(((0, len(raw)),)) in ((), ((0, len(shown.text)),))


# Pieces of TeX and of plain text, joined at random: what `readable` must cut into pieces.
_TEX_LIKE = st.lists(
    st.sampled_from(
        [
            "a",
            "b c",
            " ",
            "$",
            "$$",
            "\\",
            "`",
            "``",
            "'",
            "''",
            "{",
            "}",
            "^",
            "_",
            "%",
            "5",
            r"\alpha",
            r"\(",
            r"\)",
            r"\emph{",
            r"\'e",
            r"{\bf ",
            r"\%",
            "\n",
        ]
    ),
    max_size=40,
).map("".join)


@given(_TEX_LIKE)
def test_pieces_cover_the_raw_and_the_shown_text_in_order(raw: str) -> None:
    """Every raw character lies in one piece, in order; the shown text is the pieces' texts in
    order; a piece kept as is shows its raw text (what highlighting relies on)."""
    shown = readable(raw)
    raw_at = shown_at = 0
    for raw_start, raw_end, start, end, kept in shown.pieces:
        assert (raw_start, start) == (raw_at, shown_at)
        assert raw_end > raw_start
        if kept:
            assert shown.text[start:end] == raw[raw_start:raw_end]
        raw_at, shown_at = raw_end, end
    assert (raw_at, shown_at) == (len(raw), len(shown.text))
