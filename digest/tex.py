"""TeX in titles and abstracts, read as Unicode text for display, with an offset map.

arXiv titles and abstracts are TeX source: `$\\varepsilon_1$-close`, `$\\Theta(\\sqrt{n})$`,
`` `memory allocation' ``. `readable` turns them into what a reader expects (`ε₁-close`,
`Θ(√n)`, `‘memory allocation’`) with pylatexenc, piece by piece: plain text between the TeX
pieces is kept as it is (a feed's `50% off` or `A & B` is not TeX), and every piece remembers
where it came from, so the matcher's spans (offsets into the raw field) can be moved onto the
converted text and the highlight stays on the right letters.

Bounded: a piece is at most `_MAX_PIECE` characters and `_MAX_DEPTH` braces deep (pylatexenc
recurses), at most `_MAX_PIECES` pieces are converted per field, and a piece pylatexenc cannot
read is kept raw.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.memo import pure_memo

if TYPE_CHECKING:
    from pylatexenc.latex2text import LatexNodes2Text

_MAX_PIECE = 400
_MAX_DEPTH = 8
_MAX_PIECES = 200

# `$…$` (not `$5 and $6`: no space just inside the dollars, no digit right after the closing
# one), `$$…$$` and `\(…\)`.
_MATH = re.compile(  # 400: _MAX_PIECE
    r"\$\$[^$]{1,400}?\$\$|\$(?=[^\s$])[^$\n]{1,400}?(?<=\S)\$(?!\d)|\\\(.{1,400}?\\\)",
    re.S,
)
# TeX quotes: ``double'' and `single' (an apostrophe inside a word does not close it).
_QUOTES = (
    (re.compile(r"``(?=\S)[^`\n]{1,300}?''"), 2, "“", "”"),
    (re.compile(r"`(?=\S)[^`'\n]{1,300}?'(?!\w)"), 1, "‘", "’"),
)
_ACCENTS = frozenset("'\"`^~=.")
_SPECIAL = re.compile(r"[$\\`{]")
_LETTERS = re.compile(r"[A-Za-z]+\*?")

# pylatexenc writes `x_1` and `x^2` as they are: simple sub- and superscripts become the Unicode
# small digits and letters (only where every character has one; `n^{1/2}` stays for pylatexenc).
_SUBSCRIPTS = dict(
    zip("0123456789+-=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True)
)
_SUPERSCRIPTS = dict(
    zip(
        "0123456789+-=()abcdefghijklmnoprstuvwxyzTn",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀⁿ",
        strict=True,
    )
)
_SCRIPTS = {"_": _SUBSCRIPTS, "^": _SUPERSCRIPTS}
_SCRIPT = re.compile(r"([_^])(?:\{\s*([^{}\\$]{1,12}?)\s*\}|([A-Za-z0-9]))")


def _script(found: re.Match[str]) -> str:
    """A matched `_x` / `^{xy}` in Unicode small characters when each has one, else written so
    pylatexenc keeps it readable."""
    table = _SCRIPTS[found[1]]
    body = found[2] if found[2] is not None else found[3]
    if table.keys() >= set(body):
        return "".join(map(table.__getitem__, body))
    # `n^{1/2}`: pylatexenc would drop the braces and write the ambiguous `n^1/2`
    return f"{found[1]}({body})" if len(body) > 1 else found[0]


def _sqrt(node: Any, l2tobj: Any) -> str:
    """`√n` for a one-word radicand, `√(n+1)` otherwise (pylatexenc always writes `√(n)`)."""
    argument = node.nodeargd.argnlist[-1] if node.nodeargd else None
    inner = l2tobj.nodelist_to_text([argument]).strip() if argument is not None else ""
    return "√" + inner if inner.isalnum() else f"√({inner})"


@pure_memo(maxsize=1)
def _converter() -> LatexNodes2Text:
    # pylatexenc is imported here: only a digest being rendered needs it.
    from pylatexenc.latex2text import (
        LatexNodes2Text,
        MacroTextSpec,
        get_default_latex_context_db,
    )

    context = get_default_latex_context_db()
    context.add_context_category(
        "digest",
        prepend=True,
        # pylatexenc drops \texttt's text by default; \cite has nothing a reader can use.
        macros=[
            MacroTextSpec("texttt", discard=False),
            MacroTextSpec("sqrt", simplify_repl=_sqrt),
            MacroTextSpec("cite", discard=True),
            MacroTextSpec("citep", discard=True),
            MacroTextSpec("citet", discard=True),
        ],
    )
    return LatexNodes2Text(latex_context=context, math_mode="text", strict_latex_spaces=False)


def _too_deep(piece: str) -> bool:
    depth = 0
    for ch in piece:
        if ch == "{":
            depth += 1
            if depth > _MAX_DEPTH:
                return True
        elif ch == "}":
            depth -= 1
    return False


def _convert(piece: str, *, math: bool) -> str:
    """One TeX piece as text; the piece itself when pylatexenc cannot read it."""
    if _too_deep(piece):
        return piece
    source = _SCRIPT.sub(_script, piece) if math else piece
    try:
        text = str(_converter().latex_to_text(source))
    except Exception:  # pylatexenc raises many kinds on malformed input: show it raw
        return piece
    if not math:
        return text  # an unknown or citation command reads as nothing, as the matcher reads it
    return " ".join(text.split()) or piece


def _group_end(text: str, start: int) -> int:
    """The index after the `{…}` group opening at `start`, or -1 (unbalanced or too long)."""
    depth = 0
    stop = min(len(text), start + _MAX_PIECE)
    for i in range(start, stop):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _command_end(text: str, start: int) -> int:
    """The index after a command at `start` (`\\emph{x}`, `\\'e`, `\\o`) and its arguments."""
    letters = _LETTERS.match(text, start + 1)
    if letters:
        i = letters.end()
    else:
        i = start + 2
        # an accent: `\'e` takes the next letter, `\'{e}` its group
        if text[start + 1 : i] in _ACCENTS and i < len(text) and text[i] != "{":
            return i + 1
    return _arguments_end(text, i)


def _arguments_end(text: str, i: int) -> int:
    """The index after the `{…}` arguments starting at `i` (none: `i`)."""
    while i < len(text) and text[i] == "{":
        end = _group_end(text, i)
        if end < 0:
            break
        i = end
    return min(i, len(text))


@dataclass(frozen=True, slots=True)
class Readable:
    """A field as shown, and where each of its pieces came from in the raw field.

    `pieces` are (raw start, raw end, shown start, shown end, kept as is), in order, covering
    the raw text without gaps.
    """

    text: str
    pieces: tuple[tuple[int, int, int, int, bool], ...]

    def position(self, raw: int, *, end: bool = False) -> int:
        """Where raw offset `raw` lands in the shown text; inside a converted piece a start
        moves to the piece's start and an end to its end."""
        if not self.pieces or raw <= 0:
            return 0
        if raw >= self.pieces[-1][1]:
            return len(self.text)
        # a start lies in the piece holding raw[raw], an end in the one holding raw[raw - 1]
        raw_start, _raw_end, start, stop, kept = self._piece_holding(raw - 1 if end else raw)
        if kept:
            return start + raw - raw_start
        return stop if end else start

    def _piece_holding(self, raw: int) -> tuple[int, int, int, int, bool]:
        """The piece that holds raw offset `raw`."""
        starts = [p[0] for p in self.pieces]
        return self.pieces[bisect_right(starts, raw) - 1]

    def spans(self, raw_spans: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        """Raw (start, end) spans moved onto the shown text (empty ones dropped)."""
        moved = ((self.position(s), self.position(e, end=True)) for s, e in raw_spans)
        return tuple((s, e) for s, e in moved if e > s)


@pure_memo(maxsize=4096)
def readable(raw: str) -> Readable:
    """`raw` with its TeX math, commands and quotes read as Unicode text."""
    if not _SPECIAL.search(raw):
        return _as_is(raw)
    pieces: list[tuple[int, int, int, int, bool]] = []
    out: list[str] = []
    shown = 0
    closes: dict[int, tuple[int, str]] = {}  # raw index of a closing quote: (length, text)
    converted = 0

    def emit(raw_start: int, raw_end: int, text: str, kept: bool) -> None:
        nonlocal shown
        pieces.append((raw_start, raw_end, shown, shown + len(text), kept))
        out.append(text)
        shown += len(text)

    i = 0
    plain_from = 0
    while (i := _next_piece(raw, i, closes, converted < _MAX_PIECES)) < len(raw):
        end, text, kept = _piece_at(raw, i, closes, converted < _MAX_PIECES)
        if end == i:
            i += 1
            continue
        if plain_from < i:
            emit(plain_from, i, raw[plain_from:i], True)
        emit(i, end, text, kept)
        converted += not kept
        i = plain_from = end
    if plain_from < len(raw):
        emit(plain_from, len(raw), raw[plain_from:], True)
    return Readable("".join(out), tuple(pieces))


# A TeX piece read: (its raw end, its text, kept as is); raw indexes of closing quotes due.
_Piece = tuple[int, str, bool]
_Closes = dict[int, tuple[int, str]]


def _as_is(raw: str) -> Readable:
    """A field without TeX: shown as it is, one kept piece (none when empty)."""
    return Readable(raw, ((0, len(raw), 0, len(raw), True),) if raw else ())


def _next_piece(raw: str, i: int, closes: _Closes, convert: bool) -> int:
    """Where the next piece may start at or after `i` (`len(raw)`: nowhere): a character
    `_piece_at` reads, or a closing quote due. Skipping to it, not stepping through every
    character: 6,000 of bench's generated titles and abstracts, 0.25-0.37 -> 0.12-0.19 s
    (the same `Readable`s as before for them and 30,000 random TeX-like strings)."""
    found = _SPECIAL.search(raw, i) if convert else None
    at = found.start() if found else len(raw)
    # A closing quote inside a piece read since (a quote closed within math) is never reached.
    return min((at, *(close for close in closes if close >= i))) if closes else at


def _piece_at(raw: str, i: int, closes: _Closes, convert: bool) -> _Piece:
    """The TeX piece starting at `i`: (its end, its text, kept as is); `(i, "", True)` when
    none starts there."""
    if i in closes:
        length, text = closes.pop(i)
        return i + length, text, False
    ch = raw[i]
    if not convert or ch not in "$\\`{":  # most characters: a string test, no dict look-up
        return i, "", True
    return _PIECE_READERS[ch](raw, i, closes)


def _dollar_at(raw: str, i: int, closes: _Closes) -> _Piece:
    """`$…$` or `$$…$$` math at `i`; none when the dollar opens no math (`$5 and $6`)."""
    found = _MATH.match(raw, i)
    if found:
        return found.end(), _convert(found[0], math=True), False
    return i, "", True


def _backslash_at(raw: str, i: int, closes: _Closes) -> _Piece:
    """`\\(…\\)` math, an escaped character (`\\%`) or a command with its arguments at `i`."""
    if raw.startswith("\\(", i):
        found = _MATH.match(raw, i)
        if found:
            return found.end(), _convert(found[0], math=True), False
    if i + 1 < len(raw) and raw[i + 1] in "$%&#_{}":
        return i + 2, raw[i + 1], False  # an escaped character
    end = _command_end(raw, i)
    return end, _convert(raw[i:end], math=False), False


def _quote_at(raw: str, i: int, closes: _Closes) -> _Piece:
    """A TeX opening quote at `i` as its curly quote, its closing one noted in `closes`."""
    for pattern, size, opening, closing in _QUOTES:
        found = pattern.match(raw, i)
        if found:
            closes[found.end() - size] = (size, closing)
            return i + size, opening, False
    return i, "", True


def _group_at(raw: str, i: int, closes: _Closes) -> _Piece:
    """A braced group holding a command at `i` (`{\\bf P}ost`); a plain `{…}` is no piece."""
    end = _group_end(raw, i)
    if end > 0 and "\\" in raw[i:end]:
        return end, _convert(raw[i:end], math=False), False
    return i, "", True


# The character a TeX piece starts with -> what reads the piece there.
_PIECE_READERS: dict[str, Callable[[str, int, _Closes], _Piece]] = {
    "$": _dollar_at,
    "\\": _backslash_at,
    "`": _quote_at,
    "{": _group_at,
}
