"""Identity-aware author matches: a pure step after the rules, for followed authors with ids.

A followed author with an `openalex` or `orcid` id is one person, not a name. For each paper
and profile, given the rule verdict (or none) and the author ids the paper carries per position
(`Paper.author_ids`, `Paper.author_orcids`, known from OpenAlex, directly or by a lookup):

- the id at a position the name matched is the followed one: confirmed, the reason's term says
  how (`Wei Chen (OpenAlex A5023888391)`, `Wei Chen (ORCID 0000-…)`);
- another id of that kind is there: a namesake, the reason is dropped (and the paper with it when
  nothing else picked it);
- no id is known there (an arXiv listing not found in OpenAlex, or the source off): the match
  stays, marked `Wei Chen (name match)` so the reader can tell;
- the followed id is on the paper at a position the name rules did not match (another spelling):
  the paper matches anyway, confirmed.

Plain-name authors are left to the name rules. Worked example: a profile follows
`{ name = "Wei Chen", openalex = "A1" }`; a paper lists "Wei Chen" with id A2: dropped; with
A1: kept, "because you follow Wei Chen (OpenAlex A1)"; with no ids: kept, "… (name match)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

from digest.match.rank import rank, score
from digest.models import FollowedAuthor, Match, Paper, Profile, Reason

Standing = Literal["confirmed", "namesake", "unknown"]
NAME_MATCH = "name match"


def standing(author: FollowedAuthor, paper: Paper, positions: list[int]) -> tuple[Standing, str]:
    """Whether the author at these positions of the paper is the followed person, and the id
    that says so ("" unless confirmed)."""
    different = False
    for kind, wanted, ids in (
        ("OpenAlex", author.openalex, paper.author_ids),
        ("ORCID", author.orcid, paper.author_orcids),
    ):
        if not wanted:
            continue
        for position in positions:
            found = ids[position] if position < len(ids) else ""
            if found == wanted:
                return "confirmed", f"{kind} {wanted}"
            different = different or bool(found)
    return ("namesake", "") if different else ("unknown", "")


def _identified_positions(author: FollowedAuthor, paper: Paper) -> list[int]:
    """Positions where the paper carries the followed author's id."""
    return [
        i
        for i in range(len(paper.authors))
        if (
            author.openalex and i < len(paper.author_ids) and paper.author_ids[i] == author.openalex
        )
        or (
            author.orcid and i < len(paper.author_orcids) and paper.author_orcids[i] == author.orcid
        )
    ]


def confirm_authors(profile: Profile, paper: Paper, match: Match | None) -> Match | None:
    """The profile's match of the paper once followed ids are taken into account (None: the
    paper is not for this profile)."""
    identified = {a.name: a for a in profile.authors if a.identified}
    if not identified:
        return match
    reasons: list[Reason] = []
    changed = False
    named: set[str] = set()
    for reason in match.reasons if match is not None else ():
        author = identified.get(reason.term) if reason.kind == "author" else None
        if author is None:
            reasons.append(reason)
            continue
        named.add(author.name)
        positions = [i for i, name in enumerate(paper.authors) if name == reason.text]
        verdict, how = standing(author, paper, positions)
        changed = True
        if verdict == "confirmed":
            reasons.append(replace(reason, term=f"{author.name} ({how})"))
        elif verdict == "unknown":
            reasons.append(replace(reason, term=f"{author.name} ({NAME_MATCH})"))
    for author in identified.values():
        if author.name in named:
            continue
        positions = _identified_positions(author, paper)
        if positions:
            _, how = standing(author, paper, positions)
            written = paper.authors[positions[0]]
            reasons.insert(0, Reason("author", f"{author.name} ({how})", "authors", written))
            changed = True
    if not changed:
        return match
    if not reasons:
        return None
    ordered = tuple(sorted(reasons, key=lambda r: r.kind != "author"))  # authors first
    return Match(paper, ordered, score(ordered))


def confirm_all(
    profiles: Mapping[str, Profile], paper: Paper, verdicts: Mapping[str, Match]
) -> dict[str, Match]:
    """`confirm_authors` for every profile of a pass: the verdicts, namesakes dropped, id
    matches added."""
    result = dict(verdicts)
    for name, profile in profiles.items():
        confirmed = confirm_authors(profile, paper, verdicts.get(name))
        if confirmed is None:
            result.pop(name, None)
        else:
            result[name] = confirmed
    return result


def needs_confirmation(
    profiles: Mapping[str, Profile], paper: Paper, verdicts: Mapping[str, Match]
) -> bool:
    """True when a name-only hit on an id-followed author could be settled by learning the
    paper's author ids (the paper carries none yet)."""
    if any(paper.author_ids) or any(paper.author_orcids):
        return False
    for name, match in verdicts.items():
        profile = profiles.get(name)
        if profile is None:
            continue
        identified = {a.name for a in profile.authors if a.identified}
        if any(r.kind == "author" and r.term in identified for r in match.reasons):
            return True
    return False


def confirm_listing(
    profiles: Sequence[Profile], papers: Sequence[Paper], ranked: Mapping[str, Sequence[Match]]
) -> dict[str, tuple[Match, ...]]:
    """`digest match --input/--all`: each profile's ranked matches of `papers` with followed
    ids taken into account (as `confirm_authors`), ranked again."""
    result = {name: tuple(matches) for name, matches in ranked.items()}
    for profile in profiles:
        if not any(a.identified for a in profile.authors):
            continue
        by_key = {m.paper.key: m for m in result.get(profile.name, ())}
        kept = [
            confirmed
            for paper in papers
            if (confirmed := confirm_authors(profile, paper, by_key.get(paper.key))) is not None
        ]
        result[profile.name] = rank(kept)
    return result
