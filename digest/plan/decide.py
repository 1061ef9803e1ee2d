"""The decider: what each profile's next digest holds, from data alone.

No store, no clock, no network: the planning pass (`digest.plan.planning`) reads the window's
candidates, the verdicts, the source health, the watched works and the suggestions, and hands
them here. Each step is a function of its inputs, in the order a candidate goes through them:

1. `window_start`: where a profile's candidates start (DESIGN.md, the window rule).
2. `confirm_identities`: followed ids settle name hits (namesakes dropped, id matches added).
3. `split_citing`: a paper citing a watched work is shown once, under "Citing your work".
4. `sort_candidate`: 2 and 3 for one candidate, its verdicts kept for the profiles it is a
   candidate for, into each profile's `Tally`.
5. `compose_digest`: muting, ranking and fitting the size.
6. `explain_empty`: an empty digest says why (`empty_reason`), counted from the last digest
   when there was one since the window's start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from digest.match import rank, same_person
from digest.match.cites import citing_match
from digest.match.identity import confirm_all
from digest.models import Digest, Match, Paper, Profile, RenderedDigest, SourceStatus
from digest.render import CLIP_BYTES, Linker, fit_digest, render_digest, source_title

# A profile's watched works: watched name (`arxiv:…`, `doi:…`, `orcid:…`) → work id → title.
Watched = Mapping[str, Mapping[str, str]]


def window_start(
    profile: Profile,
    now: datetime,
    *,
    origin: datetime | None,
    last_send_run: datetime | None,
) -> datetime:
    """Where the profile's candidates start (DESIGN.md, the window rule).

    The first digest (no `origin` yet) reaches back `first_run_days`. Later ones reach back
    `window_days`, and always at least to the last completed send run, so a weekly profile or a
    machine that was off for a week still gets everything since its last digest; never before
    the first digest's start (`origin`), so a profile does not inherit a backlog it was never
    offered.
    """
    if origin is None:
        return now - timedelta(days=profile.first_run_days)
    start = now - timedelta(days=profile.window_days)
    if last_send_run is not None:
        start = min(start, last_send_run)
    return max(start, origin)


def confirm_identities(
    identified: Mapping[str, Profile], paper: Paper, verdicts: Mapping[str, Match]
) -> Mapping[str, Match]:
    """The verdicts once the profiles following authors by id (`identified`, by name) have
    settled the paper's name hits: namesakes dropped, id matches added, the rest marked."""
    if not identified:
        return verdicts  # most passes: no copy per candidate
    return confirm_all(identified, paper, verdicts)


def split_citing(
    paper: Paper,
    verdicts: Mapping[str, Match],
    watched: Mapping[str, Watched],
    wanted_by: frozenset[str],
) -> tuple[Mapping[str, Match], dict[str, Match]]:
    """The verdicts without the profiles for which the paper cites a watched work, and those
    profiles' "cites" matches, by name. A citing paper is shown once, in "Citing your work",
    with its other reasons added to the citation."""
    citing: dict[str, Match] = {}
    for name, works in watched.items():
        if name in wanted_by and (cited := citing_match(paper, works)) is not None:
            citing[name] = cited
    if not citing:
        return verdicts, citing  # most candidates: the verdicts as they are, not copied
    rest = dict(verdicts)
    for name, cited in citing.items():
        also = rest.pop(name, None)
        if also is not None:
            cited = replace(cited, reasons=(*cited.reasons, *also.reasons))
        citing[name] = cited
    return rest, citing


@dataclass
class Tally:
    """What one profile's candidates came to in a pass: its rule matches, its citing papers,
    how many candidates there were and, when it `pools` them (it may get suggestions), every
    candidate."""

    pools: bool = False
    found: list[Match] = field(default_factory=list)
    citing: list[Match] = field(default_factory=list)
    pool: list[Paper] = field(default_factory=list)
    candidates: int = 0

    @property
    def picked(self) -> list[Match]:
        """Every paper a rule or a citation picked (never suggested as well)."""
        return self.found + self.citing


def sort_candidate(
    paper: Paper,
    wanted_by: frozenset[str],
    verdicts: Mapping[str, Match],
    tallies: Mapping[str, Tally],
    *,
    identified: Mapping[str, Profile],
    watched: Mapping[str, Watched],
) -> None:
    """Count one candidate into the tallies of the profiles it is a candidate for
    (`wanted_by`): confirmed, citing papers apart, verdicts for other profiles left out."""
    for name in wanted_by:
        tally = tallies.get(name)
        if tally is not None:
            tally.candidates += 1
            if tally.pools:
                tally.pool.append(paper)
    confirmed = confirm_identities(identified, paper, verdicts)
    rest, citing = split_citing(paper, confirmed, watched, wanted_by)
    for name, cited in citing.items():
        tallies[name].citing.append(cited)
    # By the profiles it is a candidate for (a send group's few), not by its verdicts (every
    # configured profile's matches).
    for name in wanted_by:
        verdict = rest.get(name)
        tally = tallies.get(name)
        if verdict is not None and tally is not None:
            # Remembered verdicts may hold an older reading of the paper (upvotes): rank this one.
            same = verdict.paper is paper or verdict.paper == paper
            tally.found.append(verdict if same else replace(verdict, paper=paper))


def drop_muted(profile: Profile, matches: Sequence[Match]) -> list[Match]:
    """The matches without those any of whose authors the profile muted (by the matcher's name
    rules), unless a followed author also wrote them. A pure post-filter."""
    if not profile.mute_authors:
        return list(matches)
    followed = [name for author in profile.authors for name in author.names]

    def muted(match: Match) -> bool:
        authors = match.paper.authors
        if match.followed or any(same_person(a, f) for a in authors for f in followed):
            return False
        return any(same_person(a, m) for a in authors for m in profile.mute_authors)

    return [m for m in matches if not muted(m)]


@dataclass(frozen=True)
class LastDigest:
    """The profile's last delivered digest, when it came after the window's start: an empty
    digest counts what was stored since then (`stored_since`), the moment a reader knows."""

    delivered: datetime
    stored_since: int


@dataclass(frozen=True)
class DigestInputs:
    """Everything besides the tally that a profile's digest is composed from."""

    now: datetime
    since: datetime
    problems: Sequence[SourceStatus] = ()
    suggestions: Sequence[Match] = ()
    clip_bytes: int = CLIP_BYTES
    feedback: Linker | None = None
    arxiv: bool = False  # whether arXiv is a source (its weekends explain an empty digest)


def compose_digest(
    profile: Profile, tally: Tally, inputs: DigestInputs
) -> tuple[Digest, RenderedDigest]:
    """The profile's digest: muted authors left out, ranked, fitted to the size limit (what
    does not fit stays a candidate), rendered. An empty one gets its reason from
    `explain_empty`."""
    return fit_digest(
        profile,
        drop_muted(profile, rank(tally.found)),
        inputs.now,
        inputs.problems,
        clip_bytes=inputs.clip_bytes,
        feedback=inputs.feedback,
        citing=rank(tally.citing),
        suggestions=drop_muted(profile, inputs.suggestions),
    )


def explain_empty(
    digest: Digest, tally: Tally, inputs: DigestInputs, last: LastDigest | None = None
) -> tuple[Digest, RenderedDigest]:
    """An empty digest with the reason it is empty, rendered: counted from the last digest
    when there is one since the window's start (it took what came before it), else from the
    window's start."""
    profile = digest.profile
    if last is not None and last.delivered > inputs.since:
        why = empty_reason(
            profile,
            last.delivered,
            last.stored_since,
            inputs.problems,
            inputs.now,
            arxiv=inputs.arxiv,
            since_digest=True,
        )
    else:
        why = empty_reason(
            profile, inputs.since, tally.candidates, inputs.problems, inputs.now, arxiv=inputs.arxiv
        )
    digest = replace(digest, empty_reason=why)
    return digest, render_digest(digest)


def empty_reason(
    profile: Profile,
    since: datetime,
    candidates: int,
    problems: Sequence[SourceStatus],
    now: datetime,
    *,
    arxiv: bool,
    since_digest: bool = False,
) -> str:
    """Why a digest is empty, in one line: nothing fetched, or nothing matched what was; the
    weekend (arXiv announces nothing on Saturday and Sunday); sources failing since when.

    `since` is the window's start, or with `since_digest` the last digest's delivery (the
    reference a reader knows: "nothing new since the last digest")."""
    zone = ZoneInfo(profile.timezone)
    start = f"{since.astimezone(zone):%a %d %b %H:%M}"
    if since_digest:
        start = f"the last digest ({start})"
    if candidates:
        noun = "paper" if candidates == 1 else "papers"
        why = f"{candidates} {noun} fetched since {start}, none matched"
    elif since_digest:
        why = f"no new papers since {start}"
    else:
        why = f"no new papers fetched since {start}"
    if arxiv and now.astimezone(zone).weekday() >= 5:
        why += " — arXiv announces nothing on weekends"
    for problem in problems:
        since_when = problem.failing_since or problem.last_success
        failing = f" since {since_when.astimezone(zone):%a %d %b %H:%M}" if since_when else ""
        why += f"; {source_title(problem.name)} failing{failing}"
    return why


def expiring(
    profile: Profile,
    leaving: Sequence[Paper],
    verdicts: Sequence[Mapping[str, Match]],
    *,
    identified: bool,
    watched: Watched,
) -> list[str]:
    """The keys of the papers leaving the profile's window that it wanted: matched (after its
    followed ids settled the name hits: namesakes are not wanted) or citing a watched work.
    `verdicts[i]` are `leaving[i]`'s."""
    settle = {profile.name: profile} if identified else {}
    return [
        paper.key
        for paper, found in zip(leaving, verdicts, strict=True)
        if profile.name in confirm_identities(settle, paper, found)
        or (watched and citing_match(paper, watched) is not None)
    ]
