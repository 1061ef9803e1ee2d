"""Authors: reading written names and deciding whether two of them are the same person.

A name is folded (case, accents, periods and commas dropped; `Last, First` turned around) into
first name, middle names and last name. Two names are the same person (DESIGN.md, README's
author rules) when the last names are equal, the first names are equal or one is an initial of
the other, and the middle names may be missing on either side but never conflict.

Worked example: following ``C. Karen Liu`` (first ``c``, middle ``karen``, last ``liu``):

- ``C. K. Liu`` and ``C. Liu`` are her (initials agree, a missing middle name is fine);
- ``Chengjie Liu`` is not: the followed name's only full given name is its middle one, and a
  listing that writes a different full first name without it names someone else;
- ``Karen Liu`` is not either (first names `c` and `karen` conflict): add it to `aliases`.

The matcher indexes followed names by last name and first initial, so a listing's author costs
one dictionary lookup unless someone follows a person of that last name and initial.

Author keys stored at ingest (`author_keys`): every reading's (last name, first initial) of each
of a paper's authors, as a number, stored with the paper's hits. A pass in a new process then
reads a name only where such a number is one somebody follows (`AuthorIndex.hits` with the
stored keys), instead of every author of every paper. Worked example: the authors
``("Ada Lovelace", "Charles Babbage")`` store the keys ``[(0, code("lovelace", "a")), (1,
code("babbage", "c"))]``; a profile following ``A. Lovelace`` indexes ``code("lovelace", "a")``,
so only ``Ada Lovelace`` is read and compared.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from digest.memo import pure_memo
from digest.models import FollowedAuthor, fold

_NAME_SPLIT = re.compile(r"[\s.\-‐‑]+")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
# A hyphen between letters; the hyphen first, so `re` looks only at hyphens (twice as fast).
_NAME_HYPHEN = re.compile(r"[\-‐‑](?<=[^\W\d_][\-‐‑])(?=[^\W\d_])")


@dataclass(frozen=True, slots=True)
class Name:
    """A person's name, folded: first name, middle names or initials, last name."""

    first: str
    middles: tuple[str, ...]
    last: str


@pure_memo(maxsize=1 << 16)
def parse_name(name: str, *, close_hyphens: bool = False) -> Name | None:
    """Read `First Middle Last` or `Last, First Middle`, ignoring case, accents and periods.

    Hyphens split names (`Seyed-Iman` = `Seyed Iman`), or with `close_hyphens` join them
    (`Han-Byul` = `Hanbyul`)."""
    text = fold(name).strip()
    if close_hyphens:
        text = _NAME_HYPHEN.sub("", text)
    if "," in text:
        text = _turned_around(text)
    words = _words_of_name(text)
    if len(words) < 2:
        return Name("", (), words[0]) if words else None
    return Name(words[0], tuple(words[1:-1]), words[-1])


def _turned_around(text: str) -> str:
    """`Last, First Middle` written `First Middle Last` (later commas are spaces)."""
    last_part, _, first_part = text.partition(",")
    return f"{first_part.replace(',', ' ')} {last_part}"


def _words_of_name(text: str) -> list[str]:
    """The words of a folded name, suffixes (`Jr`) dropped and apostrophes closed up."""
    return [
        w.replace("'", "").replace("’", "")
        for w in _NAME_SPLIT.split(text)
        if w and w not in _SUFFIXES
    ]


@pure_memo(maxsize=1 << 16)
def name_readings(name: str) -> tuple[Name, ...]:
    """Every way to read a name: hyphens as breaks and, when it has any, closed up."""
    split = parse_name(name)
    if split is None:
        return ()
    closed = parse_name(name, close_hyphens=True) if _NAME_HYPHEN.search(name) else None
    return (split,) if closed is None or closed == split else (split, closed)


def _given_names_agree(a: str, b: str) -> bool:
    """Equal, or one is an initial of the other."""
    if not a or not b:
        return a == b  # a bare last name only matches another bare last name
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return a == b


def _goes_by_middle_name(a: Name, b: Name) -> bool:
    """`a` is an initial plus a full middle name (`C. Karen Liu`) and `b` a different full
    first name with no middle names (`Chengjie Liu`): two people."""
    return (
        len(a.first) == 1
        and any(len(m) > 1 for m in a.middles)
        and len(b.first) > 1
        and not b.middles
    )


def names_match(a: Name, b: Name) -> bool:
    """Same person by DESIGN.md's rules: last names equal, first names compatible, and middle
    names possibly missing on either side but never conflicting: the shorter list of middle
    names must appear, in order, in the longer (`Gido van de Ven` = `Gido M. van de Ven`)."""
    if a.last != b.last or not _given_names_agree(a.first, b.first):
        return False
    if _goes_by_middle_name(a, b) or _goes_by_middle_name(b, a):
        return False
    return _middles_agree(a.middles, b.middles)


def _middles_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """The shorter list of middle names appears, in order, in the longer (each name equal or
    an initial of its partner)."""
    fewer, more = sorted((a, b), key=len)
    remaining = iter(more)
    return all(any(_given_names_agree(x, y) for y in remaining) for x in fewer)


def same_person(a: str, b: str) -> bool:
    """True when two written names are the same person by the rules of `names_match`."""
    return any(names_match(x, y) for x in name_readings(a) for y in name_readings(b))


def _name_words(written: str) -> list[str] | None:
    """Every word a reading of `written` could take its last name from (`parse_name` splits
    the same way): a name none of whose words anyone follows as a last name needs no reading,
    and most of a paper's authors are such names. A hyphenated name may close up into a last
    name of its own: None, read it."""
    if _NAME_HYPHEN.search(written):
        return None
    text = fold(written).replace(",", " ").replace("'", "").replace("’", "")
    return _NAME_SPLIT.split(text)


class AuthorHit(NamedTuple):
    """A followed author found among a paper's authors."""

    position: int  # where the name stands in the paper's author list
    rank: int  # where the followed spelling stands in the profile (name, then aliases)
    author: FollowedAuthor
    written: str  # the name as the paper writes it


class FollowedName(NamedTuple):
    """One reading of one spelling of a profile's followed author."""

    profile: int
    rank: int
    author: FollowedAuthor
    name: Name


def followed_names(authors: Iterable[FollowedAuthor]) -> list[tuple[FollowedAuthor, Name]]:
    """Every reading of every spelling (name and aliases) of the followed authors, in order."""
    return [(a, n) for a in authors for spelling in a.names for n in name_readings(spelling)]


# The layout of stored author keys: bump it when `name_readings` or `_key_code` changes, and keys
# stored before are read as missing (every author read) until a refresh stores them again.
_KEYS_LAYOUT = 1
_HEADER = 3  # the layout, then the 8-byte digest of the author list they were made from
KEYS_START = array("I", (_KEYS_LAYOUT,)).tobytes()  # how stored keys of this layout begin


def _key_code(last: str, initial: str) -> int:
    """A stored key's number: a CRC of (last name, first initial), the same in every process.
    Two keys may share a number: the names are then read and compared, as without keys."""
    return zlib.crc32(f"{last}\x1f{initial}".encode("utf-8", "surrogatepass"))


def _header(authors: Sequence[str]) -> array[int]:
    """The first integers of `author_keys`: the layout and a digest of the author list, so
    keys are used only for the authors they were made from (a paper whose authors changed
    since is read in full)."""
    text = "\x1e".join(authors).encode("utf-8", "surrogatepass")
    header = array("I", (_KEYS_LAYOUT,))
    header.frombytes(hashlib.blake2b(text, digest_size=8).digest())
    return header


def author_keys(authors: Sequence[str]) -> bytes:
    """A paper's author keys, stored with its hits at ingest (`AuthorIndex.hits`): the header
    (`_header`), then for each reading of each author, in listing order, its position and
    `_key_code`, as unsigned 32-bit integers in native order."""
    numbers = _header(authors)
    for position, written in enumerate(authors):
        codes = {_key_code(name.last, name.first[:1]) for name in name_readings(written)}
        for code in sorted(codes):
            numbers.extend((position, code))
    return numbers.tobytes()


# Written names an `AuthorIndex` keeps the answer for: authors repeat across papers (a year of
# bench's listings names each busy person dozens of times), and a name none of whose words anyone
# follows is still split and folded to learn that. Cleared when full, so memory stays bounded:
# 2**17 of bench's names take 13 MB (tracemalloc, the keys' own copies included).
_NAMED_LIMIT = 1 << 17
_NO_ONE: tuple[FollowedName, ...] = ()


class AuthorIndex:
    """Every profile's followed names by last name and first initial (first names must agree,
    so they share their first letter: `Wang` followed by hundreds is looked at by initial)."""

    def __init__(self, profiles: Sequence[Sequence[tuple[FollowedAuthor, Name]]]) -> None:
        self._by_last: defaultdict[tuple[str, str], list[FollowedName]] = defaultdict(list)
        for number, names in enumerate(profiles):
            for rank, (author, name) in enumerate(names):
                key = (name.last, name.first[:1])
                self._by_last[key].append(FollowedName(number, rank, author, name))
        self._lasts = frozenset(last for last, _ in self._by_last)
        self._codes = frozenset(_key_code(last, initial) for last, initial in self._by_last)
        self._named: dict[str, tuple[FollowedName, ...]] = {}  # written name -> whom it names

    def hits(
        self, authors: Sequence[str], stored_keys: bytes | None = None
    ) -> dict[int, list[AuthorHit]]:
        """Profile number -> the followed authors among `authors`, in listing order.

        `stored_keys`: the paper's `author_keys`, when stored: only the authors whose keys
        somebody follows are read (the answer is the same; keys stored for other authors, or
        by another layout, are not trusted and every author is read)."""
        found: defaultdict[int, list[AuthorHit]] = defaultdict(list)
        if not self._by_last:
            return found
        positions = self._candidates(authors, stored_keys) if stored_keys is not None else None
        named = self._named
        for position in range(len(authors)) if positions is None else positions:
            written = authors[position]
            followed = named.get(written)
            if followed is None:
                followed = self.named_by(written) if positions is None else self._read(written)
                if len(named) >= _NAMED_LIMIT:
                    named.clear()
                named[written] = followed
            for name in followed:
                found[name.profile].append(AuthorHit(position, name.rank, name.author, written))
        return found

    def _candidates(self, authors: Sequence[str], stored: bytes) -> list[int] | None:
        """The positions of the authors whose stored keys somebody here follows, in order;
        None when the keys are not of these authors in this layout."""
        numbers = array("I")
        numbers.frombytes(stored)
        if numbers[:_HEADER] != _header(authors):
            return None
        keys = numbers[_HEADER:]
        followed = self._codes.intersection(keys[1::2])
        if not followed:
            return []  # most papers: none of their authors' keys is anyone's
        pairs = zip(keys[::2], keys[1::2], strict=True)
        return sorted({position for position, code in pairs if code in followed})

    def named_by(self, written: str) -> tuple[FollowedName, ...]:
        """The followed names (every profile's) that the written name names, in index order."""
        words = _name_words(written)
        if words is not None and self._lasts.isdisjoint(words):
            return _NO_ONE  # most of a paper's authors: no one follows that last name
        return self._read(written)

    def _read(self, written: str) -> tuple[FollowedName, ...]:
        """`named_by`, the written name read and compared with the followed names of its
        readings' last names and initials."""
        return tuple(
            followed
            for parsed in name_readings(written)
            for followed in self._by_last.get((parsed.last, parsed.first[:1]), ())
            if names_match(parsed, followed.name)
        )
