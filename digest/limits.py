"""Field limits: how much of each stored text field a paper may carry, whatever its source.

DESIGN.md, "Limits": every stored text field has a length cap, applied at ingest for every
source and cut with a warning. The numbers live here and only here: `sources.clean` applies them
to every paper before the store sees it (and to `digest match --input`), the parsers read no
more than `read_prefix` of any string, the OpenAlex abstract is rebuilt no further than
`ABSTRACT_POSITIONS`, and the README's limits table lists them (a test compares the two).

Each is generous for real papers and small enough that one hostile paper cannot cost a `match`
seconds and gigabytes: a 24 MB abstract made every later `match` take 15 s and 2 GB.
"""

from __future__ import annotations

TITLE_CHARS = 1_000  # the longest real titles are a few hundred characters
ABSTRACT_CHARS = 20_000  # arXiv allows 1,920; journals' structured abstracts stay under 10,000
AUTHOR_CHARS = 200  # one author name (a collaboration's name included)
AUTHORS = 5_000  # names per paper: the largest collaborations sign ~5,000; past it, truncated
CATEGORIES = 100  # categories or subject terms per paper
CATEGORY_CHARS = 100  # one category or subject term; a longer one is dropped
ID_CHARS = 300  # a listing id, DOI, arXiv id or source name; a longer one is dropped
URL_CHARS = 2_000  # one link; a longer one is dropped (a cut link would lead elsewhere)
REFERENCES = 5_000  # cited works kept per paper (OpenAlex `referenced_works`)
EXTRA_TEXT_CHARS = 2_000  # one string among a source's extra signals (comment, journal ref, …)
EXTRA_ITEMS = 5_000  # items of one list or object in the extras (affiliations: one per author)
EXTRA_CHARS = 100_000  # every string of a paper's extras together
EXTRA_DEPTH = 4  # nesting of lists and objects in the extras; deeper parts are dropped
# One listing file (`[[sources.files]]`, `digest match --input`): ~60,000 papers with abstracts.
LISTING_FILE_BYTES = 100 * 1024 * 1024
# The inverted index of an abstract: a word takes at least two characters with its space, so a
# position past this cannot be inside an abstract of ABSTRACT_CHARS.
ABSTRACT_POSITIONS = ABSTRACT_CHARS // 2
# How much of a string a parser reads before normalising its whitespace, as a multiple of the
# field's cap: the cleaner cuts the rest, and whitespace runs rarely shrink a text by more.
READ_FACTOR = 4


def read_prefix(text: str, limit: int) -> str:
    """The part of `text` worth normalising for a field capped at `limit` characters."""
    return text[: limit * READ_FACTOR + 1]


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when it was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"
