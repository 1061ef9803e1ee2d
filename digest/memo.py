"""The package's memos of pure functions: one decorator, one rule, one way to empty them.

A memo caches a pure function of immutable values (strings, tuples of strings, ints): the same
arguments always give the same answer, so an entry is never stale and nothing needs to clear
it to be correct. Each memo is bounded (`maxsize`; least recently used entries go first), so
a long-running `digest run` does not grow. Anything that can go stale (read from the store, a
file or the clock) is never memoised here: it belongs to the app's `PassMemory`
(`digest.plan.memory`), which checks what it keeps against where it came from.

`clear_memos()` empties every memo (tests and benchmarks use it to measure a cold start);
`memo_sizes()` says how full each is.

Example::

    @pure_memo(maxsize=1 << 16)
    def fold_word(word: str) -> str: ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Memo(Protocol[P, R]):
    """A memoised function: called as the function, plus `functools.lru_cache`'s controls."""

    __wrapped__: Callable[P, R]
    __module__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def cache_clear(self) -> None: ...

    def cache_info(self) -> Any: ...


_MEMOS: list[Memo[..., Any]] = []


def pure_memo(maxsize: int) -> Callable[[Callable[P, T]], Memo[P, T]]:
    """Memoise a pure function of immutable arguments, keeping at most `maxsize` answers."""

    def memoised(function: Callable[P, T]) -> Memo[P, T]:
        cached = cast("Memo[P, T]", functools.lru_cache(maxsize=maxsize)(function))
        _MEMOS.append(cached)
        return cached

    return memoised


def clear_memos() -> None:
    """Empty every memo of the package."""
    for memo in _MEMOS:
        memo.cache_clear()


def memo_sizes() -> dict[str, tuple[int, int]]:
    """Each memo's (entries, limit), by its function's qualified name."""
    sizes = {}
    for memo in _MEMOS:
        info = memo.cache_info()
        sizes[f"{memo.__module__}.{memo.__qualname__}"] = (info.currsize, info.maxsize or 0)
    return sizes
