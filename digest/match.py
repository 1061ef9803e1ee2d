"""Matching and ranking: pure functions from (papers, profile) to ranked matches with reasons.

Text is read once per paper into tokens (`analyse`), then every profile's terms are looked up in
that token index. A term matches whole words only: its letters, with the word breaks removed,
must equal the letters of consecutive text words joined by spaces, hyphens or slashes. That one
rule makes `KV cache` = `KV-cache` = `KVcache` and `pre-training` = `pretraining`, while `RL`
never matches inside `URL`. Plurals and possessives are folded; `quantiz*` is a word prefix.
"""

from __future__ import annotations

import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from itertools import accumulate

from digest.models import FollowedAuthor, Match, Paper, Profile, Reason, ReasonField, fold

# A word: letters and digits (no underscore, so `V_1` is two words), with an optional
# possessive `'s` that is folded away. LaTeX commands (`\texttt`) are skipped, not read as words.
# Combining marks (decomposed accents, `nai\u0308ve`) belong to the word they follow.
# Soft hyphens are invisible hints for line breaking, so they belong to the word too.
# TeX accents and special letters (`na\\"ive`, `Fr\\'{e}chet`, `S{\\o}ren`) are read as letters.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u00ad"
_TEX_LETTER = (
    r"\\[`'^\"~=.][{]?[A-Za-z][}]?|[{]\\[`'^\"~=.][{]?[A-Za-z][}]?[}]|\\[Hcuvkdb][{][A-Za-z][}]"
    r"|[{]\\(?:ss|aa|AA|ae|AE|oe|OE|[oOlLij])[}]|\\(?:ss|aa|AA|ae|AE|oe|OE|[oOlLij])(?:[{][}]|(?![A-Za-z]))"
)
_WORD = re.compile(
    rf"((?:[^\W_]|{_TEX_LETTER})(?:[^\W_]|[{_MARKS}]|{_TEX_LETTER})*)(?:['’][sS](?![^\W_]))?"
    r"|\\[A-Za-z]+"
)
# `_WORD` on lower-cased ASCII text without backslashes: words, and runs of what is neither a
# word nor a joiner (separators). Possessives are dropped first.
_ASCII_PIECE = re.compile(r"[a-z0-9]+|[^a-z0-9\s\-/~${}]+")
_ASCII_POSSESSIVE = re.compile(r"(?<=[A-Za-z0-9])'[sS](?![A-Za-z0-9])")
_SEPARATOR = ","
_ASCII_JOINERS = " \t\n\r\f\v-/~${}"
_ASCII_ALL = re.compile(
    r"[A-Za-z0-9]+(?:'[sS](?![A-Za-z0-9]))?|[^A-Za-z0-9\s\-/~${}]+|[\s\-/~${}]+"
)
_TEX_MARKUP = re.compile(r"\\[`'^\"~=.Hcuvkdb]|[\\{}]")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_BRACES = re.compile(r"[{}]+")
# Folding can turn a letter into letters and punctuation (`Ŀ` -> `l·`, `½` -> `1⁄2`): dropped.
_NOT_WORD = re.compile(r"[\W_]+")
# What may separate the words of one term in the text: spaces, hyphens, slashes, TeX braces.
_JOINER = re.compile(r"[\s\-‐‑‒–/~${}]*")  # `~` is TeX's unbreakable space
_MAX_TERM_CHARS = 200
# Short function words never join into a one-word term: `for getting` is not `forgetting`,
# `to get her` is not `together` (a keyword of several words may still contain them).
_FUNCTION_WORDS = frozenset(
    "a an and as at be by for her his in is it its not of or our the to us we with".split()  # noqa: SIM905
)
# Words ending in `s` that are not plurals: `news` must not match `new`.
_NOT_PLURALS = frozenset(
    [
        "news",
        "series",
        "species",
        "lens",
        "gas",
        "bias",
        "atlas",
        "chaos",
        "canvas",
        "alias",
        "thus",
        "yes",
        "perhaps",
        "always",
        "plus",
        "various",
        "previous",
        "numerous",
        "ambiguous",
        "continuous",
        "analogous",
        "robustness",
    ]
)


def _norm(word: str) -> str:
    """A word's folded form: TeX markup read as its letters, case and accents dropped."""
    if "\\" in word or "{" in word:
        word = _TEX_MARKUP.sub("", word.replace("\\aa", "a").replace("\\AA", "A"))
    return word.lower() if word.isascii() else _NOT_WORD.sub("", fold(word))


# A term as the index knows it: its letters, whether it is a prefix (`quantiz*`), and where its
# words meet (one-letter and function words join only there: `R/L` for `R L`, never `RL`).
TermKey = tuple[str, bool, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a field: its folded form and where it sits in the original text."""

    norm: str
    start: int
    end: int
    joined: bool  # True when only joiners separate it from the previous word


@dataclass(frozen=True, slots=True)
class FieldText:
    """A field's original text, its words, and an index from folded word to positions."""

    text: str
    tokens: tuple[Token, ...]
    index: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class PaperText:
    """A paper read once for matching: title and abstract as token indexes."""

    paper: Paper
    title: FieldText
    abstract: FieldText


@dataclass(frozen=True, slots=True)
class Term:
    """A keyword compiled for lookup: its letters with word breaks removed."""

    raw: str
    letters: str
    words: int
    prefix: bool
    boundaries: tuple[int, ...] = ()  # where its words meet, as offsets into `letters`
    # The identity of a term in the index: spellings that fold alike share one entry.
    key: TermKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.letters, self.prefix, self.boundaries))

    @property
    def usable(self) -> bool:
        """False when nothing is left after normalisation (`"--"`, `"*"`)."""
        return bool(self.letters)


def tokenize(text: str) -> tuple[Token, ...]:
    """Split `text` into folded words with their offsets; LaTeX commands are skipped, and TeX
    braces inside a word do not split it (`{\\bf P}ost` reads `Post`)."""
    tokens: list[Token] = []
    last_end = 0
    for found in _WORD.finditer(text):
        word = found.group(1)
        if word is None:
            continue
        plain = word.isascii() and "\\" not in word and "{" not in word
        norm = word.lower() if plain else _norm(word)
        if not norm:
            continue
        start, end = found.span()
        gap = text[last_end:start]
        if gap != " ":  # a single space, by far the most common gap, joins
            gap = _LATEX_COMMAND.sub("", gap) if "\\" in gap else gap
            if tokens and gap and _BRACES.fullmatch(gap):
                previous = tokens.pop()
                tokens.append(Token(previous.norm + norm, previous.start, end, previous.joined))
                last_end = end
                continue
        joined = bool(tokens) and (gap == " " or _JOINER.fullmatch(gap) is not None)
        tokens.append(Token(norm, start, end, joined))
        last_end = end
    return tuple(tokens)


def read_field(text: str) -> FieldText:
    """Tokenize a field and index its words."""
    tokens = tokenize(text)
    index: defaultdict[str, list[int]] = defaultdict(list)
    for position, token in enumerate(tokens):
        index[token.norm].append(position)
    return FieldText(text, tokens, {word: tuple(ps) for word, ps in index.items()})


def analyse(paper: Paper) -> PaperText:
    """Read a paper's title and abstract once, for matching against any number of profiles."""
    return PaperText(paper, read_field(paper.title), read_field(paper.abstract))


@lru_cache(maxsize=1 << 17)
def compile_term(raw: str) -> Term:
    """Compile a keyword: fold it, note a trailing `*`, and drop its word breaks."""
    text = raw.strip()[:_MAX_TERM_CHARS]
    prefix = text.endswith("*")
    words = [w for w in Words(text.rstrip("*")).norms if w[0].isalnum()]
    boundaries = tuple(accumulate(len(w) for w in words[:-1]))
    return Term(raw, "".join(words), len(words), prefix, boundaries)


def plural_forms(letters: str) -> frozenset[str]:
    """Singular and plural spellings of a word (`policy`/`policies`, `cache`/`caches`)."""
    forms = {letters, letters + "s", letters + "es"}
    if letters in _NOT_PLURALS:
        return frozenset(forms)
    if letters.endswith("y") and len(letters) > 2:
        forms.add(letters[:-1] + "ies")
    if letters.endswith("ies") and len(letters) > 4:
        forms.add(letters[:-3] + "y")
    if letters.endswith("es") and len(letters) > 4:
        forms.add(letters[:-2])
    if letters.endswith("s") and not letters.endswith("ss") and len(letters) > 3:
        forms.add(letters[:-1])
    return frozenset(forms)


def find_term(term: Term, field: FieldText) -> tuple[tuple[int, int], ...]:
    """Every (start, end) span where `term` occurs as whole words in `field`."""
    if not term.usable:
        return ()
    forms = frozenset() if term.prefix else plural_forms(term.letters)
    spans = []
    for start in _candidate_starts(term, forms, field):
        end = _match_from(term, forms, field.tokens, start)
        if end is not None:
            spans.append((field.tokens[start].start, field.tokens[end].end))
    return tuple(spans)


def _candidate_starts(term: Term, forms: frozenset[str], field: FieldText) -> list[int]:
    """Positions of words that could begin the term: a spelling of it, or its first letters."""
    letters = term.letters
    starts: list[int] = []
    for cut in range(1, len(letters) + 1):
        starts.extend(field.index.get(letters[:cut], ()))
    for form in forms - {letters}:
        starts.extend(field.index.get(form, ()))
    if term.prefix:
        for word, positions in field.index.items():
            if len(word) > len(letters) and word.startswith(letters):
                starts.extend(positions)
    return sorted(set(starts))


def _match_from(
    term: Term, forms: frozenset[str], tokens: Sequence[Token], start: int
) -> int | None:
    """The last word index of a match of `term` starting at word `start`, or None."""
    joined = ""
    for position in range(start, len(tokens)):
        token = tokens[position]
        if position > start and not token.joined:
            return None
        # Joining words inside one of the term's words (`pre training` for `pretraining`) is
        # only allowed for real words, so `R/L` does not read as `RL`, `to get her` as `together`.
        if position > start and not _may_join(
            term.boundaries, joined, tokens[position - 1].norm, token.norm
        ):
            return None
        joined += token.norm
        if term.prefix and joined.startswith(term.letters):
            return position
        if joined in forms:
            return position
        if len(joined) >= len(term.letters) + 3 or not term.letters.startswith(joined):
            return None
    return None


def _is_short(word: str) -> bool:
    """A one-letter word or a function word: no piece of a closed compound."""
    return len(word) < 2 or word in _FUNCTION_WORDS


def _may_join(boundaries: tuple[int, ...], joined: str, before: str, word: str) -> bool:
    """Whether `word` may follow `joined` (whose last piece is `before`) inside a term whose
    words meet at `boundaries`: anywhere between real words, only at a boundary otherwise."""
    return len(joined) in boundaries or not (_is_short(before) or _is_short(word))


# --- authors ------------------------------------------------------------------------------------

_NAME_SPLIT = re.compile(r"[\s.\-‐‑]+")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_NAME_HYPHEN = re.compile(r"(?<=[^\W\d_])[\-‐‑](?=[^\W\d_])")


@dataclass(frozen=True, slots=True)
class Name:
    """A person's name, folded: first name, middle names or initials, last name."""

    first: str
    middles: tuple[str, ...]
    last: str


@lru_cache(maxsize=1 << 16)
def parse_name(name: str, *, close_hyphens: bool = False) -> Name | None:
    """Read `First Middle Last` or `Last, First Middle`, ignoring case, accents and periods.

    Hyphens split names (`Seyed-Iman` = `Seyed Iman`), or with `close_hyphens` join them
    (`Han-Byul` = `Hanbyul`)."""
    text = fold(name).strip()
    if close_hyphens:
        text = _NAME_HYPHEN.sub("", text)
    if "," in text:
        last_part, _, first_part = text.partition(",")
        text = f"{first_part.replace(',', ' ')} {last_part}"
    words = [w for w in _NAME_SPLIT.split(text) if w and w not in _SUFFIXES]
    words = [w.replace("'", "").replace("’", "") for w in words]
    if len(words) < 2:
        return Name("", (), words[0]) if words else None
    return Name(words[0], tuple(words[1:-1]), words[-1])


@lru_cache(maxsize=1 << 16)
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


def names_match(a: Name, b: Name) -> bool:
    """Same person by DESIGN.md's rules: last names equal, first names compatible, and middle
    names possibly missing on either side but never conflicting: the shorter list of middle
    names must appear, in order, in the longer (`Gido van de Ven` = `Gido M. van de Ven`)."""
    if a.last != b.last or not _given_names_agree(a.first, b.first):
        return False
    fewer, more = sorted((a.middles, b.middles), key=len)
    remaining = iter(more)
    return all(any(_given_names_agree(x, y) for y in remaining) for x in fewer)


def same_person(a: str, b: str) -> bool:
    """True when two written names are the same person by the rules of `names_match`."""
    return any(names_match(x, y) for x in name_readings(a) for y in name_readings(b))


def _followed_names(authors: Iterable[FollowedAuthor]) -> list[tuple[FollowedAuthor, Name]]:
    return [(a, n) for a in authors for spelling in a.names for n in name_readings(spelling)]


# --- the index: every term of every profile, looked up once per word --------------------------

TokenSpan = tuple[int, int]  # first and last word index of an occurrence
_WORD_CACHE_LIMIT = 200_000
_MEMORY_LIMIT = 50_000  # papers whose verdicts a long-lived matcher remembers


class Words:
    """A field read once for the index: its folded words, with a separator entry (`,`) wherever
    something other than a joiner stands between two words, so a term never runs across it.

    ASCII text without TeX, the common case, is split by one C-level `findall`; other text is
    read word by word as `tokenize` reads it. Offsets are worked out only for matched fields.
    """

    __slots__ = ("_spans", "norms", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._spans: tuple[list[int], list[int]] | None = None
        if text.isascii() and "\\" not in text and "{" not in text and "}" not in text:
            if "'" in text:
                text = _ASCII_POSSESSIVE.sub("", text)
            self.norms: list[str] = _ASCII_PIECE.findall(text.lower())
            return
        norms: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for token in tokenize(text):
            if norms and not token.joined:
                norms.append(_SEPARATOR)
                starts.append(token.start)
                ends.append(token.start)
            norms.append(token.norm)
            starts.append(token.start)
            ends.append(token.end)
        self.norms, self._spans = norms, (starts, ends)

    def char_spans(self, found: Sequence[TokenSpan]) -> tuple[tuple[int, int], ...]:
        """Word-index occurrences as character offsets into the text."""
        if self._spans is None:
            self._spans = self._ascii_offsets()
        starts, ends = self._spans
        return tuple((starts[first], ends[last]) for first, last in found)

    def _ascii_offsets(self) -> tuple[list[int], list[int]]:
        """Where each entry of the fast reading starts and ends in the text."""
        # Every character belongs to a piece (a word with its possessive, a separator run or a
        # joiner run), so offsets are running sums of piece lengths.
        pieces = _ASCII_ALL.findall(self.text)
        offsets = [0, *accumulate(map(len, pieces))]
        kept = [i for i, piece in enumerate(pieces) if piece[0] not in _ASCII_JOINERS]
        return [offsets[i] for i in kept], [offsets[i + 1] for i in kept]


class TermIndex:
    """Every distinct term of a run in three tables, so a field is scanned once for all of them.

    A word that begins no term costs one dictionary lookup. The rules are `find_term`'s; the
    equivalence is tested property by property against it.
    """

    def __init__(self, terms: Iterable[Term]) -> None:
        unique: dict[TermKey, Term] = {}
        for term in terms:
            if term.usable:
                unique.setdefault(term.key, term)
        self._keys = set(unique)
        self._forms: defaultdict[str, list[TermKey]] = defaultdict(list)  # exact spellings
        self._prefixes: defaultdict[str, list[TermKey]] = defaultdict(list)  # `quantiz*`
        for key, term in unique.items():
            if term.prefix:
                self._prefixes[term.letters].append(key)
            else:
                for form in plural_forms(term.letters):
                    self._forms[form].append(key)
        letters = {key[0] for key in unique}
        # Proper beginnings of terms: a walk that has spelled one may go on.
        self._inner = {word[:cut] for word in letters for cut in range(1, len(word))}
        rests: defaultdict[str, list[str]] = defaultdict(list)
        for word in self._prefixes:
            for cut in range(1, len(word)):
                rests[word[:cut]].append(word[cut:])
        # For each proper beginning of a prefix term, what the next word must start with.
        self._prefix_rests = {start: tuple(ends) for start, ends in rests.items()}
        self._prefix_lengths = sorted({len(word) for word in self._prefixes})
        self._form_set = set(self._forms)
        self._hit_words: dict[str, tuple[TermKey, ...]] = {}  # words that are terms
        self._boring: set[str] = set()  # words known to be none

    def __len__(self) -> int:
        return len(self._keys)

    def _hits(self, joined: str) -> tuple[TermKey, ...]:
        """The terms `joined` spells: one of their forms, or a prefix term it begins with."""
        hits = tuple(self._forms.get(joined, ()))
        for length in self._prefix_lengths:
            if length > len(joined):
                break
            hits += tuple(self._prefixes.get(joined[:length], ()))
        return hits

    def _learn(self, words: Iterable[str]) -> None:
        """Sort unseen words into terms and the rest (bounded memory over a year of papers)."""
        if len(self._hit_words) + len(self._boring) >= _WORD_CACHE_LIMIT:
            self._hit_words.clear()
            self._boring.clear()
        for word in words:
            hits = self._hits(word)
            if hits:
                self._hit_words[word] = hits
            else:
                self._boring.add(word)

    def scan(self, words: Words) -> dict[TermKey, list[TokenSpan]]:
        """Every occurrence of every term in the field, one per starting word, in text order.

        Set operations in C find the few places worth a look (words that are terms, pairs of
        neighbours that begin or spell one, words on their way to a prefix term); only those
        are visited one by one."""
        found: defaultdict[TermKey, list[TokenSpan]] = defaultdict(list)
        norms = words.norms
        distinct = set(norms)
        unseen = distinct - self._boring - self._hit_words.keys()
        if unseen:
            self._learn(unseen)
        hit_words = distinct & self._hit_words.keys()
        if hit_words:
            for start in [i for i, word in enumerate(norms) if word in hit_words]:
                for key in self._hit_words[norms[start]]:
                    found[key].append((start, start))
        pairs = list(map(operator.add, norms, norms[1:]))
        paired = set(pairs)
        walkable = (paired & self._inner) | (paired & self._form_set)
        # A word on its way to a prefix term, and a neighbour that completes it.
        rests = self._prefix_rests
        towards = distinct & rests.keys()
        starts = [i for i, pair in enumerate(pairs) if pair in walkable] if walkable else []
        if towards:
            starts += [
                i
                for i, word in enumerate(norms[:-1])
                if word in towards and norms[i + 1].startswith(rests[word])
            ]
            starts = sorted(set(starts))
        if starts:
            for start in starts:
                done = set(self._hit_words.get(norms[start], ()))
                self._walk(norms, start, done, found)
            for spans in found.values():
                spans.sort()
        return found

    def _prefix_hits(self, joined: str, longer: str) -> tuple[TermKey, ...]:
        """Prefix terms `longer` begins with that `joined` was on its way to."""
        rests = self._prefix_rests.get(joined)
        if rests is None:
            return ()
        tail = longer[len(joined) :]
        return tuple(
            k for rest in rests if tail.startswith(rest) for k in self._prefixes[joined + rest]
        )

    def _walk(
        self,
        norms: Sequence[str],
        start: int,
        done: set[TermKey],
        found: defaultdict[TermKey, list[TokenSpan]],
    ) -> None:
        """Join the words after `start` while they still spell the beginning of some term."""
        joined, short_joins = norms[start], []
        for position in range(start + 1, len(norms)):
            word = norms[position]
            longer = joined + word
            hits = (*self._forms.get(longer, ()), *self._prefix_hits(joined, longer))
            goes_on = longer in self._inner
            if not (hits or goes_on):
                return
            # One-letter and function words join only where the term's own words meet.
            if _is_short(norms[position - 1]) or _is_short(word):
                short_joins.append(len(joined))
            for key in hits:
                letters, _, boundaries = key
                if (
                    key not in done
                    and letters.startswith(joined)
                    and all(j in boundaries for j in short_joins)
                ):
                    found[key].append((start, position))
                    done.add(key)
            if not goes_on:
                return
            joined = longer


# --- profiles -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    """A profile with every term compiled once, ready to match many papers."""

    profile: Profile
    keywords: tuple[Term, ...]
    all_of: tuple[tuple[Term, ...], ...]
    exclude: tuple[Term, ...]
    authors: tuple[tuple[FollowedAuthor, Name], ...]
    categories: frozenset[str]
    # Lookup tables: keyword positions by term key, exclude keys, and the groups that can match.
    keyword_positions: Mapping[TermKey, tuple[int, ...]]
    exclude_keys: frozenset[TermKey]
    groups: tuple[tuple[Term, ...], ...]

    def terms(self) -> Iterable[Term]:
        """Every usable term the profile has, in any role."""
        yield from (t for t in self.keywords if t.usable)
        yield from (t for t in self.exclude if t.usable)
        for group in self.groups:
            yield from group


def compile_profile(profile: Profile) -> CompiledProfile:
    """Compile a profile's keywords, groups, excludes and authors."""
    keywords = tuple(compile_term(k) for k in profile.keywords)
    positions: defaultdict[TermKey, list[int]] = defaultdict(list)
    for position, term in enumerate(keywords):
        if term.usable:
            positions[term.key].append(position)
    all_of = tuple(tuple(compile_term(t) for t in group) for group in profile.all_of if group)
    exclude = tuple(compile_term(t) for t in profile.exclude)
    return CompiledProfile(
        profile=profile,
        keywords=keywords,
        all_of=all_of,
        exclude=exclude,
        authors=tuple(_followed_names(profile.authors)),
        categories=frozenset(c.strip().lower() for c in profile.categories if c.strip()),
        keyword_positions={key: tuple(ps) for key, ps in positions.items()},
        exclude_keys=frozenset(t.key for t in exclude if t.usable),
        # A group with a term that cannot match can never match as a whole.
        groups=tuple(g for g in all_of if all(t.usable for t in g)),
    )


def passes_categories(paper: Paper, wanted: frozenset[str]) -> bool:
    """True when the profile names no category, the paper has none, or they share one.

    A profile category without a dot (`cs`) stands for its whole archive (`cs.LG`, `cs.CL`, …).
    """
    if not wanted or not paper.categories:
        return True
    for category in paper.categories:
        category = category.lower()
        if category in wanted or category.split(".")[0] in wanted:
            return True
    return False


@dataclass(frozen=True, slots=True)
class PaperHits:
    """What the index found in one paper: term occurrences per field, and its followed authors."""

    paper: Paper
    title: Words
    abstract: Words
    in_title: Mapping[TermKey, list[TokenSpan]]
    in_abstract: Mapping[TermKey, list[TokenSpan]]
    # profile index -> (written author index, followed index, followed author, name as written)
    authors: Mapping[int, list[tuple[int, int, FollowedAuthor, str]]]
    found: frozenset[TermKey]  # every term in either field

    located: dict[TermKey, list[tuple[ReasonField, str, tuple[tuple[int, int], ...]]]] = field(
        default_factory=dict
    )  # filled as profiles ask, so many profiles with one term share the work

    def reasons(self, term: Term, kind: str) -> list[Reason]:
        """One reason per field the term occurs in, with the first matched text and all spans."""
        places = self.located.get(term.key)
        if places is None:
            places = self.located[term.key] = self._locate(term.key)
        return [Reason(kind, term.raw, f, text, spans) for f, text, spans in places]  # type: ignore[arg-type]

    def _locate(self, key: TermKey) -> list[tuple[ReasonField, str, tuple[tuple[int, int], ...]]]:
        places: list[tuple[ReasonField, str, tuple[tuple[int, int], ...]]] = []
        for name, words, hits in (
            ("title", self.title, self.in_title),
            ("abstract", self.abstract, self.in_abstract),
        ):
            if key in hits:
                spans = words.char_spans(hits[key])
                places.append((name, words.text[spans[0][0] : spans[0][1]], spans))  # type: ignore[arg-type]
        return places


class Matcher:
    """Any number of profiles compiled into one term index and one author index.

    Built once per run; each paper is read once and only the profiles one of its terms or
    authors concerns are looked at, so the cost grows with what matches, not with profiles ×
    keywords.
    """

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self.compiled = tuple(compile_profile(p) for p in profiles)
        self.profiles = tuple(profiles)
        self._memory: dict[tuple[object, ...], dict[str, Match]] = {}
        self.index = TermIndex(t for c in self.compiled for t in c.terms())
        self._users: defaultdict[TermKey, set[int]] = defaultdict(set)
        self._by_last: defaultdict[str, list[tuple[int, int, FollowedAuthor, Name]]] = defaultdict(
            list
        )
        for number, compiled in enumerate(self.compiled):
            for term in compiled.terms():
                self._users[term.key].add(number)
            for rank_, (author, name) in enumerate(compiled.authors):
                self._by_last[name.last].append((number, rank_, author, name))

    def read(self, paper: Paper) -> PaperHits:
        """Scan one paper's title, abstract and authors against every profile at once."""
        title, abstract = Words(paper.title), Words(paper.abstract)
        in_title, in_abstract = self.index.scan(title), self.index.scan(abstract)
        return PaperHits(
            paper,
            title,
            abstract,
            in_title,
            in_abstract,
            self._author_hits(paper),
            frozenset((*in_title, *in_abstract)),
        )

    def _author_hits(self, paper: Paper) -> dict[int, list[tuple[int, int, FollowedAuthor, str]]]:
        hits: defaultdict[int, list[tuple[int, int, FollowedAuthor, str]]] = defaultdict(list)
        if not self._by_last:
            return hits
        for position, written in enumerate(paper.authors):
            for parsed in name_readings(written):
                for number, rank_, author, name in self._by_last.get(parsed.last, ()):
                    if names_match(parsed, name):
                        hits[number].append((position, rank_, author, written))
        return hits

    def ranked(self, name: str, papers: Iterable[Paper]) -> tuple[Match, ...]:
        """Profile `name`'s ranked matches among `papers`.

        Each paper's verdicts for every profile are remembered (by its content), so planning
        100 profiles over the same new papers reads each paper once, not 100 times.
        """
        found = []
        for paper in papers:
            match = self._remembered(paper).get(name)
            if match is not None:
                # The paper may have changed outside its text (upvotes): rank the current one.
                found.append(match if match.paper == paper else replace(match, paper=paper))
        return rank(found)

    def _remembered(self, paper: Paper) -> dict[str, Match]:
        content = (paper.key, paper.title, paper.abstract, paper.authors, paper.categories)
        known = self._memory.get(content)
        if known is None:
            if len(self._memory) >= _MEMORY_LIMIT:
                self._memory.clear()
            known = self._memory[content] = self.match(paper)
        return known

    def match(self, paper: Paper) -> dict[str, Match]:
        """Each matching profile's match of `paper`, by profile name."""
        hits = self.read(paper)
        concerned = set(hits.authors)
        for key in hits.found:
            concerned.update(self._users.get(key, ()))
        found = {}
        for number in sorted(concerned):
            compiled = self.compiled[number]
            match = match_hits(hits, compiled, hits.authors.get(number, []))
            if match is not None:
                found[compiled.profile.name] = match
        return found


def match_hits(
    hits: PaperHits,
    compiled: CompiledProfile,
    authors: Sequence[tuple[int, int, FollowedAuthor, str]],
) -> Match | None:
    """One profile's verdict on a scanned paper: DESIGN.md's rules, reasons in profile order."""
    author_reasons: dict[str, Reason] = {}
    for _, _, author, written in sorted(authors, key=lambda a: a[:2]):
        author_reasons.setdefault(author.name, Reason("author", author.name, "authors", written))
    topical: list[Reason] = []
    if author_reasons or _eligible(hits, compiled):
        table = compiled.keyword_positions
        positions = sorted(p for key in table.keys() & hits.found for p in table[key])
        for position in positions:
            topical.extend(hits.reasons(compiled.keywords[position], "keyword"))
        for group in compiled.groups:
            if all(term.key in hits.found for term in group):
                topical.extend(r for term in group for r in hits.reasons(term, "all_of"))
    if not author_reasons and not topical:
        return None
    reasons = (*author_reasons.values(), *topical)
    return Match(hits.paper, reasons, score(reasons))


def _eligible(hits: PaperHits, compiled: CompiledProfile) -> bool:
    """Keyword matches count only for papers in the profile's categories without excluded terms."""
    if not passes_categories(hits.paper, compiled.categories):
        return False
    return hits.found.isdisjoint(compiled.exclude_keys)


def match_paper(text: PaperText, compiled: CompiledProfile) -> Match | None:
    """The match of one paper against one compiled profile, or None (for one-off checks)."""
    matcher = Matcher([compiled.profile])
    return matcher.match(text.paper).get(compiled.profile.name)


def score(reasons: Sequence[Reason]) -> float:
    """Followed authors first (100), then 10 per distinct term, plus 1 per term in the title."""
    followed = any(r.kind == "author" for r in reasons)
    terms = {r.term for r in reasons if r.kind != "author"}
    in_title = {r.term for r in reasons if r.kind != "author" and r.field == "title"}
    return 100.0 * followed + 10.0 * len(terms) + 1.0 * len(in_title)


def rank(matches: Iterable[Match]) -> tuple[Match, ...]:
    """Best first: score, then upvotes, then the newest, then the key (deterministic)."""

    def key(m: Match) -> tuple[float, int, int, str]:
        published = m.paper.published.toordinal() if m.paper.published else 0
        return (-m.score, -m.paper.upvotes, -published, m.paper.key)

    return tuple(sorted(matches, key=key))


def match_profiles(
    papers: Iterable[Paper], profiles: Sequence[Profile]
) -> dict[str, tuple[Match, ...]]:
    """Every profile's ranked matches. Papers stream through one index built for all profiles,
    so memory holds only the matches."""
    return {name: best.matches for name, best in best_matches(papers, profiles).items()}


@dataclass(frozen=True, slots=True)
class Best:
    """A profile's best matches, ranked, and how many papers it matched in all."""

    matches: tuple[Match, ...]
    total: int


def best_matches(
    papers: Iterable[Paper], profiles: Sequence[Profile], keep: int | None = None
) -> dict[str, Best]:
    """Each profile's `keep` best matches (all without `keep`) and its count of all matches.
    With `keep`, memory does not grow with the papers: what a digest of `keep` items needs
    from a year of them."""
    matcher = Matcher(profiles)
    kept: dict[str, list[Match]] = {p.name: [] for p in profiles}
    totals = dict.fromkeys(kept, 0)
    for paper in papers:
        for name, match in matcher.match(paper).items():
            totals[name] += 1
            bucket = kept[name]
            bucket.append(match)
            if keep is not None and len(bucket) >= 4 * keep + 16:  # trim now and then
                kept[name] = list(rank(bucket)[:keep])
    return {name: Best(rank(bucket)[:keep], totals[name]) for name, bucket in kept.items()}


# --- profile lint ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LintWarning:
    """Something in a profile that probably does not do what its author wants."""

    profile: str
    kind: str  # "keyword", "all_of", "exclude" or "author"
    term: str
    problem: str


def lint_profile(
    profile: Profile, papers: Iterable[Paper], *, broad_share: float = 0.25
) -> list[LintWarning]:
    """Warn about terms that cannot match, match nothing, or match more than `broad_share` of
    `papers`, and followed authors who wrote none of them."""
    matcher = Matcher([profile])
    term_hits: Counter[TermKey] = Counter()
    author_hits: Counter[str] = Counter()
    total = 0
    for paper in papers:
        hits = matcher.read(paper)
        total += 1
        term_hits.update({*hits.in_title, *hits.in_abstract})
        author_hits.update({a.name for _, _, a, _ in hits.authors.get(0, [])})
    warnings: list[LintWarning] = []
    terms = [("keyword", t) for t in profile.keywords] + [("exclude", t) for t in profile.exclude]
    terms += [("all_of", t) for group in profile.all_of for t in group]
    for kind, raw in terms:
        term = compile_term(raw)
        if not term.usable:
            warnings.append(LintWarning(profile.name, kind, raw, "cannot match anything"))
            continue
        problem = _coverage_problem(term_hits[term.key], total, broad_share)
        if problem:
            warnings.append(LintWarning(profile.name, kind, raw, problem))
    for author in profile.authors:
        if total and not author_hits[author.name]:
            problem = f"wrote none of the {total} papers (another spelling? add it to aliases)"
            warnings.append(LintWarning(profile.name, "author", author.name, problem))
    return warnings


def _coverage_problem(hits: int, total: int, broad_share: float) -> str:
    if not total:
        return ""
    if hits == 0:
        return f"matched none of the {total} papers"
    if hits / total > broad_share:
        return f"matches {hits} of {total} papers ({hits / total:.0%}): too broad?"
    return ""
