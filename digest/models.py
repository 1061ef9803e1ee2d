"""Typed records shared by every stage: frozen dataclasses with tuple fields.

Identity rules (DESIGN.md): an arXiv id without its version; else a DOI, lower case; else a
fingerprint of the normalised title.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from digest.memo import pure_memo

ReasonKind = Literal["author", "keyword", "all_of", "similar", "cites"]
ReasonField = Literal["title", "abstract", "authors"]
# What a reader said about a paper (`digest feedback`, the links in the email).
FeedbackAction = Literal["like", "dislike"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Daily, or weekly on the first of `days` (default Monday).
Cadence = Literal["daily", "weekly"]

# New style (2007+): 0704.0001, 2401.01234 with optional version; old style: hep-th/9901001.
_ARXIV_NEW = re.compile(r"(?P<id>\d{4}\.\d{4,5})(?:v(?P<v>\d+))?")
_ARXIV_OLD = re.compile(r"(?P<id>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<v>\d+))?")
_ARXIV_PREFIX = re.compile(r"^(?:arxiv:|https?://(?:export\.)?arxiv\.org/(?:abs|pdf)/)", re.I)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def parse_arxiv_id(value: str) -> tuple[str, int]:
    """Split an arXiv identifier or abs/pdf URL into (id without version, version or 0).

    Returns ("", 0) when `value` is not an arXiv identifier.
    """
    text = _ARXIV_PREFIX.sub("", value.strip())
    text = text.removesuffix(".pdf")
    for pattern in (_ARXIV_NEW, _ARXIV_OLD):
        found = pattern.fullmatch(text)
        if found:
            return found["id"], int(found["v"] or 0)
    return "", 0


# Letters Unicode gives no plain-letter decomposition, read as a reader would type them.
_UNDECOMPOSABLE = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ı": "i",
        "ħ": "h",
        "ŧ": "t",
        "ð": "d",
        "þ": "th",
        "æ": "ae",
        "œ": "oe",
    }
)


def fold(text: str) -> str:
    """Case-, accent- and compatibility-fold `text` (NFKD, marks dropped, casefolded)."""
    if text.isascii():
        return text.lower()  # the same result, without the Unicode work (most text is ASCII)
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold().translate(_UNDECOMPOSABLE)


# Memoised: every stage asks again for the keys of the same papers (merging, the
# suggestions' eligibility of each candidate for each profile, many times a pass).
@pure_memo(maxsize=65_536)
def title_fingerprint(title: str) -> str:
    """A stable fingerprint of a title: folded, LaTeX commands dropped, letters and digits only."""
    text = _NON_ALNUM.sub(" ", fold(_LATEX_COMMAND.sub(" ", title))).strip()
    return hashlib.sha1(text.encode()).hexdigest()[:20]


@pure_memo(maxsize=65_536)  # asked again and again for the same papers, as `title_fingerprint`
def paper_keys(arxiv_id: str, doi: str, title: str) -> tuple[str, ...]:
    """Every identity key a record can be known by, strongest first."""
    keys = []
    if arxiv_id:
        keys.append(f"arxiv:{arxiv_id}")
    if doi:
        keys.append(f"doi:{doi.strip().lower()}")
    if title.strip():
        keys.append(f"title:{title_fingerprint(title)}")
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper, whatever source it came from.

    `key` is the canonical identity in the store; `listing_id` is the id the listing gave it
    (echoed back by `digest match`). `extra` holds source-specific signals (upvotes, code_url,
    project page, …) as sorted (name, value) pairs.
    """

    key: str
    title: str
    authors: tuple[str, ...] = ()
    abstract: str = ""
    categories: tuple[str, ...] = ()
    published: date | None = None
    url: str = ""
    source: str = ""
    listing_id: str = ""
    arxiv_id: str = ""
    version: int = 0
    doi: str = ""
    authors_truncated: bool = False
    extra: tuple[tuple[str, Any], ...] = ()
    sources: tuple[str, ...] = ()
    first_seen: datetime | None = None
    # Identities per author position, aligned with `authors` ("" where unknown): OpenAlex
    # author ids (`A…`) and ORCID iDs, from sources that know them (OpenAlex).
    author_ids: tuple[str, ...] = ()
    author_orcids: tuple[str, ...] = ()
    # The OpenAlex work ids (`W…`) this paper cites, when a source said so.
    referenced: tuple[str, ...] = ()

    @property
    def identity_keys(self) -> tuple[str, ...]:
        """The keys this paper can be merged on, strongest first."""
        return paper_keys(self.arxiv_id, self.doi, self.title)

    def extra_value(self, name: str, default: Any = None) -> Any:
        """The value of one `extra` signal, or `default`."""
        for key, value in self.extra:  # a few pairs: no dict (ranking asks for every match)
            if key == name:
                return value
        return default

    @property
    def upvotes(self) -> int:
        """Popularity signal used to break ranking ties (Hugging Face upvotes)."""
        value = self.extra_value("upvotes", 0)
        return value if isinstance(value, int) else 0


@dataclass(frozen=True, slots=True)
class FollowedAuthor:
    """An author a profile follows, with the other names the same person publishes under, and
    optionally who exactly: an OpenAlex author id (`A…`) and/or an ORCID iD."""

    name: str
    aliases: tuple[str, ...] = ()
    openalex: str = ""
    orcid: str = ""

    @property
    def identified(self) -> bool:
        """True when the author carries an id, so a name alone is not enough."""
        return bool(self.openalex or self.orcid)

    @property
    def names(self) -> tuple[str, ...]:
        """The main name and every alias."""
        return (self.name, *self.aliases)


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """A chat or push target of a profile (an apprise URL): where its URL is read from, an
    environment variable or a file (it holds a token), and the label that names it as an outbox
    recipient, in history and logs (`notify:NAME`; never the URL)."""

    label: str
    env: str = ""
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """What one reader wants, as the matcher and scheduler see it."""

    name: str
    emails: tuple[str, ...] = ()
    notify: tuple[NotifyTarget, ...] = ()  # chat and push targets, beside or instead of email
    keywords: tuple[str, ...] = ()
    all_of: tuple[tuple[str, ...], ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[FollowedAuthor, ...] = ()
    categories: tuple[str, ...] = ()
    send_at: time = time(7, 30)
    timezone: str = "UTC"
    days: tuple[Weekday, ...] = ()  # empty: every day
    cadence: Cadence = "daily"
    max_items: int = 50
    send_empty: bool = False
    first_run_days: int = 2
    window_days: int = 3  # how long an undelivered paper stays a candidate (DESIGN.md)
    # Authors whose papers are left out unless a followed author also wrote them.
    mute_authors: tuple[str, ...] = ()
    orcid: str = ""  # the reader's own ORCID iD (`cites_my_works`)
    cites: tuple[str, ...] = ()  # watched papers (`arxiv:…`, `doi:…`): "Citing your work"
    cites_my_works: bool = False  # also watch every work of `orcid`
    library: tuple[Path, ...] = ()  # BibTeX, RIS or CSL-JSON files of the reader's papers
    suggestions: int = 0  # at most this many "Suggested for you" papers a digest (0: none)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a paper was picked: which author or term, in which field, and the text it matched.

    `spans` are (start, end) offsets of every occurrence in that field, for highlighting.
    """

    kind: ReasonKind
    term: str
    field: ReasonField
    text: str
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """A paper a profile wants, with its reasons and ranking score."""

    paper: Paper
    reasons: tuple[Reason, ...]
    score: float

    @property
    def followed(self) -> bool:
        """True when a followed author wrote the paper."""
        return any(r.kind == "author" for r in self.reasons)

    @property
    def followed_names(self) -> tuple[str, ...]:
        """The followed authors (as the paper spells them), in order of appearance."""
        return tuple(dict.fromkeys(r.text for r in self.reasons if r.kind == "author"))


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """The last fetch outcome of one source, for the digest footer."""

    name: str
    last_success: datetime | None = None
    last_error: str = ""
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """One profile's digest before rendering.

    `matches` are shown in full (at most `max_items`), `overflow` follows as a compact list (a
    title and one reason each), and `more` counts the candidates that did not fit this email:
    they stay candidates for the next one.
    """

    profile: Profile
    matches: tuple[Match, ...]
    generated_at: datetime
    more: int = 0
    source_problems: tuple[SourceStatus, ...] = ()
    overflow: tuple[Match, ...] = ()
    empty_reason: str = ""  # why nothing matched, for an empty digest (`send_empty`)
    # Papers no rule picked that the profile's model scores high (reasons of kind "similar").
    suggestions: tuple[Match, ...] = ()
    # Papers citing the profile's watched works (reasons of kind "cites"), shown first.
    citing: tuple[Match, ...] = ()

    @property
    def papers(self) -> tuple[Match, ...]:
        """Every paper this digest delivers: citing papers, rule matches in full, the compact
        list, then suggestions."""
        return self.citing + self.matches + self.overflow + self.suggestions

    @property
    def followed_count(self) -> int:
        """How many delivered papers were picked because of a followed author."""
        return sum(1 for m in self.papers if m.followed)

    @property
    def topic_count(self) -> int:
        """How many rule-matched papers were picked for keywords only."""
        return sum(1 for m in self.matches + self.overflow if not m.followed)


@dataclass(frozen=True, slots=True)
class Feedback:
    """One reader's verdict on one paper for one profile (the latest one counts)."""

    profile: str
    paper_key: str
    action: FeedbackAction
    at: datetime


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest rendered for email: subject, HTML part and plain-text part."""

    subject: str
    html: str
    text: str
    paper_keys: tuple[str, ...] = field(default=())
