"""The rendered pages of `digest serve`, kept by what they were made of, each rendered once
however many readers ask for it at the same time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from pathlib import Path

from digest.store import Store

Page = tuple[int, str]  # (status, HTML)


class PageCache:
    """Rendered pages by what they were made of; readers of one key share one render.

    The first reader of a key renders it; readers arriving meanwhile wait for that render
    (single flight) instead of each rendering the same digest. A failed render is not kept:
    the next reader tries again. `renders` counts renders started (tests read it).
    """

    def __init__(self, keep: int = 32) -> None:
        self.renders = 0
        self._keep = keep
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, Future[Page]] = OrderedDict()
        # One read-only connection that watches the store: SQLite's data_version changes on it
        # whenever another connection commits (keyed with the file's identity, so a database
        # replaced by another file is watched afresh).
        self._watch_lock = threading.Lock()
        self._watched: tuple[tuple[int, int], Store] | None = None

    def page(self, key: Hashable, render: Callable[[], Page]) -> Page:
        """The page for `key`, rendered by `render` once, whoever asks at the same time."""
        future, owner = self._claim(key)
        if not owner:
            return future.result()
        try:
            rendered = render()
        except BaseException as exc:
            with self._lock:
                if self._pages.get(key) is future:
                    del self._pages[key]
            future.set_exception(exc)
            raise
        future.set_result(rendered)
        return rendered

    def _claim(self, key: Hashable) -> tuple[Future[Page], bool]:
        """The future of `key`'s page, and True when this caller is to render it (a new key,
        for which room is made by dropping the least recently used ones)."""
        with self._lock:
            future = self._pages.get(key)
            if future is not None:
                self._pages.move_to_end(key)
                return future, False
            future = self._pages[key] = Future()
            while len(self._pages) > self._keep:
                self._pages.popitem(last=False)
            self.renders += 1
            return future, True

    def store_version(self, path: Path) -> tuple[int, int, int] | None:
        """(device, inode, data_version) of the database at `path`; None when there is none."""
        try:
            info = path.stat()
        except OSError:
            return None
        identity = (info.st_dev, info.st_ino)
        with self._watch_lock:
            return (*identity, self._watcher(path, identity).data_version)

    def _watcher(self, path: Path, identity: tuple[int, int]) -> Store:
        """The watching connection to the file `identity` names, opened anew when the file at
        `path` is another one than before (caller holds the watch lock)."""
        if self._watched is None or self._watched[0] != identity:
            self._close_watcher()
            self._watched = (identity, Store.open(path, read_only=True))
        return self._watched[1]

    def _close_watcher(self) -> None:
        """Close the watching connection, if any (caller holds the watch lock)."""
        if self._watched is not None:
            self._watched[1].close()
            self._watched = None

    def close(self) -> None:
        """Close the watching connection."""
        with self._watch_lock:
            self._close_watcher()
