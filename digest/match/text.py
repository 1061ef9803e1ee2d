"""Reading a field: folding, words, and the one definition of what joins words.

A field (a title or an abstract) is read once into `Words`: its folded words in order, with a
separator entry wherever something other than a joiner stands between two words, and the same
words concatenated into one string, `letters`, that the automaton scans (`scan.py`).

Worked example: ``The KV-cache's size; $ω$Test`` reads as the pieces
``["the", "kv", "cache", "size", ",", "ωtest"]``: the possessive ``'s`` is dropped, the hyphen
is a joiner (it vanishes), ``;`` becomes a separator (``,``) that a term never runs across, and
the math delimiters inside ``$ω$Test`` join it into one word. ``letters`` is
``"thekvcachesize,ωtest"`` and ``offsets`` is ``[0, 3, 5, 10, 14, 15, 20]``, so an automaton hit
on letters 3..10 (``kvcache``) is known to start at a word (piece 1), to end at one (after piece
2), and to hold one word break, at offset 2 of the hit.

ASCII text without TeX, the common case, is split by one C-level `findall`; other text is read
word by word by `tokenize`. Both readings give the same words (tested property by property).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

from digest.models import fold

# What may separate the words of one term in the text: whitespace, hyphens, slashes, `~` (TeX's
# unbreakable space), math delimiters and TeX braces. The one definition; the regular
# expressions below are built from it.
JOINERS = " \t\n\r\f\v\x1c\x1d\x1e\x1f-/~${}"  # the ASCII whitespace of `\\s`, too
_UNICODE_HYPHENS = "\u2010\u2011\u2012\u2013"
_JOINER_CLASS = "".join(map(re.escape, JOINERS))  # inside [...]

# A word: letters and digits (no underscore, so `V_1` is two words), with optional possessives
# `'s` (`GPT's's` reads `GPT`) that are folded away. LaTeX commands (`\texttt`) are skipped, not
# read as words. Combining marks (decomposed accents, `nai\u0308ve`) belong to the word they
# follow. Soft hyphens are invisible hints for line breaking, so they belong to the word too.
# TeX accents and special letters (`na\\"ive`, `Fr\\'{e}chet`, `S{\\o}ren`) are read as letters.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u00ad"
_TEX_LETTER = (
    r"\\[`'^\"~=.][{]?[A-Za-z][}]?|[{]\\[`'^\"~=.][{]?[A-Za-z][}]?[}]|\\[Hcuvkdb][{][A-Za-z][}]"
    r"|[{]\\(?:ss|aa|AA|ae|AE|oe|OE|[oOlLij])[}]|\\(?:ss|aa|AA|ae|AE|oe|OE|[oOlLij])(?:[{][}]|(?![A-Za-z]))"
)
_WORD = re.compile(
    rf"((?:[^\W_]|{_TEX_LETTER})(?:[^\W_]|[{_MARKS}]|{_TEX_LETTER})*)(?:['’][sS](?![^\W_]))*"
    r"|\\[A-Za-z]+"
)
# `_WORD` on lower-cased ASCII text without backslashes: words, and runs of what is neither a
# word nor a joiner (separators). Possessives are dropped first.
_ASCII_PIECE = re.compile(rf"[a-z0-9]+|[^a-z0-9{_JOINER_CLASS}]+")
# The apostrophe first, so `re` can look for it as a literal: with the lookbehind in front it
# took 45 µs an abstract, now 1.4 µs.
ASCII_POSSESSIVE = re.compile(r"'[sS](?![A-Za-z0-9])(?<=[A-Za-z0-9]'[sS])")
# The entries of the ASCII reading in the original text, for their offsets.
_ASCII_ENTRY = re.compile(rf"[A-Za-z0-9]+(?:'[sS](?![A-Za-z0-9]))*|[^A-Za-z0-9{_JOINER_CLASS}]+")
# Math delimiters or braces between two letters (`$ω$Test`, `$k$NN`; a mark ends a word too):
# such text takes the careful reading. The delimiter comes first so `re` looks only at
# delimiters (starting with the letter class it tried every position: 109 µs an abstract with
# math, now 21).
_INNER_MATH = re.compile(rf"[${{}}](?<=(?:[^\W_]|[{_MARKS}])[${{}}])[${{}}]*(?=[^\W_])")
_TEX_MARKUP = re.compile(r"\\[`'^\"~=.Hcuvkdb]|[\\{}]")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_INNER_JOINERS = re.compile(r"[${}]+")
# Unicode text without TeX as pieces: a word with its possessives (group 1, as `_WORD` reads it),
# or a run of what is neither a word nor a joiner (group 2: a separator). Joiners are skipped.
_UNICODE_PIECE = re.compile(
    rf"((?:[^\W_])(?:[^\W_]|[{_MARKS}])*)(?:['’][sS](?![^\W_]))*"
    rf"|((?:[^\w\s{_JOINER_CLASS}{_UNICODE_HYPHENS}]|_)+)"
)
# Folding can turn a letter into letters and punctuation (`Ŀ` -> `l·`, `½` -> `1⁄2`): dropped.
_NOT_WORD = re.compile(r"[\W_]+")
_JOINER = re.compile(rf"[\s{_JOINER_CLASS}{_UNICODE_HYPHENS}]*")  # any Unicode space
SEPARATOR = ","


def norm_word(word: str) -> str:
    """A word's folded form: TeX markup read as its letters, case and accents dropped."""
    if "\\" in word or "{" in word:
        word = _TEX_MARKUP.sub("", word.replace("\\aa", "a").replace("\\AA", "A"))
    return word.lower() if word.isascii() else _NOT_WORD.sub("", fold(word))


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a field: its folded form and where it sits in the original text."""

    norm: str
    start: int
    end: int
    joined: bool  # True when only joiners separate it from the previous word


def tokenize(text: str) -> tuple[Token, ...]:
    """Split `text` into folded words with their offsets; LaTeX commands are skipped, and TeX
    braces or math delimiters inside a word do not split it (`{\\bf P}ost` reads `Post`,
    `$ω$Test` reads `ωTest`)."""
    tokens: list[Token] = []
    last_end = 0
    for found in _WORD.finditer(text):
        word = found.group(1)
        if word is None:
            continue  # a LaTeX command
        # Every TeX letter holds a backslash (`{\o}` too): without one a word is plain.
        norm = word.lower() if word.isascii() and "\\" not in word else norm_word(word)
        if not norm:
            continue
        start, end = found.span()
        gap = text[last_end:start]
        last_end = end
        kind = _JOINS if gap == " " else _gap_kind(gap)  # a single space: by far the most common
        if kind is _GLUES and tokens:
            previous = tokens[-1]
            tokens[-1] = Token(previous.norm + norm, previous.start, end, previous.joined)
            continue
        tokens.append(Token(norm, start, end, kind is _JOINS and bool(tokens)))
    return tuple(tokens)


# What the text between two words does (`_gap_kind`).
_GLUES, _JOINS, _SEPARATES = "glues", "joins", "separates"


def _gap_kind(gap: str) -> str:
    """Whether the text between two words glues them into one (only math delimiters or TeX
    braces once LaTeX commands are dropped: `$ω$Test`), joins them (only joiners: one term may
    run across it) or separates them."""
    if "\\" in gap:
        gap = _LATEX_COMMAND.sub("", gap)
    if gap and _INNER_JOINERS.fullmatch(gap):
        return _GLUES
    return _JOINS if _JOINER.fullmatch(gap) else _SEPARATES


def without_tex(text: str) -> bool:
    """No TeX markup and no math inside a word: a fast reading reads it right."""
    if "\\" in text or "{" in text or "}" in text:
        return False
    return "$" not in text or _INNER_MATH.search(text) is None


_TEX_LETTER_ANYWHERE = re.compile(_TEX_LETTER)


def tex_free(text: str) -> str | None:
    """`text` with its LaTeX commands dropped and other backslashes made separators, when
    that reads exactly as the careful reading reads the TeX (no TeX letters such as `\\"o`, no
    math delimiters or braces joining two letters once the commands are gone); else None."""
    if _TEX_LETTER_ANYWHERE.search(text):
        return None
    # A backslash left (`\\%`, `\\0`) is not a word's letter: a separator, as in `tokenize`.
    # Math joins two letters when only delimiters stand between them once the commands are
    # gone (`a$\\alpha$b` reads `ab`); otherwise a command between words is a joiner.
    if _INNER_MATH.search(_LATEX_COMMAND.sub("", text).replace("\\", ",")):
        return None
    return _LATEX_COMMAND.sub(" ", text).replace("\\", ",")


def _unicode_norms(text: str) -> list[str] | None:
    """The careful reading's words of Unicode text without TeX, from one C-level `findall`:
    the same entries `tokenize` gives (one separator per gap that is not only joiners), so
    word indexes agree and character offsets can come from `tokenize` later, only for fields
    that make a digest. None when folding leaves a word empty (the careful reading decides)."""
    norms: list[str] = []
    pending = False  # a separator is owed before the next word
    for word, _separator in _UNICODE_PIECE.findall(text):
        if not word:
            pending = bool(norms)
            continue
        norm = word.lower() if word.isascii() else norm_word(word)
        if not norm:
            return None
        if pending:
            norms.append(SEPARATOR)
            pending = False
        norms.append(norm)
    return norms


def _ascii_norms(text: str) -> list[str]:
    """The words and separators of plain ASCII text, by one C-level `findall`."""
    if "'" in text:
        text = ASCII_POSSESSIVE.sub("", text)
    return _ASCII_PIECE.findall(text.lower())


def _careful_reading(text: str) -> tuple[list[str], tuple[list[int], list[int]]]:
    """`tokenize`'s words with a separator wherever a gap is not only joiners, and where each
    entry starts and ends in the text."""
    norms: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for token in tokenize(text):
        if norms and not token.joined:
            norms.append(SEPARATOR)
            starts.append(token.start)
            ends.append(token.start)
        norms.append(token.norm)
        starts.append(token.start)
        ends.append(token.end)
    return norms, (starts, ends)


class TokenSpan(NamedTuple):
    """An occurrence as word indexes into `Words.norms`: its first and last piece."""

    first: int
    last: int


class Words:
    """A field read once: folded words (`norms`), a separator entry wherever something other
    than a joiner stands between two words, and the pieces concatenated (`letters`) with the
    offset where each piece starts (`offsets`, one more entry: the end). Character offsets into
    the original text are worked out only for fields that make a digest (`char_spans`)."""

    __slots__ = ("_careful", "_spans", "letters", "norms", "offsets", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._spans: tuple[list[int], list[int]] | None = None
        plain = without_tex(text)
        # Offsets come from the careful reading, or from `_ascii_offsets` for plain ASCII.
        self._careful = not (plain and text.isascii())
        self.norms: list[str] = self._careful_norms(plain) if self._careful else _ascii_norms(text)
        self._finish()

    def _careful_norms(self, plain: bool) -> list[str]:
        """The words of text that is not plain ASCII: by one C-level `findall` when it has no
        TeX, or none left once its commands are dropped (`tex_free`: `\\times`, `\\%`,
        `{\\bf x}`, `$H$`); else by the careful reading, whose offsets are kept."""
        text = self.text if plain else tex_free(self.text)
        norms = None if text is None else _unicode_norms(text)
        if norms is None:
            norms, self._spans = _careful_reading(self.text)
        return norms

    def _finish(self) -> None:
        self.letters = "".join(self.norms)
        self.offsets = [0, *accumulate(map(len, self.norms))]

    def char_spans(self, found: Sequence[TokenSpan]) -> tuple[tuple[int, int], ...]:
        """Word-index occurrences as character offsets into the text."""
        starts, ends = self._char_offsets()
        return tuple([(starts[first], ends[last]) for first, last in found])

    def spans_of(self, found: Mapping[int, int]) -> tuple[tuple[int, int], ...]:
        """A term's occurrences as a scan finds them (first word -> last word, `scan.Found`)
        as character offsets into the text, in text order: `char_spans(occurrences(found))`
        without an occurrence made for each. The ingest-time scan of bench's lab day (2,000
        papers, 248,399 hits, best of 5): 1.43 -> 1.31 s, the same scans."""
        starts, ends = self._char_offsets()
        return tuple([(starts[first], ends[last]) for first, last in sorted(found.items())])

    def _char_offsets(self) -> tuple[list[int], list[int]]:
        """Where each entry of `norms` starts and ends in the text, worked out once."""
        if self._spans is None:
            self._spans = _careful_reading(self.text)[1] if self._careful else self._ascii_offsets()
        return self._spans

    def _ascii_offsets(self) -> tuple[list[int], list[int]]:
        """Where each entry of the fast reading starts and ends in the text."""
        # One C-level scan for the entries only (a word with its possessives, or a separator
        # run): 0.30 -> 0.12 ms a field against splitting every piece and filtering the joiners.
        spans = [found.span() for found in _ASCII_ENTRY.finditer(self.text)]
        return [start for start, _ in spans], [end for _, end in spans]
