"""The scan: one Aho-Corasick automaton over every form of every term of every profile.

Each field is read once (`text.Words`) and its `letters` (the folded words, concatenated) are
scanned once, in Rust, by an automaton (ahocorasick-rs) that holds every spelling of every term of
the run. A hit says "this form ends here"; the rules are cheap checks on it, with `offsets`:

- whole words: the hit must start where a piece starts, and (unless the term is a prefix,
  `quantiz*`) end where one ends; `RL` inside ``url`` starts mid-word and is dropped;
- no punctuation inside: separators are never letters, so no form can run across one;
- split compounds: word breaks of the text inside the hit are fine between real words
  (``pre training`` for ``pretraining``), but next to a one-letter or function word only where
  the form's own words meet (``R/L`` is not ``RL``, ``for getting`` is not ``forgetting``).

Worked example: terms ``KV cache`` and ``RL`` over ``url of kv-caches``: the pieces are
``url|of|kv|caches`` at offsets 0, 3, 5, 7 (end 13). The automaton reports ``rl`` ending at 2
(starts at 1: not a piece start, dropped) and ``kvcaches`` (a form of ``KV cache``) at 5..12:
it starts at piece 2, ends with piece 3, and its one inner break (offset 2) is where the form's
words meet. The occurrence is `TokenSpan(2, 3)`. One occurrence is kept per term and starting
word, the shortest (``KV cache`` over ``kv cache s`` is ``kv cache``).
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from digest.match.terms import FUNCTION_WORDS, Form, Term, TermKey, term_forms
from digest.match.text import TokenSpan, Words

if TYPE_CHECKING:
    import ahocorasick_rs


class Entry(NamedTuple):
    """What the automaton stores for one spelling: which term, and how to check a hit."""

    key: TermKey
    prefix: bool
    boundaries: tuple[int, ...]  # where the spelling's words meet, in order


# How a scanner learns a term's spellings (`terms.term_forms`, or a term book's stored ones).
Speller = Callable[[Term], tuple[Form, ...]]

# Term -> its occurrences, first word -> last word (`occurrences` puts them in text order).
Found = dict[TermKey, dict[int, int]]


def occurrences(starts: dict[int, int]) -> list[TokenSpan]:
    """A term's occurrences in one field, in text order."""
    return [TokenSpan(first, last) for first, last in sorted(starts.items())]


def _automaton(patterns: Iterable[str]) -> ahocorasick_rs.AhoCorasick:
    import ahocorasick_rs  # lazily: `digest --help` must not pay for it

    # The library's own choice of automaton: a DFA over 100k spellings costs seconds and
    # hundreds of MB to build for little gain in scanning.
    return ahocorasick_rs.AhoCorasick(patterns)


class Scanner:
    """Every distinct term of a run in one automaton, so a field is scanned once for all."""

    def __init__(self, terms: Iterable[Term], spell: Speller = term_forms) -> None:
        self._unique = _distinct_usable(terms)
        self._spell = spell  # a term's spellings: worked out, or as a term book stored them
        self.keys = frozenset(self._unique)
        # Built on the first scan: matching from stored hits never scans, and the spellings
        # and the automaton are most of what compiling a run costs.
        self._built = False
        self._entries: tuple[tuple[Entry, ...], ...] = ()
        self._prefixes: tuple[tuple[Entry, ...], ...] = ()
        self._automaton: ahocorasick_rs.AhoCorasick | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def prepare(self) -> None:
        """Build the automaton now, not at the first scan (a batch that will scan)."""
        if not self._built:
            self._build()

    def _build(self) -> None:
        """Spell every term and build the automaton over the spellings."""
        entries = _spelling_table(self._unique, self._spell)
        # Pattern number -> what to check; the automaton itself holds only the letters. A hit
        # that ends inside a word can only be a prefix term's: those entries on their own.
        self._entries = tuple(map(tuple, entries.values()))
        self._prefixes = tuple(map(_prefix_entries, self._entries))
        self._automaton = _automaton(entries) if entries else None
        self._built = True

    def _hits(self, words: Words) -> list[tuple[int, int, int]]:
        """The automaton's raw hits in the field's letters: (pattern, start, stop), by stop."""
        if not self._built:
            self._build()
        if self._automaton is None or not words.letters:
            return []
        return self._automaton.find_matches_as_indexes(words.letters, overlapping=True)

    def scan(self, words: Words) -> Found:
        """Every occurrence of every term in the field, one per starting word, in text order."""
        found = self._hits(words)
        if not found:
            return {}
        offsets, norms = words.offsets, words.norms
        # Where each piece starts -> its index: most hits start inside a word and are dropped
        # by one lookup.
        piece_at = {offset: piece for piece, offset in enumerate(offsets)}
        best: Found = {}
        table, prefixes = self._entries, self._prefixes
        for pattern, start, stop in found:
            first = piece_at.get(start)
            if first is None:
                continue  # inside a word: `rl` in `url`
            after = piece_at.get(stop)
            if after is not None:
                entries, last = table[pattern], after - 1
            else:  # it ends inside a word (`cache` in `cached`): only a prefix term holds
                entries, last = prefixes[pattern], bisect_right(offsets, stop, first) - 1
            for entry in entries:
                if last > first and not _may_join(entry.boundaries, norms, offsets, first, last):
                    continue
                starts = best.setdefault(entry.key, {})
                if last < starts.get(first, _NO_WORD):  # keep the shortest
                    starts[first] = last
        return best


# Beyond every word index: what `scan` compares a first occurrence with.
_NO_WORD = sys.maxsize


def _prefix_entries(entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """The entries of prefix terms (`quantiz*`) among a spelling's entries."""
    return tuple(entry for entry in entries if entry.prefix)


def _distinct_usable(terms: Iterable[Term]) -> dict[TermKey, Term]:
    """The usable terms by key, the first of those that fold alike."""
    unique: dict[TermKey, Term] = {}
    for term in terms:
        if term.usable:
            unique.setdefault(term.key, term)
    return unique


def _spelling_table(unique: dict[TermKey, Term], spell: Speller) -> dict[str, list[Entry]]:
    """Spelling -> its entries, in order and without repeats.

    Kept small, as a lab's book has 177k spellings: one list each (most hold one entry;
    `in` over it is cheap), and word breaks as the forms' tuples, equal ones shared. Against
    an ordered set (a dict) per spelling and a frozenset per entry, the scanner's objects
    went from 84 to 46 MB (peak while building 140 -> 80 MB; tracemalloc)."""
    entries: defaultdict[str, list[Entry]] = defaultdict(list)
    cuts: dict[tuple[int, ...], tuple[int, ...]] = {}
    for key, term in unique.items():
        for form in spell(term):
            entry = Entry(key, term.prefix, cuts.setdefault(form.boundaries, form.boundaries))
            stored = entries[form.letters]
            if entry not in stored:
                stored.append(entry)
    return entries


def _may_join(
    boundaries: tuple[int, ...], norms: list[str], offsets: list[int], first: int, last: int
) -> bool:
    """Whether the text's word breaks inside a hit are allowed: anywhere between real words,
    only where the form's own words meet next to a one-letter or function word."""
    start = offsets[first]
    for piece in range(first + 1, last + 1):
        before, word = norms[piece - 1], norms[piece]
        short = len(before) < 2 or len(word) < 2 or before in FUNCTION_WORDS
        if (short or word in FUNCTION_WORDS) and offsets[piece] - start not in boundaries:
            return False
    return True
