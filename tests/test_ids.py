"""Author and work identifiers: ORCID checksums, OpenAlex ids, watched papers, and their
settings (`orcid`, `authors = [{ openalex, orcid }]`, `cites`, `cites_my_works`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.ids import arxiv_of_doi, normalise_openalex, normalise_orcid, normalise_watched
from digest.settings import load_settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("0000-0002-1825-0097", "0000-0002-1825-0097", id="plain"),
        pytest.param("https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097", id="url"),
        pytest.param("0000-0002-1694-233x", "0000-0002-1694-233X", id="check-digit-x"),
        pytest.param("0000000218250097", "0000-0002-1825-0097", id="no-hyphens"),
    ],
)
def test_an_orcid_is_normalised(given: str, expected: str) -> None:
    assert normalise_orcid(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("0000-0002-1825-0098", id="bad-checksum"),
        pytest.param("0000-0002-1825", id="short"),
        pytest.param("A5023888391", id="openalex-id"),
    ],
)
def test_a_bad_orcid_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="not an ORCID"):
        normalise_orcid(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("A5023888391", "A5023888391", id="plain"),
        pytest.param("https://openalex.org/A5023888391", "A5023888391", id="url"),
        pytest.param("https://api.openalex.org/authors/a5023888391", "A5023888391", id="api"),
    ],
)
def test_an_openalex_id_is_normalised(given: str, expected: str) -> None:
    assert normalise_openalex(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("arxiv:2402.17193v2", "arxiv:2402.17193", id="arxiv-version"),
        pytest.param("https://arxiv.org/abs/2402.17193", "arxiv:2402.17193", id="arxiv-url"),
        pytest.param("doi:10.48550/arXiv.2310.01234", "arxiv:2310.01234", id="arxiv-doi"),
        pytest.param(
            "https://doi.org/10.1145/3394486.3403172", "doi:10.1145/3394486.3403172", id="doi-url"
        ),
    ],
)
def test_a_watched_paper_is_normalised(given: str, expected: str) -> None:
    assert normalise_watched(given) == expected


def test_an_arxiv_doi_names_its_arxiv_id() -> None:
    assert arxiv_of_doi("10.48550/arxiv.2401.01234") == "2401.01234"
    assert arxiv_of_doi("10.1145/3394486.3403172") == ""


PROFILE = """
[[profiles]]
name = "me"
{extra}
"""


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        pytest.param(
            'authors = [{ name = "Wei Chen", openalex = "W123" }]',
            'authors[0] ("Wei Chen").openalex: not an OpenAlex author id',
            id="work-id",
        ),
        pytest.param(
            'authors = [{ name = "Wei Chen", orcid = "0000-0002-1825-0098" }]',
            'authors[0] ("Wei Chen").orcid: not an ORCID iD',
            id="orcid-checksum",
        ),
        pytest.param("cites_my_works = true", "cites_my_works = true needs", id="no-orcid"),
        pytest.param('cites = ["pmid:123"]', "cites: not a paper id: 'pmid:123'", id="bad-cites"),
    ],
)
def test_bad_ids_in_a_profile_are_one_line(tmp_path: Path, extra: str, problem: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(PROFILE.format(extra=extra))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_ids_in_a_profile_reach_its_record(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    extra = (
        'orcid = "https://orcid.org/0000-0002-1825-0097"\ncites_my_works = true\n'
        'cites = ["doi:10.48550/arxiv.2310.01234", "arxiv:2310.01234"]\n'
        'authors = [{ name = "Wei Chen", openalex = "https://openalex.org/A5023888391" }, "Ann"]'
    )
    path.write_text(PROFILE.format(extra=extra))
    [profile] = load_settings(path).profile_records()
    assert profile.orcid == "0000-0002-1825-0097" and profile.cites_my_works
    assert profile.cites == ("arxiv:2310.01234",)
    assert [(a.name, a.openalex, a.identified) for a in profile.authors] == [
        ("Wei Chen", "A5023888391", True),
        ("Ann", "", False),
    ]


def test_openalex_author_ids_join_the_arxiv_listing_by_position() -> None:
    """OpenAlex spells first names its own way and may list fewer authors: an id moves onto
    the stored author at the same position with the same last name, "" elsewhere."""
    from digest.models import Paper
    from digest.store.merge import merge_papers

    arxiv = Paper(
        "arxiv:2401.00001", "T", authors=("Wei Chen", "Ann Lee", "Bo Li"), arxiv_id="2401.00001"
    )
    openalex = Paper(
        "arxiv:2401.00001",
        "T",
        authors=("W. Chen", "Anne Smith"),
        authors_truncated=True,
        arxiv_id="2401.00001",
        author_ids=("A1", "A2"),
        author_orcids=("", "0000-0002-1825-0097"),
        referenced=("W9",),
    )
    merged = merge_papers(arxiv, openalex)
    assert merged.authors == arxiv.authors
    assert merged.author_ids == ("A1", "", "")
    assert merged.author_orcids == ()
    assert merged.referenced == ("W9",)
