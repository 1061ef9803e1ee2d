"""Spelling the term book's new terms: each term's spellings as the store keeps them.

A term's spellings come from lemminflect's dictionary (`digest.match.terms.term_forms`). Its
tables take 64 MB once loaded and are never let go, and a lab's first scan spells every term
of every profile at once. So when the book gains many terms (`SPELL_APART` or more), they are
spelled in a short-lived child process, which hands back the rows as text: the fetch that
stores and scans the papers never loads the dictionary, and holds 4.4 MB of text where it
held the spellings as objects. Measured on bench's lab (1,000 profiles, 52,050 terms): the
first scan's peak RSS went from 353 to 283 MB (`rss_match_day_hits_scan`; the child's own
peak, 140-152 MB, ends before the scanner is built), for 0.5-0.7 s more: 1.2-1.4 s spelled
here, 1.7-2.2 s in a child (its start, the JSON both ways and the check of the rows).

A few new terms (an added keyword) are spelled in this process: a child would cost more than
it saves. The child is this module run by this interpreter (`python -P -m
digest.plan.spelling`), the keys on its standard input and the rows on its output, as JSON:
not `multiprocessing`, whose spawned child imports the parent's main module again (a script
without a main guard, or `python -m digest`, would run again in it). A child that cannot
start, fails, answers what was not asked or outlives `SPELL_TIMEOUT` is killed and reaped, and
the terms are spelled here instead, with a warning: the scan is never lost to it.

Worked example: a store's book holds 9,000 terms and the profiles have 9,001. `term_rows` of
the one new key spells it here, each word singular or plural: ``("statespacemodel", False,
"5,10", "statespacemodel:5,10;statespacemodels:5,10;statespacesmodel:5,11;...")``. A new
lab's 52,050 keys go to a child, and come back as the same rows `term_rows` would have made
here.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digest.errors import DigestError
from digest.match.termbook import boundaries_text, forms_text, term_of
from digest.match.terms import Form, TermKey, term_forms
from digest.store.hits import TermRow

log = logging.getLogger(__name__)

# New terms spelled in a child process from this many on (a lab's first scan: 52,050).
SPELL_APART = 5_000
# Seconds a child may spell for (1.5 s for a lab's first book, start included).
SPELL_TIMEOUT = 600.0


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


class SpellingFailed(DigestError):
    """The child process spelling the terms did not start, failed, gave another answer than
    the rows asked for, or ran out of time (`term_rows` then spells here: it never reaches the
    command line)."""


def child_command() -> list[str]:
    """How the child is run: this interpreter, not reading the working directory (`-P`: a
    `digest/` folder there is not this package), this module."""
    return [sys.executable, "-P", "-m", __name__]


def spelled_apart(
    keys: Sequence[TermKey], *, timeout: float = SPELL_TIMEOUT, command: Sequence[str] = ()
) -> list[TermRow]:
    """`spelled_here(keys)` in a child process (`command`, else `child_command()`), which is
    always reaped (killed when it outlives `timeout` seconds); `SpellingFailed` when it does
    not answer with the rows of exactly these keys."""
    asked = json.dumps([[k.letters, k.prefix, list(k.boundaries)] for k in keys])
    try:
        done = subprocess.run(
            list(command) or child_command(),
            input=asked.encode(),
            capture_output=True,
            timeout=timeout,
            env=_child_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # `run` has killed and reaped it
        raise SpellingFailed(f"no answer in {timeout:g} s") from exc
    except OSError as exc:
        raise SpellingFailed(f"could not start: {exc}") from exc
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise SpellingFailed(f"exit status {done.returncode}: {said[-1] if said else 'no message'}")
    return _rows_answered(done.stdout, keys)


def _child_environment() -> dict[str, str] | None:
    """The child's environment: this one, with this package's folder first on its import path
    when the interpreter would not find the package there by itself (a source checkout run
    with `sys.path` set by hand). An installed package's folder is site-packages, which is
    not put first: it would come before the standard library."""
    import site

    here = Path(__file__).resolve().parents[2]
    found = {Path(p).resolve() for p in (*site.getsitepackages(), site.getusersitepackages())}
    if here in found:
        return None  # inherited as it is
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(here) + (os.pathsep + path if path else "")}


def _rows_answered(answer: bytes, keys: Sequence[TermKey]) -> list[TermRow]:
    """The child's rows, checked: one per key asked, in order, each of its letters."""
    try:
        value: Any = json.loads(answer)
    except ValueError as exc:
        raise SpellingFailed(f"an answer that is not JSON: {exc}") from exc
    if not isinstance(value, list) or len(value) != len(keys):
        raise SpellingFailed(f"an answer that is not {len(keys)} rows")
    rows: list[TermRow] = []
    for key, row in zip(keys, value, strict=True):
        if not _is_row(row) or row[0] != key.letters:
            raise SpellingFailed(f"an answer with another row for {key.letters!r}")
        rows.append((row[0], bool(row[1]), row[2], row[3]))
    return rows


def _is_row(row: Any) -> bool:
    """Whether a decoded JSON value has a term row's shape."""
    return (
        isinstance(row, list)
        and len(row) == 4
        and isinstance(row[1], bool)
        and all(isinstance(row[i], str) for i in (0, 2, 3))
    )


def _main() -> None:
    """The child: the keys on standard input, their rows on standard output (JSON)."""
    keys = [TermKey(letters, prefix, tuple(cuts)) for letters, prefix, cuts in json.load(sys.stdin)]
    # One string, one write: `json.dump` writes piece by piece, 0.8 s slower on a lab's rows.
    sys.stdout.write(json.dumps(spelled_here(keys)))


if __name__ == "__main__":
    _main()
