"""The term book: every term the instance's profiles have ever had, numbered once for good.

Stored hits (`hitscan`) name terms by number, not by their letters, so a hit costs a few bytes.
The numbers must mean the same term for as long as any stored hit uses them, so the book only
grows: a term a profile drops keeps its number (its hits are ignored, since no profile asks for
it), and a term a profile adds gets the next number. A paper's stored hits say how much of the
book they cover (`covered`: the first `covered` numbers); when the book grows, only the new
terms are scanned over the papers that need them.

A `TermKey` holds everything a term's spellings are made from (its letters, where its words
meet, whether it is a prefix), so the book stores keys alone and rebuilds each `Term` from its
key (`term_of`) without the keyword as written.

Worked example: profiles with ``KV cache`` and ``RL`` make the book
``[("kvcache", False, (2,)), ("rl", False, ())]``, numbers 0 and 1. Adding ``quantiz*`` to one
profile appends ``("quantiz", True, ())`` as number 2; a paper scanned before covers 2 terms,
so only number 2 is scanned over it. Dropping ``RL`` later changes nothing in the book.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from digest.match.terms import Form, Term, TermKey


@dataclass(frozen=True, slots=True)
class TermBook:
    """The numbered terms: `keys[n]` is term number n."""

    keys: tuple[TermKey, ...] = ()
    numbers: Mapping[TermKey, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", {key: n for n, key in enumerate(self.keys)})

    def __len__(self) -> int:
        return len(self.keys)

    def with_terms(self, keys: Iterable[TermKey]) -> TermBook:
        """This book with every key of `keys` it lacks appended, in order (itself if none)."""
        added = [key for key in dict.fromkeys(keys) if key not in self.numbers]
        return TermBook((*self.keys, *added)) if added else self

    def covers(self, keys: Iterable[TermKey]) -> bool:
        """True when every key of `keys` has a number."""
        return all(key in self.numbers for key in keys)


def term_of(key: TermKey) -> Term:
    """The term a key stands for, its words split where they meet (as `compile_term` made it:
    the keyword as written is not kept, and spellings do not need it)."""
    cuts = (0, *key.boundaries, len(key.letters))
    parts = tuple(key.letters[a:b] for a, b in pairwise(cuts))
    return Term(key.letters, key.letters, len(parts), key.prefix, key.boundaries, parts)


def book_digest(keys: Sequence[TermKey]) -> str:
    """A short hash of an ordered list of term keys (what a set of stored hits was made for)."""
    hashed = hashlib.blake2b(digest_size=12)
    for key in keys:
        boundaries = ",".join(map(str, key.boundaries))
        hashed.update(f"{key.letters}\x1f{int(key.prefix)}\x1f{boundaries}\x1e".encode())
    return hashed.hexdigest()


def forms_text(forms: Iterable[Form]) -> str:
    """A term's spellings as the store writes them: `letters:boundaries` joined by `;`
    (``kvcache:2;kvcaches:2``). Folded letters are letters and digits only."""
    return ";".join(f"{form.letters}:{boundaries_text(form.boundaries)}" for form in forms)


def forms_from_text(text: str) -> tuple[Form, ...]:
    """The spellings `forms_text` wrote."""
    forms = []
    for item in text.split(";") if text else ():
        letters, _, cuts = item.partition(":")
        forms.append(Form(letters, boundaries_from_text(cuts)))
    return tuple(forms)


def boundaries_text(boundaries: tuple[int, ...]) -> str:
    """A key's word boundaries as the store writes them (`"2,5"`)."""
    return ",".join(map(str, boundaries))


def boundaries_from_text(text: str) -> tuple[int, ...]:
    """The boundaries `boundaries_text` wrote."""
    return tuple(map(int, text.split(","))) if text else ()
