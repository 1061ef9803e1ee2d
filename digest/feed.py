"""A profile's delivered papers as an Atom feed (RFC 4287): typed records in, bytes out.

Pure: no store, no clock, no network. The feed is built with the standard library's
ElementTree (lxml is only a test dependency) and is the same bytes for the same records, so
its hash is a strong ETag.

Identity (RFC 4287 4.2.6: an absolute IRI that never changes): an entry's id is the paper key
in a tag URI (RFC 4151), `tag:digest,2026:arxiv:2401.01234`, with the fixed tagging entity
`digest,2026` so that it does not change with `[server] public_url`; the key's characters
outside RFC 4151's `pchar` and `/` (a DOI may hold any) are percent-encoded. A bare key such as
`arxiv:2401.01234` reads as an IRI of the unregistered scheme `arxiv`, and a DOI key is not
one at all when the DOI holds `<`, `#` or a space: hence the tag. The feed's own id is
`tag:digest,2026:feed/<profile>`.

The feed key (`?key=…`) is an HMAC of (profile, generation) under the server's signing
secret; revoking a profile's key bumps its generation (digest/store/feed_rows.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote
from xml.etree import ElementTree as ET

ATOM_NS = "http://www.w3.org/2005/Atom"
TAG_PREFIX = "tag:digest,2026:"
MEDIA_TYPE = "application/atom+xml"
FEED_DAYS = 30  # `[server] feed_days`: how far back a feed lists delivered papers
FEED_ENTRIES = 500  # `[server] feed_entries`: at most this many entries, newest first
KEY_CHARS = 32  # a feed key: 32 URL-safe characters (192 bits of HMAC-SHA256)
_KEY_SALT = b"digest.feed.v1"
_TAG_SAFE = "!$&'()*+,;=:@-._~/"  # RFC 4151's `specific`: pchar and "/" (letters, digits implied)
# XML 1.0 forbids these characters in a document, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_MAX_HEADER_CHARS = 2000  # If-None-Match / If-Modified-Since longer than this are ignored


@dataclass(frozen=True, slots=True)
class FeedLink:
    """An `atom:link`: its target, relation and optional title and media type."""

    href: str
    rel: str = "alternate"
    title: str = ""
    type: str = ""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One delivered paper as a feed entry."""

    paper_key: str
    title: str
    updated: datetime  # when the stored paper last changed (a new arXiv version, …)
    published: datetime | None
    authors: tuple[str, ...]
    summary: str  # why the paper was picked, as the email says it
    content: str = ""  # the abstract, as text
    links: tuple[FeedLink, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedHead:
    """What the feed says of itself. `updated` is used when there are no entries."""

    profile: str
    title: str
    self_url: str
    updated: datetime
    alternate_url: str = ""


def entry_iri(paper_key: str) -> str:
    """The entry id of a paper: its key in a tag URI, `tag:digest,2026:arxiv:2401.01234`."""
    return TAG_PREFIX + quote(paper_key, safe=_TAG_SAFE)


def feed_iri(profile: str) -> str:
    """The feed id of a profile: `tag:digest,2026:feed/<profile>`."""
    return TAG_PREFIX + "feed/" + quote(profile, safe=_TAG_SAFE)


def atom_time(moment: datetime) -> str:
    """An RFC 3339 date-time in UTC, to the second: `2026-12-07T01:02:03Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry, its line breaks as `\n` (a parser
    reads a raw carriage return as a line feed anyway)."""
    return _NOT_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def feed_updated(head: FeedHead, entries: Sequence[FeedEntry]) -> datetime:
    """The feed's `updated`: its newest entry's, else the head's own."""
    return max((entry.updated for entry in entries), default=head.updated)


def atom_bytes(head: FeedHead, entries: Sequence[FeedEntry]) -> bytes:
    """The Atom document, UTF-8, with an XML declaration."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(_q("feed"))
    _text(feed, "id", feed_iri(head.profile))
    _text(feed, "title", head.title)
    _text(feed, "updated", atom_time(feed_updated(head, entries)))
    author = ET.SubElement(feed, _q("author"))  # covers entries that name no author
    _text(author, "name", "digest")
    _link(feed, FeedLink(head.self_url, "self", type=MEDIA_TYPE))
    if head.alternate_url:
        _link(feed, FeedLink(head.alternate_url, "alternate", type="text/html"))
    _text(feed, "generator", "digest")
    for entry in entries:
        _entry(feed, entry)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def _q(name: str) -> str:
    """An Atom element name in ElementTree's `{namespace}name` form."""
    return f"{{{ATOM_NS}}}{name}"


def _text(parent: ET.Element, name: str, text: str, **attributes: str) -> None:
    """A child element holding `text` (XML-safe)."""
    child = ET.SubElement(parent, _q(name), attributes)
    child.text = xml_text(text)


def _link(parent: ET.Element, link: FeedLink) -> None:
    """An `atom:link` child."""
    attributes = {"href": xml_text(link.href), "rel": link.rel}
    if link.type:
        attributes["type"] = link.type
    if link.title:
        attributes["title"] = xml_text(link.title)
    ET.SubElement(parent, _q("link"), attributes)


def _entry(feed: ET.Element, entry: FeedEntry) -> None:
    """One `atom:entry`."""
    node = ET.SubElement(feed, _q("entry"))
    _text(node, "id", entry_iri(entry.paper_key))
    title = entry.title if xml_text(entry.title).strip() else entry.paper_key
    _text(node, "title", title, type="text")
    _text(node, "updated", atom_time(entry.updated))
    if entry.published is not None:
        _text(node, "published", atom_time(entry.published))
    for name in entry.authors:
        if xml_text(name).strip():
            author = ET.SubElement(node, _q("author"))
            _text(author, "name", name)
    for link in entry.links:
        _link(node, link)
    for category in entry.categories:
        if xml_text(category).strip():
            ET.SubElement(node, _q("category"), {"term": xml_text(category)})
    _text(node, "summary", entry.summary, type="text")
    if entry.content:
        _text(node, "content", entry.content, type="text")


# --- the feed key ---------------------------------------------------------------------------------


def feed_key(secret: str, profile: str, generation: int) -> str:
    """The key of a profile's feed URL at a generation: an HMAC under the signing secret."""
    message = b"\0".join((_KEY_SALT, profile.encode(), str(generation).encode()))
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:KEY_CHARS]


def key_matches(given: str, expected: str) -> bool:
    """True when the key a request gave is the expected one (constant time)."""
    if len(given) != len(expected) or not given.isascii():
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


# --- conditional GET ------------------------------------------------------------------------------


def etag_of(body: bytes) -> str:
    """A strong ETag from the feed's bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def http_date(moment: datetime) -> str:
    """`moment` as an HTTP date (`Last-Modified`)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def not_modified(
    etag: str, last_modified: datetime, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """Whether a conditional GET gets 304 (RFC 9110 13.1.2, 13.1.3): If-None-Match decides
    when sent (weak comparison, `*` matches); else If-Modified-Since, a valid date not older
    than the newest entry."""
    if if_none_match is not None:
        return _etag_listed(etag, if_none_match[:_MAX_HEADER_CHARS])
    if if_modified_since is None or len(if_modified_since) > _MAX_HEADER_CHARS:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def _etag_listed(etag: str, header: str) -> bool:
    """True when `header` (an If-None-Match value) lists `etag` or is `*`."""
    if header.strip() == "*":
        return True
    listed = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag in listed
