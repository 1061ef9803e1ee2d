"""The fetch job: every source read, cleaned and stored, one failing source never stopping the
others. A `Fetcher` is given its parts (the store, the settings, the clock, the shared HTTP
client, the sources, how to match papers); `App.fetcher` builds one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from digest.errors import ConfigError, DigestError, SourceError
from digest.http import PoliteClient
from digest.match.identity import needs_confirmation
from digest.models import Match, Paper, Profile
from digest.settings import Settings
from digest.sources import FetchContext, FetchResult, LooksUp, Source
from digest.sources.clean import clean_result
from digest.store import Store, UpsertCounts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchReport:
    """What fetching one source did."""

    source: str
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    error: str = ""
    requests: int = 0
    fetched: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()  # listings a limit cut short; what was read is stored


@dataclass
class Fetcher:
    """Reads the sources into the store."""

    store: Store
    settings: Settings
    clock: Callable[[], datetime]
    client: PoliteClient | None
    sources: Sequence[Source]
    verdicts: Callable[[Sequence[Profile]], Callable[[Paper], dict[str, Match]]]

    def fetch(
        self,
        only: str | None = None,
        *,
        since: date | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> list[FetchReport]:
        """Fetch every source (or the one named `only`); a failing source does not stop the others.

        A source's result is stored atomically with its validators and fetch state; a source that
        fails stores nothing and is recorded as failing (since when, and why).
        """
        reports = []
        for source in self._chosen(only):
            if progress is not None:
                progress(source.name)
            reports.append(self._fetch_one(source, since))
        return reports

    def _chosen(self, only: str | None) -> list[Source]:
        """The sources to fetch: all, or the one named `only` (ConfigError when none is)."""
        if only is None:
            return list(self.sources)
        chosen = [s for s in self.sources if s.name == only]
        if not chosen:
            known = ", ".join(s.name for s in self.sources) or "none configured"
            raise ConfigError(f"{self.settings.path}: no source named {only!r} (sources: {known})")
        return chosen

    def _fetch_one(self, source: Source, since: date | None) -> FetchReport:
        """Fetch, clean and store one source: its report, with the error when it failed."""
        run = _Run(source.name, self.clock(), time.monotonic(), self._requests())
        state = self.store.fetch_state(source.name)
        context = FetchContext(
            now=run.now,
            client=self.client,
            validators=self.store.validators(source.name),
            last_success=state.last_success if state else None,
            since=since,
        )
        try:
            result, counts = self._read_and_store(source, context)
        except SourceError as exc:
            return self._failed(run, str(exc))
        except DigestError:
            raise  # the store or the config: every source would fail the same way
        except Exception as exc:
            # A bug met while reading one source (hostile input reaching code that did not expect
            # it): that source fails and stores nothing, the others go on; the traceback is for -v.
            log.info("source %s: traceback of the failure", source.name, exc_info=exc)
            return self._failed(run, _unexpected(source.name, exc))
        for warning in result.warnings:
            log.warning("source %s: %s", source.name, warning)
        return self._report(
            run,
            counts=counts,
            fetched=len(result.papers) + len(result.updates),
            warnings=result.warnings,
        )

    def _read_and_store(
        self, source: Source, context: FetchContext
    ) -> tuple[FetchResult, UpsertCounts]:
        """Read `source`, confirm names with it when it can look papers up, clean the result and
        store it: the result and what storing it changed."""
        looked_up: dict[str, bool] = {}
        result = source.fetch(context)
        if isinstance(source, LooksUp):
            result, looked_up = self._confirm_names(source, context, result)
        result = clean_result(result)  # every source's papers pass here
        # Stamped when stored, not when the fetch began: a paper is never "first seen" before
        # a send that ran while this fetch was still reading (the window rule).
        counts = self.store.ingest(
            source.name, result.papers, result.updates, result.validators, self.clock()
        )
        if looked_up:
            self.store.record_lookups(looked_up, self.clock())
        return result, counts

    def _requests(self) -> int:
        """How many requests the shared client has made so far (0 without one)."""
        return self.client.requests if self.client else 0

    def _report(self, run: _Run, **values: Any) -> FetchReport:
        """The report of `run`, with its request count and duration."""
        requests = self._requests() - run.requests_before
        return FetchReport(
            run.source, requests=requests, seconds=time.monotonic() - run.started, **values
        )

    def _failed(self, run: _Run, error: str) -> FetchReport:
        """Log and record that `run`'s source failed with `error`; its report."""
        log.warning("source %s failed: %s", run.source, error)
        self.store.record_fetch(run.source, run.now, error=error)
        return self._report(run, error=error)

    def _confirm_names(
        self, source: LooksUp, context: FetchContext, result: FetchResult
    ) -> tuple[FetchResult, dict[str, bool]]:
        """Look up in `source` (OpenAlex) the stored candidates whose only tie to an id-followed
        author is the name (batched by DOI and arXiv DOI, each paper once): what it knows of them
        (author ids) joins the result as updates; also which papers were asked and whether it knew
        them."""
        pending = self._names_to_confirm(context.now)
        if not pending:
            return result, {}
        found, warnings = source.lookup(context, pending)
        merged = replace(
            result, updates=(*result.updates, *found), warnings=(*result.warnings, *warnings)
        )
        return merged, lookup_outcomes(pending, found, budget_ran_out=bool(warnings))

    def _names_to_confirm(self, now: datetime) -> list[Paper]:
        """The papers stored within the id-following profiles' longest window whose only tie to
        one of their authors is the name, with a DOI or arXiv id to ask by, not asked before."""
        profiles = [p for p in self.settings.profile_records() if _follows_ids(p)]
        if not profiles:
            return []
        by_name = {p.name: p for p in profiles}
        match = self.verdicts(profiles)
        recent = self.store.papers_seen_since(now - timedelta(days=_longest_window(profiles)))
        pending = [p for p in recent if needs_confirmation(by_name, p, match(p))]
        return self._not_asked(pending)

    def _not_asked(self, pending: list[Paper]) -> list[Paper]:
        """Those of `pending` with a DOI or arXiv id to ask by, not asked before."""
        done = self.store.looked_up(p.key for p in pending)
        return [p for p in pending if p.key not in done and (p.arxiv_id or p.doi)]


@dataclass(frozen=True, slots=True)
class _Run:
    """One source's fetch under way: its name, when it began, the client's requests before."""

    source: str
    now: datetime
    started: float
    requests_before: int


def _follows_ids(profile: Profile) -> bool:
    """Whether `profile` follows at least one author by id."""
    return any(author.identified for author in profile.authors)


def _longest_window(profiles: Sequence[Profile]) -> int:
    """The most days back any of `profiles` looks, on a first run or after."""
    return max(max(p.window_days, p.first_run_days) for p in profiles)


def _unexpected(source: str, exc: Exception) -> str:
    """The error recorded for a bug met while reading `source`."""
    detail = " ".join(str(exc).split())[:200]
    return (
        f"{source}: unexpected {type(exc).__name__}: {detail} "
        "(a bug in digest; run with -v for the traceback)"
    )


def lookup_outcomes(
    asked: Sequence[Paper], found: Sequence[Paper], *, budget_ran_out: bool
) -> dict[str, bool]:
    """Which asked papers the lookup knew, by key. When the budget ran out, only those it knew
    are recorded: the others are asked again next time."""
    known = {key for paper in found for key in paper.identity_keys}
    outcomes = {p.key: any(k in known for k in p.identity_keys) for p in asked}
    if budget_ran_out:
        return {key: True for key, was_found in outcomes.items() if was_found}
    return outcomes
