"""A profile's Atom feed from the store: its delivered papers of the last `[server] feed_days`
as `FeedEntry` records (digest.feed builds the XML), and the feed's secret URL.

Why each paper was picked: the delivery rows keep which papers went out, not their reasons,
and the outbox keeps the email as MIME (quoted-printable HTML whose layout the templates
decide). Rather than scrape that, each delivered paper is matched again, by the same matcher,
against the profile: the reasons are the digest's own words (`reason_summary`), for the paper
as it is stored now. A paper no rule picks any more (a suggestion, a citing paper, or a profile
changed since) says when it was delivered instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple
from urllib.parse import quote

from digest.app import App
from digest.display import (
    abstract_link,
    paper_link,
    pdf_link,
    reason_summary,
    safe_url,
    shown_authors,
    title_cut,
)
from digest.feed import FeedEntry, FeedHead, FeedLink, atom_bytes, feed_key, feed_updated
from digest.feedback import signing_secret
from digest.models import Match, Paper, Profile
from digest.store.feed_rows import DeliveredPaper
from digest.tex import readable

FEED_PATH = "/{profile}/feed.atom"
# An entry's abstract is cut here (arXiv's are under 1,920 characters; a feed of 500 entries
# stays a few MB even when every paper comes from a source with long abstracts).
CONTENT_CHARS = 4000


def feed_path(profile: str) -> str:
    """The path of a profile's feed on `digest serve`."""
    return FEED_PATH.format(profile=quote(profile, safe=""))


def current_key(app: App, profile: str) -> str:
    """The profile's feed key now: an HMAC of its key generation under the signing secret."""
    secret = signing_secret(app.settings, app.store.path)
    return feed_key(secret, profile, app.store.feed_generation(profile))


def feed_url(base: str, profile: str, key: str) -> str:
    """The feed's secret URL on a server at `base` (the one place a key is shown)."""
    return base.rstrip("/") + feed_path(profile) + "?key=" + key


class BuiltFeed(NamedTuple):
    """A feed's bytes and its `updated` (its newest entry's: the Last-Modified)."""

    body: bytes
    updated: datetime
    entries: int


def profile_feed(app: App, profile: Profile, base: str) -> BuiltFeed:
    """The Atom feed of `profile`'s delivered papers, its links under `base` (a server's URL;
    '' for links relative to the server's root)."""
    entries = feed_entries(app, profile)
    root = base.rstrip("/")
    head = FeedHead(
        profile=profile.name,
        title=f"digest: {profile.name}",
        self_url=root + feed_path(profile.name),
        updated=_start_of_feed(app),
        alternate_url=root + "/" + quote(profile.name, safe="") if root else "",
    )
    return BuiltFeed(atom_bytes(head, entries), feed_updated(head, entries), len(entries))


def _start_of_feed(app: App) -> datetime:
    """Where the feed's days start: midnight UTC `feed_days` before today's. Whole days, so the
    feed is the same all day (rendered once a day, not every minute, when nothing changes), and
    an empty feed's `updated`."""
    day = app.clock().astimezone(UTC).date() - timedelta(days=app.settings.server.feed_days)
    return datetime.combine(day, time(), UTC)


def feed_entries(app: App, profile: Profile) -> list[FeedEntry]:
    """The profile's delivered papers of the last `feed_days` (whole UTC days, today's
    included), newest delivery first, at most `feed_entries`, each with why it was picked."""
    server = app.settings.server
    since = _start_of_feed(app)
    delivered = app.store.delivered_papers(profile.name, since, server.feed_entries)
    verdicts = app.verdicts([profile])
    return [entry_for(row, verdicts(row.paper).get(profile.name)) for row in delivered]


def entry_for(row: DeliveredPaper, match: Match | None) -> FeedEntry:
    """One delivered paper as an entry; `match` is the profile's match of it now (None when
    no rule picks it any more)."""
    paper = row.paper
    title = readable(paper.title).text
    why = reason_summary(match) if match is not None else ""
    followed = match.followed_names if match is not None else ()
    delivered = f"In your digest of {row.delivered_at.astimezone(UTC):%a %d %b %Y}."
    return FeedEntry(
        paper_key=paper.key,
        title=title[: title_cut(paper)] if title == paper.title else title,
        updated=row.updated_at,
        published=_published(paper),
        authors=tuple(name for name, _ in shown_authors(paper, followed)[0]),
        summary=f"{why[:1].upper()}{why[1:]}. {delivered}" if why else delivered,
        content=_cut(readable(paper.abstract).text, CONTENT_CHARS),
        links=paper_feed_links(paper),
        categories=paper.categories,
    )


def _cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters cut at a space, with an ellipsis."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    return text[: space if space > limit // 2 else limit].rstrip() + " …"


def _published(paper: Paper) -> datetime | None:
    """When the paper was published (its date, at midnight UTC), else first stored."""
    if paper.published is not None:
        return datetime.combine(paper.published, time(), UTC)
    return paper.first_seen


def paper_feed_links(paper: Paper) -> tuple[FeedLink, ...]:
    """The entry's links: its page (`alternate`, HTML), its PDF (`alternate`, PDF), and its
    DOI when the page is another (`related`). Atom allows one alternate per media type."""
    page = abstract_link(paper) or paper_link(paper)
    links = [FeedLink(page, "alternate", type="text/html")]
    pdf = pdf_link(paper)
    if pdf:
        links.append(FeedLink(pdf, "alternate", title="PDF", type="application/pdf"))
    doi = f"https://doi.org/{quote(paper.doi, safe='/:;()')}" if paper.doi else ""
    if doi and doi != page and safe_url(doi):
        links.append(FeedLink(doi, "related", title="DOI"))
    return tuple(links)
