"""Spelling the term book's new terms: each term's spellings as the store keeps them.

A term's spellings come from lemminflect's dictionary (`digest.match.terms.term_forms`). Its
tables take 64 MB once loaded and are never let go, and a lab's first scan spells every term
of every profile at once. So when the book gains many terms (`SPELL_APART` or more), they are
spelled in a short-lived child process, which hands back the rows as text: the fetch that
stores and scans the papers never loads the dictionary, and holds 4.4 MB of text where it
held the spellings as objects. Measured on bench's lab (1,000 profiles, 52,050 terms): the
first scan's peak RSS went from 353 MB to the figure in bench/RESULTS.md
(`rss_match_day_hits_scan`), for about 0.4 s of process start (spelling alone is 1.1 s).

A few new terms (an added keyword) are spelled in this process: a child would cost more than
it saves. A child that cannot start, fails or outlives `SPELL_TIMEOUT` is killed and reaped,
and the terms are spelled here instead, with a warning: the scan is never lost to it.

Worked example: a store's book holds 9,000 terms and the profiles have 9,001. `term_rows` of
the one new key spells it here: ``("statespacemodel", False, "5,10", "statespacemodel:5,10;
statespacemodels:5,10")``. A new lab's 52,050 keys go to a child, and come back as the same
rows `term_rows` would have made here.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from digest.match.termbook import boundaries_text, forms_text, term_of
from digest.match.terms import Form, TermKey, term_forms
from digest.store.hits import TermRow

log = logging.getLogger(__name__)

# New terms spelled in a child process from this many on (a lab's first scan: 52,050).
SPELL_APART = 5_000
# Seconds a child may spell for (1.5 s for a lab's first book, start included).
SPELL_TIMEOUT = 600.0
_REAP_SECONDS = 5.0  # after its answer, or after a kill, before the child is killed again

Speller = Callable[[Sequence[TermKey]], list[TermRow]]


def row_of(key: TermKey, forms: Sequence[Form]) -> TermRow:
    """A term as the store keeps it, with its spellings."""
    return (key.letters, key.prefix, boundaries_text(key.boundaries), forms_text(forms))


def spelled_here(keys: Sequence[TermKey]) -> list[TermRow]:
    """The store's rows of `keys`, spelled in this process."""
    return [row_of(key, term_forms(term_of(key))) for key in keys]


def term_rows(keys: Sequence[TermKey], *, timeout: float = SPELL_TIMEOUT) -> list[TermRow]:
    """The store's rows of `keys`, in order: spelled in a child process when there are
    `SPELL_APART` or more of them, else (or when the child fails) here."""
    if len(keys) < SPELL_APART:
        return spelled_here(keys)
    try:
        return spelled_apart(keys, timeout=timeout)
    except SpellingFailed as exc:
        log.warning(
            "spelling %d new terms in a child process: %s; spelling them here", len(keys), exc
        )
        return spelled_here(keys)


class SpellingFailed(Exception):
    """The child process spelling the terms did not start, failed or ran out of time."""


def spelled_apart(
    keys: Sequence[TermKey], *, timeout: float = SPELL_TIMEOUT, spell: Speller = spelled_here
) -> list[TermRow]:
    """`spell(keys)` in a child process (spawned: no state of this one is copied, so it is safe
    from a threaded daemon), always reaped; `SpellingFailed` when it gives no answer in
    `timeout` seconds, dies, or raises."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_spell_and_send, args=(spell, list(keys), theirs), daemon=True)
    try:
        child.start()
    except OSError as exc:
        raise SpellingFailed(f"could not start: {exc}") from exc
    theirs.close()  # ours alone: the child's end closing reads as end of file here
    answered = False
    try:
        rows = _answer(ours, timeout)
        answered = True
        return rows
    finally:
        ours.close()
        _reap(child, answered=answered)


def _answer(ours: Connection, timeout: float) -> list[TermRow]:
    """The rows the child sends, or `SpellingFailed`. Read before the child is joined: a large
    answer fills the pipe, and the child exits only once it is read."""
    if not ours.poll(timeout):
        raise SpellingFailed(f"no answer in {timeout:g} s")
    try:
        outcome, value = ours.recv()
    except (EOFError, OSError) as exc:
        raise SpellingFailed("the child process ended without an answer") from exc
    if outcome != "rows":
        raise SpellingFailed(str(value))
    rows: list[TermRow] = value
    return rows


def _reap(child: multiprocessing.process.BaseProcess, *, answered: bool) -> None:
    """Wait for the child: a little when it answered (it is exiting), else not at all before it
    is killed. It is always waited for."""
    child.join(_REAP_SECONDS if answered else 0)
    if child.is_alive():
        child.kill()
        child.join(_REAP_SECONDS)
    child.close()


def _spell_and_send(spell: Speller, keys: list[TermKey], conn: Connection) -> None:
    """In the child: the rows, or what went wrong, sent to the parent."""
    try:
        message: tuple[str, object] = ("rows", spell(keys))
    except Exception as exc:
        message = ("error", f"{type(exc).__name__}: {exc}")
    conn.send(message)
    conn.close()
