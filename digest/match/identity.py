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
from typing import Literal, NamedTuple

from digest.match.rank import rank, score
from digest.models import FollowedAuthor, Match, Paper, Profile, Reason

Standing = Literal["confirmed", "namesake", "unknown"]
NAME_MATCH = "name match"


class _IdKind(NamedTuple):
    """One kind of author id: how a reason names it, and where followed authors and papers
    hold it (a paper's ids are aligned with its authors)."""

    label: str
    followed: Literal["openalex", "orcid"]
    listed: Literal["author_ids", "author_orcids"]

    def ids_at(self, paper: Paper, positions: list[int]) -> list[str]:
        """The paper's ids of this kind at `positions` ("" where it knows none)."""
        ids: tuple[str, ...] = getattr(paper, self.listed)
        return [ids[p] if p < len(ids) else "" for p in positions]

    def positions(self, author: FollowedAuthor, paper: Paper) -> set[int]:
        """The author positions where the paper carries the followed author's id of this kind."""
        wanted = getattr(author, self.followed)
        if not wanted:
            return set()
        ids: tuple[str, ...] = getattr(paper, self.listed)
        return {i for i, found in enumerate(ids[: len(paper.authors)]) if found == wanted}


_ID_KINDS = (
    _IdKind("OpenAlex", "openalex", "author_ids"),
    _IdKind("ORCID", "orcid", "author_orcids"),
)


def standing(author: FollowedAuthor, paper: Paper, positions: list[int]) -> tuple[Standing, str]:
    """Whether the author at these positions of the paper is the followed person, and the id
    that says so ("" unless confirmed)."""
    different = False
    for kind in _ID_KINDS:
        wanted = getattr(author, kind.followed)
        if not wanted:
            continue
        found = kind.ids_at(paper, positions)
        if wanted in found:
            return "confirmed", f"{kind.label} {wanted}"
        different |= any(found)
    return ("namesake", "") if different else ("unknown", "")


def _identified_positions(author: FollowedAuthor, paper: Paper) -> list[int]:
    """Positions where the paper carries the followed author's id."""
    return sorted(set().union(*(kind.positions(author, paper) for kind in _ID_KINDS)))


def _identified(profile: Profile) -> dict[str, FollowedAuthor]:
    """The profile's followed authors with an id, by name."""
    return {a.name: a for a in profile.authors if a.identified}


def confirm_authors(profile: Profile, paper: Paper, match: Match | None) -> Match | None:
    """The profile's match of the paper once followed ids are taken into account (None: the
    paper is not for this profile)."""
    identified = _identified(profile)
    if not identified:
        return match
    reasons, named = _checked_reasons(identified, paper, match)
    added = _id_reasons(identified, paper, named)
    if not named and not added:
        return match
    reasons[:0] = reversed(added)
    if not reasons:
        return None
    ordered = tuple(sorted(reasons, key=_authors_first))
    return Match(paper, ordered, score(ordered))


def _authors_first(reason: Reason) -> bool:
    """Sort key: author reasons before the others (a stable sort keeps the rest in order)."""
    return reason.kind != "author"


def _checked_reasons(
    identified: Mapping[str, FollowedAuthor], paper: Paper, match: Match | None
) -> tuple[list[Reason], set[str]]:
    """The match's reasons with its id-followed authors checked against the paper's ids
    (`_checked`), and the names of those authors."""
    reasons: list[Reason] = []
    named: set[str] = set()
    for reason in match.reasons if match is not None else ():
        author = identified.get(reason.term) if reason.kind == "author" else None
        if author is None:
            reasons.append(reason)
            continue
        named.add(author.name)
        checked = _checked(reason, author, paper)
        if checked is not None:
            reasons.append(checked)
    return reasons, named


def _checked(reason: Reason, author: FollowedAuthor, paper: Paper) -> Reason | None:
    """A name match of an id-followed author, confirmed by the id, marked a name match when the
    paper has no id there, or dropped (None) when another person's id is there."""
    positions = [i for i, name in enumerate(paper.authors) if name == reason.text]
    verdict, how = standing(author, paper, positions)
    if verdict == "namesake":
        return None
    return replace(reason, term=f"{author.name} ({how if verdict == 'confirmed' else NAME_MATCH})")


def _id_reasons(
    identified: Mapping[str, FollowedAuthor], paper: Paper, named: set[str]
) -> list[Reason]:
    """Reasons for id-followed authors whose id is on the paper where no name rule found them
    (another spelling), in the profile's order."""
    found: list[Reason] = []
    for author in identified.values():
        if author.name in named:
            continue
        positions = _identified_positions(author, paper)
        if positions:
            _, how = standing(author, paper, positions)
            written = paper.authors[positions[0]]
            found.append(Reason("author", f"{author.name} ({how})", "authors", written))
    return found


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
    return any(_names_identified(profiles.get(name), match) for name, match in verdicts.items())


def _names_identified(profile: Profile | None, match: Match) -> bool:
    """True when the match has an author reason for one of the profile's id-followed authors."""
    if profile is None:
        return False
    identified = _identified(profile)
    return any(r.kind == "author" and r.term in identified for r in match.reasons)


def confirm_listing(
    profiles: Sequence[Profile], papers: Sequence[Paper], ranked: Mapping[str, Sequence[Match]]
) -> dict[str, tuple[Match, ...]]:
    """`digest match --input/--all`: each profile's ranked matches of `papers` with followed
    ids taken into account (as `confirm_authors`), ranked again."""
    result = {name: tuple(matches) for name, matches in ranked.items()}
    for profile in profiles:
        if any(a.identified for a in profile.authors):
            result[profile.name] = _confirmed_ranking(profile, papers, result.get(profile.name, ()))
    return result


def _confirmed_ranking(
    profile: Profile, papers: Sequence[Paper], matches: Sequence[Match]
) -> tuple[Match, ...]:
    """The profile's matches of `papers` confirmed one by one (`confirm_authors`), ranked."""
    by_key = {m.paper.key: m for m in matches}
    confirmed = (confirm_authors(profile, paper, by_key.get(paper.key)) for paper in papers)
    return rank(m for m in confirmed if m is not None)
