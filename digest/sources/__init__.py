"""Sources: where listings come from. Fetching (I/O) and parsing (pure, over bytes) are apart.

Every source kind implements the `Source` protocol; `build_sources` turns the `[sources]` part of
the settings into source objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from digest.models import Paper

if TYPE_CHECKING:
    from digest.settings import Settings


class Source(Protocol):
    """A place listings come from. `fetch` raises SourceError when it cannot deliver them all."""

    @property
    def name(self) -> str:
        """A short name, unique among the configured sources, used in the fetch state."""
        ...

    def fetch(self, now: datetime) -> Sequence[Paper]:
        """Read the listings available now; all of them, or SourceError and none."""
        ...


def build_sources(settings: Settings) -> list[Source]:
    """Every source the settings configure, in the order they are listed."""
    from digest.sources.files import FilesSource

    sources: list[Source] = []
    for entry in settings.sources.files:
        sources.append(FilesSource(entry.name, str(settings.resolve(entry.path))))
    return sources
