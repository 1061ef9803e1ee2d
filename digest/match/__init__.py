"""Matching and ranking: pure functions from (papers, profiles) to ranked matches with reasons.

The stages, one module each, in the order a paper meets them:

1. `text`: a field is read once into folded words (`Words`): case, accents and compatibility
   forms folded, TeX read as its text, possessives dropped, joiners (spaces, hyphens, slashes,
   `~`, math delimiters) removed, other punctuation kept as separators.
2. `terms`: each keyword is compiled the same way (`compile_term`) and spelled every way that
   matches it: each word singular or plural (`term_forms`, from lemminflect's dictionary).
3. `scan`: one Aho-Corasick automaton holds every spelling of every term of every profile and
   scans each field's letters once; whole-word, split-compound and function-word rules are
   checks on its hits (`Scanner`).
4. `authors`: written names against followed names (`names_match`, `AuthorIndex`).
5. `rules`: each concerned profile's verdict and score, with set and integer work (`verdict`).
6. `reasons`: the `Reason`s (field, matched text, offsets), only for matches that are returned.
7. `rank`: the order of a digest (`score`, `rank`).
8. `matcher`: the run-wide `Matcher` and the batch entry points (`match_profiles`,
   `best_matches`, `Matcher.match_all`); `lint`: profile lint.

Worked example: the profile ``keywords = ["KV cache"]`` and the title ``Compressing KV-Caches``.
The title reads ``compressing|kv|caches`` (letters ``compressingkvcaches``); the automaton holds
``kvcache``, ``kvcaches``, ``kvscache``, … and reports ``kvcaches`` at 11..19, which starts at
word 1 and ends with word 2, its inner break where the form's words meet: a match, scored 11
(one term, in the title), with the reason ``keyword "KV cache" in the title: "KV-Caches"``.
"""

from digest.match.authors import Name, name_readings, names_match, parse_name, same_person
from digest.match.lint import LintWarning, lint_profile
from digest.match.matcher import Best, Matcher, best_matches, freeze_long_lived, match_profiles
from digest.match.rank import rank, score
from digest.match.rules import CompiledProfile, PaperHits, compile_profile, passes_categories
from digest.match.scan import Scanner
from digest.match.terms import Term, TermKey, compile_term, plural_forms, term_forms
from digest.match.text import JOINERS, Token, TokenSpan, Words, tokenize

__all__ = [
    "JOINERS",
    "Best",
    "CompiledProfile",
    "LintWarning",
    "Matcher",
    "Name",
    "PaperHits",
    "Scanner",
    "Term",
    "TermKey",
    "Token",
    "TokenSpan",
    "Words",
    "best_matches",
    "compile_profile",
    "compile_term",
    "freeze_long_lived",
    "lint_profile",
    "match_profiles",
    "name_readings",
    "names_match",
    "parse_name",
    "passes_categories",
    "plural_forms",
    "rank",
    "same_person",
    "score",
    "term_forms",
    "tokenize",
]
