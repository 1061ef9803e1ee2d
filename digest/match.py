"""Matching and ranking: pure functions from (papers, profile) to ranked matches with reasons.

Text is read once per paper into tokens (`analyse`), then every profile's terms are looked up in
that token index. A term matches whole words only: its letters, with the word breaks removed,
must equal the letters of consecutive text words joined by spaces, hyphens or slashes. That one
rule makes `KV cache` = `KV-cache` = `KVcache` and `pre-training` = `pretraining`, while `RL`
never matches inside `URL`. Plurals and possessives are folded; `quantiz*` is a word prefix.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from digest.models import FollowedAuthor, Match, Paper, Profile, Reason, ReasonField, fold

# A word: letters and digits (no underscore, so `V_1` is two words), with an optional
# possessive `'s` that is folded away. LaTeX commands (`\texttt`) are skipped, not read as words.
# Combining marks (decomposed accents, `nai\u0308ve`) belong to the word they follow.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_WORD = re.compile(rf"\\[A-Za-z]+|([^\W_](?:[^\W_]|[{_MARKS}])*)(?:['’][sS](?![^\W_]))?")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# Folding can turn a letter into letters and punctuation (`Ŀ` -> `l·`, `½` -> `1⁄2`): dropped.
_NOT_WORD = re.compile(r"[\W_]+")
# What may separate the words of one term in the text: spaces, hyphens, slashes, TeX braces.
_JOINER = re.compile(r"[\s\-‐‑‒–/${}]*")
_MAX_TERM_CHARS = 200


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

    @property
    def usable(self) -> bool:
        """False when nothing is left after normalisation (`"--"`, `"*"`)."""
        return bool(self.letters)


def tokenize(text: str) -> tuple[Token, ...]:
    """Split `text` into folded words with their offsets; LaTeX commands are skipped."""
    tokens: list[Token] = []
    last_end = 0
    for found in _WORD.finditer(text):
        if found.group(1) is None:
            continue
        gap = _LATEX_COMMAND.sub("", text[last_end : found.start()])
        joined = bool(tokens) and _JOINER.fullmatch(gap) is not None
        norm = _NOT_WORD.sub("", fold(found.group(1)))
        if not norm:
            continue
        tokens.append(Token(norm, found.start(), found.end(), joined))
        last_end = found.end()
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


def compile_term(raw: str) -> Term:
    """Compile a keyword: fold it, note a trailing `*`, and drop its word breaks."""
    text = raw.strip()[:_MAX_TERM_CHARS]
    prefix = text.endswith("*")
    words = [t.norm for t in tokenize(text.rstrip("*"))]
    return Term(raw, "".join(words), len(words), prefix)


def plural_forms(letters: str) -> frozenset[str]:
    """Singular and plural spellings of a word (`policy`/`policies`, `cache`/`caches`)."""
    forms = {letters, letters + "s", letters + "es"}
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
        # Joining words the term does not separate (`pre training` for `pretraining`) is only
        # allowed for real words, so `R/L` does not read as `RL`.
        if position > start and term.words == 1 and min(len(token.norm), len(joined)) < 2:
            return None
        joined += token.norm
        if term.prefix and joined.startswith(term.letters):
            return position
        if joined in forms:
            return position
        if len(joined) >= len(term.letters) + 3 or not term.letters.startswith(joined):
            return None
    return None


# --- authors ------------------------------------------------------------------------------------

_NAME_SPLIT = re.compile(r"[\s.\-‐‑]+")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})


@dataclass(frozen=True, slots=True)
class Name:
    """A person's name, folded: first name, middle names or initials, last name."""

    first: str
    middles: tuple[str, ...]
    last: str


def parse_name(name: str) -> Name | None:
    """Read `First Middle Last` or `Last, First Middle`, ignoring case, accents and periods."""
    text = fold(name).strip()
    if "," in text:
        last_part, _, first_part = text.partition(",")
        text = f"{first_part.replace(',', ' ')} {last_part}"
    words = [w for w in _NAME_SPLIT.split(text) if w and w not in _SUFFIXES]
    words = [w.replace("'", "").replace("’", "") for w in words]
    if len(words) < 2:
        return Name("", (), words[0]) if words else None
    return Name(words[0], tuple(words[1:-1]), words[-1])


def _given_names_agree(a: str, b: str) -> bool:
    """Equal, or one is an initial of the other."""
    if not a or not b:
        return a == b  # a bare last name only matches another bare last name
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return a == b


def names_match(a: Name, b: Name) -> bool:
    """Same person by DESIGN.md's rules: last names equal, first names compatible, and middle
    names possibly missing on either side but never conflicting."""
    if a.last != b.last or not _given_names_agree(a.first, b.first):
        return False
    return all(_given_names_agree(x, y) for x, y in zip(a.middles, b.middles, strict=False))


def _followed_names(authors: Iterable[FollowedAuthor]) -> list[tuple[FollowedAuthor, Name]]:
    return [(a, n) for a in authors for spelling in a.names if (n := parse_name(spelling))]


def match_authors(paper: Paper, followed: Sequence[tuple[FollowedAuthor, Name]]) -> list[Reason]:
    """A reason for each followed author who wrote `paper` (authors list only, not the text)."""
    reasons: dict[str, Reason] = {}
    for written in paper.authors:
        parsed = parse_name(written)
        if parsed is None:
            continue
        for author, name in followed:
            if author.name not in reasons and names_match(parsed, name):
                reasons[author.name] = Reason("author", author.name, "authors", written)
    return list(reasons.values())


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


def compile_profile(profile: Profile) -> CompiledProfile:
    """Compile a profile's keywords, groups, excludes and authors."""
    return CompiledProfile(
        profile=profile,
        keywords=tuple(compile_term(k) for k in profile.keywords),
        all_of=tuple(tuple(compile_term(t) for t in group) for group in profile.all_of if group),
        exclude=tuple(compile_term(t) for t in profile.exclude),
        authors=tuple(_followed_names(profile.authors)),
        categories=frozenset(c.strip().lower() for c in profile.categories if c.strip()),
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


def _term_reasons(term: Term, text: PaperText, kind: str) -> list[Reason]:
    reasons = []
    for field_name, field in (("title", text.title), ("abstract", text.abstract)):
        spans = find_term(term, field)
        if spans:
            first = field.text[spans[0][0] : spans[0][1]]
            field_key: ReasonField = "title" if field_name == "title" else "abstract"
            reasons.append(Reason(kind, term.raw, field_key, first, spans))  # type: ignore[arg-type]
    return reasons


def match_paper(text: PaperText, compiled: CompiledProfile) -> Match | None:
    """The match of one analysed paper against one compiled profile, or None."""
    author_reasons = match_authors(text.paper, compiled.authors)
    topical: list[Reason] = []
    if author_reasons or _eligible(text, compiled):
        for term in compiled.keywords:
            topical.extend(_term_reasons(term, text, "keyword"))
        for group in compiled.all_of:
            found = [_term_reasons(term, text, "all_of") for term in group]
            if all(found):
                topical.extend(r for rs in found for r in rs)
    if not author_reasons and not topical:
        return None
    reasons = tuple(author_reasons + topical)
    return Match(text.paper, reasons, score(reasons))


def _eligible(text: PaperText, compiled: CompiledProfile) -> bool:
    """Keyword matches count only for papers in the profile's categories without excluded terms."""
    if not passes_categories(text.paper, compiled.categories):
        return False
    return not any(find_term(t, f) for t in compiled.exclude for f in (text.title, text.abstract))


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
    """Every profile's ranked matches; each paper is read once whatever the number of profiles."""
    compiled = [compile_profile(p) for p in profiles]
    found: dict[str, list[Match]] = {p.name: [] for p in profiles}
    for paper in papers:
        text = analyse(paper)
        for profile in compiled:
            match = match_paper(text, profile)
            if match is not None:
                found[profile.profile.name].append(match)
    return {name: rank(matches) for name, matches in found.items()}


# --- profile lint ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LintWarning:
    """Something in a profile that probably does not do what its author wants."""

    profile: str
    kind: str  # "keyword", "all_of", "exclude" or "author"
    term: str
    problem: str


def lint_profile(
    profile: Profile, papers: Sequence[Paper], *, broad_share: float = 0.25
) -> list[LintWarning]:
    """Warn about terms that cannot match, match nothing, or match more than `broad_share` of
    `papers`, and followed authors who wrote none of them."""
    texts = [analyse(p) for p in papers]
    warnings: list[LintWarning] = []
    terms = [("keyword", t) for t in profile.keywords] + [("exclude", t) for t in profile.exclude]
    terms += [("all_of", t) for group in profile.all_of for t in group]
    for kind, raw in terms:
        term = compile_term(raw)
        if not term.usable:
            warnings.append(LintWarning(profile.name, kind, raw, "cannot match anything"))
            continue
        hits = sum(1 for t in texts if find_term(term, t.title) or find_term(term, t.abstract))
        problem = _coverage_problem(hits, len(texts), broad_share)
        if problem:
            warnings.append(LintWarning(profile.name, kind, raw, problem))
    for author in profile.authors:
        if texts and not any(match_authors(t.paper, _followed_names([author])) for t in texts):
            warnings.append(
                LintWarning(
                    profile.name,
                    "author",
                    author.name,
                    f"wrote none of the {len(texts)} papers (another spelling? add it to aliases)",
                )
            )
    return warnings


def _coverage_problem(hits: int, total: int, broad_share: float) -> str:
    if not total:
        return ""
    if hits == 0:
        return f"matched none of the {total} papers"
    if hits / total > broad_share:
        return f"matches {hits} of {total} papers ({hits / total:.0%}): too broad?"
    return ""
