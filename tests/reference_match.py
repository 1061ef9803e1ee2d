"""The reference matcher: the keyword and profile rules written as plainly as possible, one term
and one profile at a time, for tests to check the production matcher (`digest.match`) against.

It reads text with the careful tokenizer (`digest.match.tokenize`, never the ASCII fast path),
spells terms with the production forms (`term_forms`: the plural dictionary is data, not a
rule), and walks the words from every start: a term occurs where consecutive joined words
spell one of its forms (or, for `quantiz*`, begin with its letters), with one-letter and
function words joining only where the form's own words meet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from digest.match import (
    CompiledProfile,
    Term,
    Token,
    name_readings,
    names_match,
    passes_categories,
    score,
    term_forms,
    tokenize,
)
from digest.match.terms import is_short
from digest.models import FollowedAuthor, Match, Paper, Reason, ReasonField, ReasonKind


@dataclass(frozen=True, slots=True)
class FieldText:
    """A field's original text, its words, and where each folded word occurs."""

    text: str
    tokens: tuple[Token, ...]
    index: Mapping[str, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class PaperText:
    """A paper's title and abstract, read."""

    paper: Paper
    title: FieldText
    abstract: FieldText


def read_field(text: str) -> FieldText:
    """Tokenize a field and index its words."""
    tokens = tokenize(text)
    index: dict[str, list[int]] = {}
    for position, token in enumerate(tokens):
        index.setdefault(token.norm, []).append(position)
    return FieldText(text, tokens, {word: tuple(ps) for word, ps in index.items()})


@lru_cache(maxsize=4096)
def _beginnings(term: Term) -> frozenset[str]:
    """Every beginning of every form of `term`: what a walk may have spelled so far."""
    return frozenset(
        f.letters[:cut] for f in term_forms(term) for cut in range(1, len(f.letters) + 1)
    )


def _starts(term: Term, field: FieldText) -> list[int]:
    """Words that could begin the term (only to save time: any start may be tried)."""
    starts = [p for word in _beginnings(term) for p in field.index.get(word, ())]
    if term.prefix:
        starts += [
            p
            for word, positions in field.index.items()
            if word.startswith(term.letters)
            for p in positions
        ]
    return sorted(set(starts))


def analyse(paper: Paper) -> PaperText:
    """Read a paper's title and abstract."""
    return PaperText(paper, read_field(paper.title), read_field(paper.abstract))


def find_term(term: Term, field: FieldText) -> tuple[tuple[int, int], ...]:
    """Every (start, end) character span where `term` occurs as whole words in `field`: the
    shortest occurrence from each starting word."""
    forms = term_forms(term)
    if not forms:
        return ()
    longest = max(len(f.letters) for f in forms)
    tokens = field.tokens
    spans = []
    for start in _starts(term, field):
        joined, short_breaks = "", []
        for position in range(start, len(tokens)):
            token = tokens[position]
            if position > start:
                if not token.joined:
                    break
                if is_short(tokens[position - 1].norm) or is_short(token.norm):
                    short_breaks.append(len(joined))
            before = len(joined)
            joined += token.norm
            if term.prefix:
                if before >= len(term.letters) or not (
                    joined.startswith(term.letters) or term.letters.startswith(joined)
                ):
                    break
                spelled = joined.startswith(term.letters)
            else:
                if len(joined) > longest or not any(f.letters.startswith(joined) for f in forms):
                    break
                spelled = True
            if spelled and any(
                (term.prefix or form.letters == joined)
                and all(b in form.boundaries for b in short_breaks)
                for form in forms
            ):
                spans.append((tokens[start].start, token.end))
                break
    return tuple(spans)


def _term_reasons(text: PaperText, term: Term, kind: ReasonKind) -> list[Reason]:
    reasons = []
    where: tuple[tuple[ReasonField, FieldText], ...] = (
        ("title", text.title),
        ("abstract", text.abstract),
    )
    for name, field in where:
        spans = find_term(term, field)
        if spans:
            reasons.append(
                Reason(kind, term.raw, name, field.text[spans[0][0] : spans[0][1]], spans)
            )
    return reasons


def _followed(paper: Paper, compiled: CompiledProfile) -> Mapping[str, Reason]:
    found: list[tuple[int, int, FollowedAuthor, str]] = []
    for position, written in enumerate(paper.authors):
        for rank, (author, name) in enumerate(compiled.authors):
            if any(names_match(reading, name) for reading in name_readings(written)):
                found.append((position, rank, author, written))
    reasons: dict[str, Reason] = {}
    for _, _, author, written in sorted(found, key=lambda f: f[:2]):
        reasons.setdefault(author.name, Reason("author", author.name, "authors", written))
    return reasons


def match_paper(text: PaperText, compiled: CompiledProfile) -> Match | None:
    """One paper against one profile by DESIGN.md's rules, term by term."""
    paper = text.paper
    authors = _followed(paper, compiled)
    excluded = any(_term_reasons(text, t, "keyword") for t in compiled.exclude if t.usable)
    eligible = passes_categories(paper, compiled.categories) and not excluded
    topical: list[Reason] = []
    if authors or eligible:
        for term in compiled.keywords:
            if term.usable:
                topical.extend(_term_reasons(text, term, "keyword"))
        for group in compiled.groups:
            found = [_term_reasons(text, t, "all_of") for t in group]
            if all(found):
                topical.extend(r for reasons in found for r in reasons)
    if not authors and not topical:
        return None
    reasons = (*authors.values(), *topical)
    return Match(paper, reasons, score(reasons))
