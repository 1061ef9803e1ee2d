"""Profile lint (`digest match --lint`): terms that cannot match, match nothing or too much,
and followed authors who wrote nothing."""

from __future__ import annotations

from digest.match import LintWarning, lint_profile
from digest.models import FollowedAuthor, Paper, Profile


def _paper(title: str, *authors: str) -> Paper:
    return Paper(key=title, title=title, authors=authors)


PAPERS = [
    _paper("KV cache compression", "Rishabh Tiwari"),
    _paper("A language model for proteins", "Ana Gómez"),
    _paper("Another language model", "Bob Li"),
    _paper("Graph networks", "Bob Li"),
]


def test_lint_reports_each_kind_of_problem() -> None:
    profile = Profile(
        name="me",
        keywords=("KV cache", "zebra finch", "--"),
        all_of=(("language model", "proteins"),),
        exclude=("*",),
        authors=(FollowedAuthor("R. Tiwari"), FollowedAuthor("Nobody Atall")),
    )
    warnings = lint_profile(profile, PAPERS)
    assert warnings == [
        LintWarning("me", "keyword", "zebra finch", "matched none of the 4 papers"),
        LintWarning("me", "keyword", "--", "cannot match anything"),
        LintWarning("me", "exclude", "*", "cannot match anything"),
        LintWarning("me", "all_of", "language model", "matches 2 of 4 papers (50%): too broad?"),
        LintWarning(
            "me",
            "author",
            "Nobody Atall",
            "wrote none of the 4 papers (another spelling? add it to aliases)",
        ),
    ]


def test_a_well_aimed_profile_has_no_warnings() -> None:
    profile = Profile(name="me", keywords=("KV cache",), authors=(FollowedAuthor("Bob Li"),))
    assert lint_profile(profile, PAPERS, broad_share=0.5) == []


def _in(title: str, *categories: str) -> Paper:
    return Paper(key=title, title=title, categories=categories)


FILTERED = [
    _in("Flaky tests in CI", "cs.SE"),
    _in("Fixing flaky tests", "cs.SE"),
    _in("Flaky tests in medical imaging pipelines", "cs.LG"),
    _in("Metamorphic testing of compilers", "cs.LG"),
    _in("Metamorphic testing of medical imaging", "cs.LG"),
]


def test_a_term_whose_every_hit_a_filter_drops_is_reported_naming_the_filter() -> None:
    profile = Profile(
        name="me",
        keywords=("flaky test*", "metamorphic testing"),
        exclude=("medical imaging",),
        categories=("cs.LG", "cs.CL"),
    )
    warnings = lint_profile(profile, FILTERED, broad_share=1.0)
    assert warnings == [
        LintWarning(
            "me",
            "keyword",
            "flaky test*",
            "matched 3 of the 5 papers, but every one is dropped: 2 by categories"
            " (cs.LG, cs.CL), 1 by exclude 'medical imaging'",
        ),
    ]


def test_a_term_with_one_hit_that_passes_the_filters_is_not_reported() -> None:
    profile = Profile(name="me", keywords=("metamorphic testing",), categories=("cs.LG",))
    assert lint_profile(profile, FILTERED, broad_share=1.0) == []
