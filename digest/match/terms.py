"""Compiling terms: a keyword's folded words, its prefix star, and the spellings that match it.

A term is read with the same reader as the text (`text.Words`), so it folds alike: ``KV-Caches``
compiles to the words ``("kv", "caches")``, the letters ``"kvcaches"`` and one word boundary, at
offset 2. Spellings that fold alike share one `TermKey`, so the automaton holds each once.

Its forms are every combination of each word's singular and plural spellings: for
``mixture of experts`` these are ``mixture|of|experts``, ``mixtures|of|experts``,
``mixture|of|expert`` and ``mixtures|of|expert`` (function words such as ``of`` never vary), each
with its own boundaries. A word's spellings come from lemminflect's English dictionary when it
knows the word (``analysis``/``analyses``, ``index``/``indices``, ``corpus``/``corpora``; and
``status`` has no singular ``statu``, ``news`` none ``new``); a word it does not know (``LLM``,
``KV``) takes the regular endings (`s`, `es`, `y`/`ies`), except where the dictionary says the
result is another word's form. A prefix term (``quantiz*``) has one form, its letters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, product
from typing import NamedTuple

from digest.match.text import Words
from digest.memo import pure_memo

MAX_TERM_CHARS = 200
# More combinations than this and only the last words vary (their product stays under it).
_MAX_FORMS = 16
_SIBILANTS = ("s", "x", "z", "ch", "sh", "o")
# Short function words never join into a one-word term: `for getting` is not `forgetting`,
# `to get her` is not `together` (a keyword of several words may still contain them). They
# have no plural either.
FUNCTION_WORDS = frozenset(
    "a an and as at be by for her his in is it its not of or our the to us we with".split()  # noqa: SIM905
)


class TermKey(NamedTuple):
    """A term as the automaton knows it: its letters, whether it is a prefix (`quantiz*`), and
    where its words meet (one-letter and function words join only there: `R/L` for `R L`)."""

    letters: str
    prefix: bool
    boundaries: tuple[int, ...]


class Form(NamedTuple):
    """One spelling of a term: its letters and where its words meet in them."""

    letters: str
    boundaries: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Term:
    """A keyword compiled for lookup: its folded words, letters with word breaks removed."""

    raw: str
    letters: str
    words: int
    prefix: bool
    boundaries: tuple[int, ...] = ()  # where its words meet, as offsets into `letters`
    parts: tuple[str, ...] = ()  # its folded words
    # The identity of a term in the automaton: spellings that fold alike share one entry.
    key: TermKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", TermKey(self.letters, self.prefix, self.boundaries))

    @property
    def usable(self) -> bool:
        """False when nothing is left after normalisation (`"--"`, `"*"`)."""
        return bool(self.letters)


def usable(terms: Iterable[Term]) -> tuple[Term, ...]:
    """The terms that can match something (`Term.usable`), in order."""
    return tuple(t for t in terms if t.usable)


@pure_memo(maxsize=1 << 17)
def compile_term(raw: str) -> Term:
    """Compile a keyword: fold it, note a trailing `*`, and drop its word breaks."""
    text = raw.strip()[:MAX_TERM_CHARS]
    prefix = text.endswith("*")
    words = tuple(w for w in Words(text.rstrip("*")).norms if w[0].isalnum())
    boundaries = tuple(accumulate(len(w) for w in words[:-1]))
    return Term(raw, "".join(words), len(words), prefix, boundaries, words)


def is_short(word: str) -> bool:
    """A one-letter word or a function word: no piece of a closed compound."""
    return len(word) < 2 or word in FUNCTION_WORDS


@pure_memo(maxsize=1 << 16)
def _lemmas(word: str) -> Mapping[str, tuple[str, ...]]:
    """lemminflect's lemmas of `word` by part of speech; empty when it does not know it."""
    import lemminflect  # lazily: its dictionary takes most of a second to load

    found: dict[str, tuple[str, ...]] = lemminflect.getAllLemmas(word)
    return found


@pure_memo(maxsize=1 << 16)
def _noun_spellings(lemma: str) -> tuple[str, ...]:
    """The singular and plural spellings lemminflect knows for the noun `lemma`."""
    import lemminflect

    found: dict[str, tuple[str, ...]] = lemminflect.getAllInflections(lemma, upos="NOUN")
    return tuple(form for forms in found.values() for form in forms)


class _Ending(NamedTuple):
    """A regular English ending rule: a word ending in one of `endings` (but none of `unless`),
    at least `shortest` letters long, has a form with its last `drop` letters replaced by `add`."""

    endings: tuple[str, ...]
    shortest: int
    drop: int
    add: str
    unless: tuple[str, ...] = ()

    def form(self, word: str) -> str | None:
        """The other form of `word` by this rule, or None when the rule does not apply."""
        if (
            len(word) < self.shortest
            or not word.endswith(self.endings)
            or word.endswith(self.unless)
        ):
            return None
        return word[: len(word) - self.drop] + self.add


# Beyond `word + "s"`: `-es` only where English writes it (`box`/`boxes`), `y`/`ies` both ways,
# and the singulars of `-es` and `-s` (not of `-ss`: `class`).
_ENDINGS = (
    _Ending(_SIBILANTS, 0, 0, "es"),
    _Ending(("y",), 3, 1, "ies"),
    _Ending(("ies",), 5, 3, "y"),
    _Ending(("es",), 5, 2, ""),
    _Ending(("s",), 4, 1, "", unless=("ss",)),
)


def _regular_forms(word: str) -> set[str]:
    """Singular and plural by the regular English endings (for words no dictionary knows)."""
    forms = {word + "s"}
    for rule in _ENDINGS:
        form = rule.form(word)
        if form is not None:
            forms.add(form)
    return forms


@pure_memo(maxsize=1 << 16)
def plural_forms(letters: str) -> frozenset[str]:
    """Singular and plural spellings of a word (`policy`/`policies`, `analysis`/`analyses`),
    itself included; only real pairs (`status` has no singular `statu`)."""
    if letters in FUNCTION_WORDS:
        return frozenset({letters})
    known = _lemmas(letters)
    if known:
        return frozenset({letters, *_dictionary_forms(known)})
    return frozenset({letters, *_regular_pairs(letters)})


def _dictionary_forms(known: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The noun lemmas of a word the dictionary knows, with all their spellings."""
    forms: set[str] = set()
    for lemma in known.get("NOUN", ()):
        forms.add(lemma)
        forms.update(_noun_spellings(lemma))
    return forms


def _regular_pairs(letters: str) -> set[str]:
    """The regular forms of a word the dictionary does not know, except those it knows as
    another word's form (`statu` + `s` is not a pair)."""
    forms: set[str] = set()
    for candidate in _regular_forms(letters):
        lemmas = _lemmas(candidate)
        if not lemmas or letters in lemmas.get("NOUN", ()):
            forms.add(candidate)
    return forms


@pure_memo(maxsize=1 << 16)
def _spellings(word: str) -> tuple[str, ...]:
    """`plural_forms` in a fixed order, the word itself first."""
    return (word, *sorted(plural_forms(word) - {word}))


def term_forms(term: Term) -> tuple[Form, ...]:
    """Every spelling of `term` that matches it: each word singular or plural (see above)."""
    if not term.usable:
        return ()
    if term.prefix:
        return (Form(term.letters, term.boundaries),)
    if len(term.parts) == 1:  # most terms: no boundaries to work out
        return tuple(Form(spelling, ()) for spelling in _spellings(term.letters))
    forms = (_form(words) for words in product(*_choices(term.parts)))
    return tuple(dict.fromkeys(forms))


def _choices(parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Each word's spellings, the last words first while their product stays within
    `_MAX_FORMS` (the words before that keep their one spelling)."""
    choices: list[tuple[str, ...]] = [(part,) for part in parts]
    total = 1
    for position in reversed(range(len(parts))):
        spellings = _spellings(parts[position])
        if total * len(spellings) > _MAX_FORMS:
            break
        total *= len(spellings)
        choices[position] = spellings
    return choices


def _form(words: tuple[str, ...]) -> Form:
    """The spelling made of `words`, with where they meet."""
    return Form("".join(words), tuple(accumulate(len(w) for w in words[:-1])))
