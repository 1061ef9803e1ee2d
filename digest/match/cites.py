"""Citation alerts: a pure step finding the papers that cite a profile's watched works.

A profile watches papers (`cites`: `arxiv:…`, `doi:…`) and, with `cites_my_works`, every work of
its `orcid`; the OpenAlex source resolves each to OpenAlex work ids (stored) and brings the
works citing them, with what each cites (`Paper.referenced`). A paper citing a watched work
gets one reason of kind "cites" per watched work it cites: `term` is the watched paper as the
profile names it (`arxiv:2402.17193`, or `orcid:…` for "your works"), `field` is "title" (the
reason's `text` is the cited work's title), `text` the cited work's title.
"""

from __future__ import annotations

from collections.abc import Mapping

from digest.models import Match, Paper, Reason

CITES_SCORE = 1000.0  # above every rule score: the section comes first anyway


def watched_names(cites: tuple[str, ...], orcid: str, my_works: bool) -> tuple[str, ...]:
    """What a profile watches, as the store keys its resolutions."""
    return cites + ((f"orcid:{orcid}",) if my_works and orcid else ())


def citing_match(paper: Paper, watched: Mapping[str, Mapping[str, str]]) -> Match | None:
    """The paper's "cites" match for a profile watching `watched` (name → work id → title), or
    None when it cites none of them. A watched paper citing itself is not news."""
    if not paper.referenced:
        return None
    cited = set(paper.referenced) - {paper.extra_value("openalex_id", "")}
    reasons = [
        Reason("cites", name, "title", title)
        for name, works in watched.items()
        for work_id, title in works.items()
        if work_id in cited
    ]
    if not reasons:
        return None
    return Match(paper, tuple(dict.fromkeys(reasons)), CITES_SCORE)
