"""The planning pass: reads what the decider needs from the store, once per pass, and runs it.

A `PlanPass` is given its parts (the store, the settings, the moment it plans for, the app's
`PassMemory` — matcher, verdicts, decoded papers and what suggestions share —, the feedback
links); `App.plan_pass` builds one. It reads each profile's window, one
candidate query for all profiles, the source health, the watched works, and trains the
suggestions; `digest.plan.decide` does the rest. Nothing is written, except the suggestion
models kept for the next pass (`Suggester.keep`) and, in `expire_stale`, the papers that left
a window undelivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from digest.match.cites import watched_names
from digest.models import Digest, Match, Paper, Profile, RenderedDigest
from digest.plan.decide import (
    DigestInputs,
    LastDigest,
    Tally,
    Watched,
    compose_digest,
    expiring,
    explain_empty,
    sort_candidate,
)
from digest.plan.decide import window_start as window_rule_start
from digest.plan.memory import PassMemory
from digest.render import CLIP_BYTES, Linker
from digest.settings import Settings
from digest.store import Store
from digest.store.merge import merged

if TYPE_CHECKING:
    from digest.suggest import Suggester

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """The next digest of one profile, rendered, and where its candidates started."""

    digest: Digest
    rendered: RenderedDigest
    since: datetime
    candidates: int = 0  # undelivered papers in the window, matched or not


def wants_suggestions(profile: Profile) -> bool:
    """True when the profile has a library and asks for suggestions (DESIGN.md)."""
    return bool(profile.library) and profile.suggestions > 0


def plan_suggestions(
    suggester: Suggester | None,
    profile: Profile,
    candidates: Sequence[Paper],
    picked: Sequence[Match],
) -> tuple[Match, ...]:
    """The profile's "Suggested for you" papers among its candidates: those no rule picked
    that its model scores high; () without a library (or without a suggester)."""
    if suggester is None or not wants_suggestions(profile):
        return ()
    return suggester.suggest(profile, candidates, {m.paper.key for m in picked})


@dataclass
class PlanPass:
    """One planning pass over the store at `now`."""

    store: Store
    settings: Settings
    now: datetime
    memory: PassMemory
    links: Callable[[Profile], Linker | None] = lambda profile: None
    clip_bytes: int = CLIP_BYTES  # the largest HTML part a digest may have

    def window_start(self, profile: Profile) -> datetime:
        """Where the profile's candidates start now (`decide.window_start` on its records)."""
        window = self.store.window(profile.name)
        return window_rule_start(
            profile,
            self.now,
            origin=window.origin if window else None,
            last_send_run=self.store.last_send_run(profile.name) if window else None,
        )

    def last_digest(self, profile: Profile, *, since: datetime) -> LastDigest | None:
        """The profile's last delivered digest, if after `since`, and how many papers were
        stored since it."""
        delivered = self.store.last_delivery(profile.name)
        if delivered is None or delivered <= since:
            return None
        return LastDigest(delivered, self.store.count_seen_after(delivered))

    def watched_works(self, profiles: Sequence[Profile]) -> dict[str, Watched]:
        """Each watching profile's watched papers, resolved to OpenAlex work ids and titles
        (what the OpenAlex source stored); empty without the source."""
        if self.settings.sources.openalex_on is None:
            return {}
        watched: dict[str, Watched] = {}
        for profile in profiles:
            names = watched_names(profile.cites, profile.orcid, profile.cites_my_works)
            if names:
                watched[profile.name] = self.store.resolved_works(names)
        return watched

    def new_suggester(self, extra_background: Sequence[Paper] = ()) -> Suggester:
        """The suggestions of this pass (digest.suggest, only imported now, so a profile
        without a library never loads scikit-learn), over every profile of the instance."""
        from digest.suggest import Suggester

        return Suggester(
            self.store,
            self.now,
            self.settings.profile_records(),
            extra_background,
            memory=self.memory.suggest,
        )

    def plan(self, profiles: Sequence[Profile]) -> dict[str, Plan]:
        """The digests `profiles` would get now, by name; nothing changes but the suggestion
        models kept.

        One candidate query serves them all (the window rule, each profile with its own window
        and sets), each candidate is decoded and matched once for every profile, then each
        profile's digest is composed from its tally.
        """
        starts = {profile.name: self.window_start(profile) for profile in profiles}
        return self._plan(
            profiles,
            starts,
            self.store.candidates_for(starts, self.memory.papers_of(self.store)),
            (),
        )

    def plan_listing(self, profiles: Sequence[Profile], papers: Sequence[Paper]) -> dict[str, Plan]:
        """The digests `profiles` would get if `papers` (a listing file) were their only
        candidates: the same steps as `plan` (identities, citing, muting, ranking, fitting,
        suggestions), so `digest match --input` shows what a digest of them would hold."""
        starts = {profile.name: self.now for profile in profiles}
        everyone = frozenset(starts)
        # Each paper as the store would hold it if it were new now (its sources, first seen),
        # so it renders, and so fits, as it would in the digest.
        held = [merged(paper, (paper.key,), None, self.now)[1] for paper in papers]
        return self._plan(profiles, starts, ((paper, everyone) for paper in held), held)

    def _plan(
        self,
        profiles: Sequence[Profile],
        starts: Mapping[str, datetime],
        candidates: Iterable[tuple[Paper, frozenset[str]]],
        background: Sequence[Paper],
    ) -> dict[str, Plan]:
        """Sort every candidate into the profiles' tallies, train the suggestions they need,
        then compose each profile's digest from its tally."""
        tallies = self._tallies(profiles, candidates)
        problems = self.store.failing_sources()
        pooling = [p for p in profiles if tallies[p.name].pools]
        suggester = self.new_suggester(background) if pooling else None
        if suggester is not None:
            suggester.prepare(pooling)
        plans = {}
        for profile in profiles:
            inputs = DigestInputs(
                now=self.now,
                since=starts[profile.name],
                problems=(*problems, *self.store.failing_chats(profile.name))
                if profile.notify
                else problems,
                suggestions=plan_suggestions(
                    suggester, profile, tallies[profile.name].pool, tallies[profile.name].picked
                ),
                clip_bytes=self.clip_bytes,
                feedback=self.links(profile),
                arxiv=self.settings.sources.arxiv is not None,
            )
            plans[profile.name] = self._compose(profile, tallies[profile.name], inputs)
        if suggester is not None:
            suggester.keep()
        return plans

    def _tallies(
        self, profiles: Sequence[Profile], candidates: Iterable[tuple[Paper, frozenset[str]]]
    ) -> dict[str, Tally]:
        """Each profile's tally of the candidates: each matched once for all of them."""
        tallies = {p.name: Tally(pools=wants_suggestions(p)) for p in profiles}
        identified = {p.name: p for p in profiles if any(a.identified for a in p.authors)}
        watched = self.watched_works(profiles)
        listed = list(candidates)  # a window's papers: their stored scans are read together
        match = self.memory.verdicts_of(self.store, profiles, [paper for paper, _ in listed])
        for paper, wanted_by in listed:
            sort_candidate(
                paper, wanted_by, match(paper), tallies, identified=identified, watched=watched
            )
        return tallies

    def _compose(self, profile: Profile, tally: Tally, inputs: DigestInputs) -> Plan:
        """The profile's plan: its digest composed from the tally, or, with no paper, the
        empty digest that says why."""
        digest, rendered = compose_digest(profile, tally, inputs)
        if not digest.papers:
            last = self.last_digest(profile, since=inputs.since)
            digest, rendered = explain_empty(digest, tally, inputs, last)
        return Plan(digest, rendered, inputs.since, tally.candidates)

    def expire_stale(self, profile: Profile) -> int:
        """Record the papers the profile wants that left its window undelivered; how many.

        Only papers first stored since the last look are read (the window's `expired_until`).
        The first call only marks where the profile's window began.
        """
        start = self.window_start(profile)
        window = self.store.window(profile.name)
        if window is None:
            self.store.record_expired(profile.name, (), origin=start, until=start, now=self.now)
            return 0
        if window.expired_until >= start:
            return 0
        leaving = list(self.store.leaving_window(profile.name, window.expired_until, start))
        match = self.memory.verdicts_of(self.store, [profile], leaving)
        keys = expiring(
            profile,
            leaving,
            [match(paper) for paper in leaving],
            identified=any(a.identified for a in profile.authors),
            watched=self.watched_works([profile]).get(profile.name, {}),
        )
        self.store.record_expired(
            profile.name, keys, origin=window.origin, until=start, now=self.now
        )
        if keys:
            log.warning(
                "%s: %d paper(s) left the %d-day window undelivered (expired; see digest history)",
                profile.name,
                len(keys),
                profile.window_days,
            )
        return len(keys)
