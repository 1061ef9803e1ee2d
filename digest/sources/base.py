"""What every source shares: the `Source` protocol and its optional hooks, what a fetch is given
and brings, and the payload helpers every parser uses."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable
from xml.parsers.expat import errors as expat_errors

from digest.errors import SourceError
from digest.http import Fetched, PoliteClient, Validators
from digest.models import Paper

# Expat error codes that only happen when the input ends before the document does: a payload
# cut short in transit, which every XML source reports as such.
TRUNCATED_XML = frozenset(
    expat_errors.codes[message]
    for message in (
        expat_errors.XML_ERROR_NO_ELEMENTS,
        expat_errors.XML_ERROR_UNCLOSED_TOKEN,
        expat_errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
        expat_errors.XML_ERROR_PARTIAL_CHAR,
    )
)


@dataclass(frozen=True)
class FetchContext:
    """What a source may use while fetching."""

    now: datetime
    client: PoliteClient | None = None
    validators: Mapping[str, Validators] = field(default_factory=dict)
    last_success: datetime | None = None
    since: date | None = None  # a backfill from this date, when asked for


@dataclass(frozen=True)
class FetchResult:
    """What a source brought: papers to store, papers to update only if already stored
    (arXiv replacements: a new version is not a new paper), validators to remember, and
    warnings: one line for each listing a limit cut short (what was read is still stored)."""

    papers: tuple[Paper, ...] = ()
    updates: tuple[Paper, ...] = ()
    validators: Mapping[str, Validators] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class Source(Protocol):
    """A place listings come from."""

    @property
    def name(self) -> str:
        """A short name, unique among the configured sources, used in the fetch state."""
        ...

    def fetch(self, context: FetchContext) -> FetchResult:
        """Read what is available now: all of it, or SourceError and nothing."""
        ...


@dataclass(frozen=True)
class ProbeRequest:
    """One light request a source would make anyway: what `digest doctor` asks it."""

    url: str
    params: Mapping[str, str | int] = field(default_factory=dict)


@runtime_checkable
class Probed(Source, Protocol):
    """A source `digest doctor` checks with one request, read by the source's own parser (the
    arXiv, Hugging Face and feed sources)."""

    def probe(self) -> ProbeRequest:
        """The request to make."""
        ...

    def read_probe(self, got: Fetched) -> tuple[str, int]:
        """(what the answer is, how many papers it holds); SourceError when the source's
        parser refuses it, as a fetch would."""
        ...


@dataclass(frozen=True)
class SourceCheck:
    """What a source found when it checked itself: whether it works, what it saw, and how to
    fix a failure."""

    ok: bool
    detail: str
    fix: str = ""


@runtime_checkable
class Checked(Source, Protocol):
    """A source that checks itself for `digest doctor` (files: read and parsed; OpenAlex: the
    key and today's allowance)."""

    def check(self, client: Callable[[], PoliteClient], today: date) -> SourceCheck:
        """Check without fetching; `client` builds the shared HTTP client when it is needed."""
        ...


@runtime_checkable
class LooksUp(Source, Protocol):
    """A source that knows more of papers other sources brought (OpenAlex: their author ids),
    asked after its own fetch to settle name-only hits on authors followed by id."""

    def lookup(
        self, context: FetchContext, papers: Sequence[Paper]
    ) -> tuple[list[Paper], list[str]]:
        """These stored papers as the source knows them, and warnings (a budget ran out)."""
        ...


def load_json(data: bytes | str, origin: str) -> Any:
    """`json.loads`, with every way a payload can defeat it as one SourceError line naming
    `origin`: not JSON, not UTF-8, a number too long to convert, nesting too deep to recurse."""
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise SourceError(f"{origin}: JSON nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"{origin}: not JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise SourceError(f"{origin}: not JSON: not UTF-8 ({where})") from exc
    except ValueError as exc:  # int() refuses very long digit strings (CVE-2020-10735)
        digits = sys.get_int_max_str_digits()
        raise SourceError(f"{origin}: JSON holds a number of more than {digits} digits") from exc


def client_needed(context: FetchContext) -> PoliteClient:
    """The HTTP client, which network sources cannot do without."""
    if context.client is None:
        raise RuntimeError("this source needs an HTTP client in its FetchContext")
    return context.client
