"""`digest serve`'s `/<profile>/feed.atom?key=…`: the profile's Atom feed behind its key, with
conditional GET.

A wrong or missing key, an unknown profile and a server without a database all get the same
404 (nothing says which profiles exist); keys are compared in constant time. The feed is
rendered once per change of what it is made of (the page cache, as the preview pages) and
served to every reader with a strong ETag (a hash of its bytes) and Last-Modified (its newest
entry's `updated`); If-None-Match, else If-Modified-Since, gets 304 without a body. The key is
in the query string, which the server never logs (it keeps no access log).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, NamedTuple

from digest.app import App
from digest.feed import MEDIA_TYPE, etag_of, http_date, key_matches, not_modified
from digest.page_cache import PageCache
from digest.serve_html import reply

if TYPE_CHECKING:
    from starlette.responses import Response

MAX_KEY_CHARS = 200  # a longer `key` is refused unread


class Conditions(NamedTuple):
    """A request's conditional-GET headers (None when not sent)."""

    if_none_match: str | None = None
    if_modified_since: str | None = None


@dataclass(frozen=True)
class FeedSource:
    """What a feed request is answered from: the app (opened per render), the page cache, and
    what the feed is made of now (the preview pages' key: config, store version, secret, …)."""

    open_app: Callable[[], AbstractContextManager[App]]
    cache: PageCache
    made_of: Hashable
    base: str  # `[server] public_url`, else the URL the request reached the server at


class _Rendered(NamedTuple):
    """A rendered feed as the cache keeps it (one text: the cache holds pages)."""

    etag: str
    last_modified: str
    body: str

    def packed(self) -> str:
        return f"{self.etag}\n{self.last_modified}\n{self.body}"

    @classmethod
    def unpacked(cls, text: str) -> _Rendered:
        etag, last_modified, body = text.split("\n", 2)
        return cls(etag, last_modified, body)


def not_found() -> Response:
    """The one 404 of the feed route, whatever was wrong."""
    return reply(404, "Not found", "<p>No such feed.</p>")


def feed_response(source: FeedSource, name: str, key: str, conditions: Conditions) -> Response:
    """The feed of profile `name` for a request with `key`, or 304, or 404."""
    from starlette.responses import Response

    if len(key) > MAX_KEY_CHARS:
        return not_found()
    _, expected = source.cache.page(("feed-key", name, source.made_of), lambda: _key(source, name))
    if not key_matches(key, expected):
        return not_found()
    cache_key = ("feed", name, source.base, source.made_of)
    _, text = source.cache.page(cache_key, lambda: _render(source, name))
    rendered = _Rendered.unpacked(text)
    headers = {
        "ETag": rendered.etag,
        "Last-Modified": rendered.last_modified,
        "Cache-Control": "private, no-cache",
    }
    modified = parsedate_to_datetime(rendered.last_modified)
    if not_modified(rendered.etag, modified, *conditions):
        return Response(status_code=304, headers=headers)
    return Response(
        rendered.body.encode("utf-8"),
        200,
        headers=headers,
        media_type=f"{MEDIA_TYPE}; charset=utf-8",
    )


def _key(source: FeedSource, name: str) -> tuple[int, str]:
    """The profile's feed key now (kept in the cache like a page)."""
    from digest.feed_entries import current_key

    with source.open_app() as app:
        return 200, current_key(app, name)


def _render(source: FeedSource, name: str) -> tuple[int, str]:
    """Render the profile's feed, with its validators."""
    from digest.feed_entries import profile_feed

    with source.open_app() as app:
        built = profile_feed(app, app.settings.profile_records(name)[0], source.base)
    rendered = _Rendered(etag_of(built.body), http_date(built.updated), built.body.decode())
    return 200, rendered.packed()
