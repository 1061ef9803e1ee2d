"""Sources: where listings come from. Fetching (I/O) and parsing (pure, over bytes) are apart.

Every source kind implements the `Source` protocol: given a `FetchContext` (the shared polite
HTTP client, the time, what the store remembers about earlier fetches) it returns a
`FetchResult`, or raises SourceError and returns nothing: a source's fetch is all or none.
`build_sources` turns the `[sources]` part of the settings into source objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digest.http import HostPolicy
from digest.sources.base import (
    TRUNCATED_XML,
    Checked,
    FetchContext,
    FetchResult,
    LooksUp,
    Probed,
    ProbeRequest,
    Source,
    SourceCheck,
    client_needed,
    load_json,
)

if TYPE_CHECKING:
    from digest.settings import ArxivConfig, Settings
    from digest.sources.openalex import OpenAlexMemory

__all__ = [
    "TRUNCATED_XML",
    "Checked",
    "FetchContext",
    "FetchResult",
    "LooksUp",
    "ProbeRequest",
    "Probed",
    "Source",
    "SourceCheck",
    "build_sources",
    "client_needed",
    "files_sources",
    "host_policies",
    "load_json",
]


def build_sources(settings: Settings, memory: OpenAlexMemory | None = None) -> list[Source]:
    """Every source the settings configure, in a fixed order: arXiv, Hugging Face, feeds,
    files, then OpenAlex (which looks up what the others brought). `memory` (the store) is
    what OpenAlex keeps between fetches."""
    sources: list[Source] = []
    sources.extend(_network_sources(settings))
    sources.extend(files_sources(settings))
    if settings.sources.openalex_on is not None:  # last: it confirms what the others brought
        from digest.sources.openalex import OpenAlexSource

        profiles = settings.profile_records()
        contact = settings.fetch.contact
        sources.append(OpenAlexSource(settings.sources.openalex_on, profiles, memory, contact))
    return sources


def host_policies(settings: Settings) -> dict[str, HostPolicy]:
    """Each configured source's pacing, keyed by URL prefix, so sources sharing a host (a
    mirror, a test server) keep their own: arXiv's listing feeds and API share one queue."""
    config = settings.sources
    policies = _arxiv_policies(config.arxiv)
    if config.hf_daily is not None:
        policies[config.hf_daily.base_url] = HostPolicy("hf_daily", config.hf_daily.pacing_seconds)
    if config.openalex is not None:
        policies[config.openalex.base_url] = HostPolicy("openalex", config.openalex.pacing_seconds)
    for feed in config.feeds:
        host = urlsplit(feed.url).hostname or ""
        policies.setdefault(feed.url, HostPolicy(host, feed.pacing_seconds))
    return policies


def _arxiv_policies(arxiv: ArxivConfig | None) -> dict[str, HostPolicy]:
    """arXiv's pacing for its listing feeds and its API, which share one queue."""
    if arxiv is None:
        return {}
    urls = (arxiv.listing_url, arxiv.api_url)
    return {url: HostPolicy("arxiv", arxiv.pacing_seconds) for url in urls}


def files_sources(settings: Settings) -> list[Source]:
    """The `[[sources.files]]` sources alone: what reads no network (the demo's)."""
    from digest.sources.files import FilesSource

    return [FilesSource(e.name, str(settings.resolve(e.path))) for e in settings.sources.files]


def _network_sources(settings: Settings) -> list[Source]:
    """The sources that read the network, OpenAlex aside: arXiv's, Hugging Face's, the feeds."""
    found = _arxiv_sources(settings)
    config = settings.sources
    if config.hf_daily is not None:
        from digest.sources.hf_daily import HfDailySource

        found.append(HfDailySource(config.hf_daily))
    for feed in config.feeds:
        from digest.sources.feeds import FeedSource

        found.append(FeedSource(feed.name, feed.url))
    return found


def _arxiv_sources(settings: Settings) -> list[Source]:
    """arXiv's listings (when categories are set) and the followed authors' new papers (when
    `follow_authors` is on and someone follows an author)."""
    config = settings.sources.arxiv
    if config is None:
        return []
    from digest.sources.arxiv import ArxivAuthorsSource, ArxivListingSource

    found: list[Source] = []
    if config.categories:
        found.append(ArxivListingSource(config))
    authors = tuple(a for p in settings.profile_records() for a in p.authors)
    if config.follow_authors and authors:
        found.append(ArxivAuthorsSource(config, authors))
    return found
