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
