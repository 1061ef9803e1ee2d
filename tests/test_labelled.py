"""The labelled matching set: (profile, listing, should match) cases drawn from the seed papers.

Every line of ``tests/data/labelled/cases.jsonl`` is one case:

* ``id``, ``rule`` (the DESIGN.md profile rule it exercises, one of ``RULES``), ``should_match``;
* ``profile``: a small profile in the config's shape (``keywords``, ``all_of``, ``exclude``,
  ``authors`` as names or ``{name, aliases}``, ``categories``);
* ``listing``: one whole listing object (DESIGN.md's listing schema), so a case reads on its own;
* ``seed``: the seed it comes from, ``<seed file stem>:<line>``; ``variant``: ``null`` when the
  listing is that seed line unchanged, else what was edited;
* optional ``expect``: a reason the match must carry (``kind``, ``term``, ``field``, and
  ``text`` when given); optional ``note``.

The matcher runs on each case alone, two ways: through the public API (`match_profiles`: the
text read and scanned now) and through stored hits (`tests/stored_path.py`: the paper ingested
into a real store, scanned once, matched from its stored scan), which must agree exactly. The
suite reports precision and recall over the whole set and requires both to be 1.0: a case the
matcher gets wrong is a matcher bug against DESIGN.md, not a case to weaken.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from digest.match import match_profiles
from digest.models import FollowedAuthor, Match, Paper, Profile
from digest.sources.files import listing_to_paper
from tests.stored_path import match_stored_profiles, said

CASES_FILE = Path(__file__).parent / "data" / "labelled" / "cases.jsonl"
SEEDS = Path(__file__).resolve().parents[1] / "seeds"
MIN_CASES = 339

# Every rule of DESIGN.md's profile contract, each with positive and negative cases.
RULES = (
    "keyword.case",
    "keyword.accents",
    "keyword.compat",
    "keyword.whole_word",
    "keyword.separators",
    "keyword.compound",
    "keyword.plural",
    "keyword.possessive",
    "keyword.prefix",
    "keyword.latex",
    "keyword.fields",
    "all_of",
    "exclude",
    "categories",
    "author.case",
    "author.accents",
    "author.punctuation",
    "author.last_first",
    "author.initials",
    "author.middle_names",
    "author.aliases",
    "author.abstract_only",
    "author.first_name",
    "author.last_name",
    "precedence.exclude",
    "precedence.categories",
)
PROFILE_KEYS = frozenset({"keywords", "all_of", "exclude", "authors", "categories"})
CASE_KEYS = frozenset(
    {"id", "rule", "should_match", "profile", "listing", "seed", "variant", "expect", "note"}
)


@dataclass(frozen=True, eq=False)
class Case:
    """One labelled case, with its profile and paper built from the JSON."""

    id: str
    rule: str
    should_match: bool
    profile: Profile
    paper: Paper
    raw: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.id} [{self.rule}]"


def build_profile(name: str, obj: dict[str, Any]) -> Profile:
    """A Profile from the case's profile object (the config's key names)."""
    unknown = set(obj) - PROFILE_KEYS
    assert not unknown, f"{name}: unknown profile keys {sorted(unknown)}"
    authors = []
    for entry in obj.get("authors", []):
        if isinstance(entry, str):
            authors.append(FollowedAuthor(entry))
        else:
            authors.append(FollowedAuthor(entry["name"], tuple(entry.get("aliases", ()))))
    return Profile(
        name=name,
        keywords=tuple(obj.get("keywords", ())),
        all_of=tuple(tuple(group) for group in obj.get("all_of", ())),
        exclude=tuple(obj.get("exclude", ())),
        authors=tuple(authors),
        categories=tuple(obj.get("categories", ())),
    )


def build_paper(listing: dict[str, Any]) -> Paper:
    """A Paper through the listing loader, with the title and abstract kept verbatim.

    The loader folds runs of whitespace; the matcher gets the text exactly as the case wrote it so
    that line breaks inside a term (as in arXiv abstracts) are exercised too.
    """
    paper = listing_to_paper(listing, "labelled")
    return replace(paper, title=listing["title"], abstract=listing["abstract"])


@cache
def load_cases() -> tuple[Case, ...]:
    cases = []
    for number, line in enumerate(CASES_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        unknown = set(raw) - CASE_KEYS
        assert not unknown, f"line {number}: unknown case keys {sorted(unknown)}"
        cases.append(
            Case(
                id=raw["id"],
                rule=raw["rule"],
                should_match=raw["should_match"],
                profile=build_profile(raw["id"], raw["profile"]),
                paper=build_paper(raw["listing"]),
                raw=raw,
            )
        )
    return tuple(cases)


# The two ways a paper is matched: its text scanned now, or its scan stored at ingest.
PATHS = ("direct", "stored")


@cache
def run(case: Case, path: str = "direct") -> tuple[Match, ...]:
    """The case's matches: its one paper against its one profile, by `path`."""
    if path == "stored":
        return match_stored_profiles([case.paper], [case.profile])[case.profile.name]
    return match_profiles([case.paper], [case.profile])[case.profile.name]


def seed_record(seed: str) -> dict[str, Any]:
    stem, _, line = seed.rpartition(":")
    lines = (SEEDS / f"{stem}.jsonl").read_text(encoding="utf-8").splitlines()
    record: dict[str, Any] = json.loads(lines[int(line) - 1])
    return record


def ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 1.0


def report(cases: tuple[Case, ...], path: str = "direct") -> tuple[str, list[str], float, float]:
    """The precision/recall report, the misclassified cases, precision and recall."""
    totals: Counter[str] = Counter()
    per_rule: dict[str, Counter[str]] = {rule: Counter() for rule in RULES}
    wrong = []
    for case in cases:
        predicted = bool(run(case, path))
        outcome = ("t" if predicted == case.should_match else "f") + ("p" if predicted else "n")
        totals[outcome] += 1
        per_rule.setdefault(case.rule, Counter())[outcome] += 1
        if outcome in ("fp", "fn"):
            kind = "false positive" if outcome == "fp" else "false negative"
            wrong.append(f"{case.label}: {kind}")
    precision = ratio(totals["tp"], totals["tp"] + totals["fp"])
    recall = ratio(totals["tp"], totals["tp"] + totals["fn"])
    lines = [
        f"labelled set: {len(cases)} cases, "
        f"{totals['tp'] + totals['fn']} should match, {totals['tn'] + totals['fp']} should not",
        f"TP {totals['tp']}  FP {totals['fp']}  FN {totals['fn']}  TN {totals['tn']}",
        f"precision {precision:.4f}  recall {recall:.4f}",
        "",
        f"{'rule':<24} {'pos':>4} {'neg':>4} {'FP':>4} {'FN':>4}",
    ]
    for rule, counts in per_rule.items():
        positives = counts["tp"] + counts["fn"]
        negatives = counts["tn"] + counts["fp"]
        lines.append(
            f"{rule:<24} {positives:>4} {negatives:>4} {counts['fp']:>4} {counts['fn']:>4}"
        )
    if wrong:
        lines += ["", "misclassified:", *wrong]
    return "\n".join(lines), wrong, precision, recall


@pytest.mark.parametrize("path", PATHS)
def test_precision_and_recall_are_one(request: pytest.FixtureRequest, path: str) -> None:
    text, wrong, precision, recall = report(load_cases(), path)
    print(text)
    request.node.add_report_section("call", "labelled set", text)
    assert (precision, recall) == (1.0, 1.0), (
        f"precision {precision:.4f}, recall {recall:.4f}; misclassified:\n" + "\n".join(wrong)
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", load_cases(), ids=lambda case: case.id)
def test_case(case: Case, path: str) -> None:
    """Each case on its own, against the production matcher (one test id per case and path)."""
    assert bool(run(case, path)) is case.should_match, case.raw.get("note", case.raw["variant"])


@pytest.mark.parametrize("case", load_cases(), ids=lambda case: case.id)
def test_both_paths_give_the_same_matches(case: Case) -> None:
    """Stored hits give the same verdict, score and reasons as the text scanned now."""
    assert said(run(case, "stored")) == said(run(case, "direct"))


@pytest.mark.parametrize("path", PATHS)
def test_expected_reasons(path: str) -> None:
    """Where a case names the reason (kind, term, field, text), the match carries it."""
    missing = []
    for case in load_cases():
        expect = case.raw.get("expect")
        matches = run(case, path)
        if expect is None or not matches:
            continue  # misclassified cases are reported by the precision/recall test
        reasons = matches[0].reasons
        if not any(
            (r.kind, r.term, r.field) == (expect["kind"], expect["term"], expect["field"])
            and ("text" not in expect or r.text == expect["text"])
            for r in reasons
        ):
            got = [(r.kind, r.term, r.field, r.text) for r in reasons]
            missing.append(f"{case.label}: expected {expect}, got {got}")
    assert not missing, "\n".join(missing)


def test_the_set_covers_every_rule_both_ways() -> None:
    cases = load_cases()
    assert len(cases) >= MIN_CASES
    ids = Counter(case.id for case in cases)
    assert [i for i, n in ids.items() if n > 1] == []
    assert sorted({case.rule for case in cases} - set(RULES)) == []
    counts = Counter((case.rule, case.should_match) for case in cases)
    lacking = [
        f"{rule} ({'positive' if wanted else 'negative'})"
        for rule in RULES
        for wanted in (True, False)
        if counts[rule, wanted] == 0
    ]
    assert lacking == []


def test_listings_come_from_the_seeds() -> None:
    """An unedited case is its seed line verbatim; a variant says what it changed."""
    problems = []
    for case in load_cases():
        seed = seed_record(case.raw["seed"])
        listing, variant = case.raw["listing"], case.raw["variant"]
        if variant is None and listing != seed:
            problems.append(f"{case.label}: listing differs from {case.raw['seed']}")
        if variant is not None and (listing == seed or not variant.strip()):
            problems.append(f"{case.label}: variant {variant!r} but listing is the seed")
    assert problems == []
