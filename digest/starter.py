"""The starter config `digest init` writes, and the answers it reads (lists of names,
categories, the system's time zone)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import ConfigError
from digest.profile_edit.authors import clean_name
from digest.profile_edit.document import profile_tables, validate_text
from digest.profile_edit.terms import clean_term

if TYPE_CHECKING:
    from tomlkit.items import Array, InlineTable, Table
    from tomlkit.toml_document import TOMLDocument

    ProfileTable = Table | InlineTable


# --- the starter config ---------------------------------------------------------------------------


def split_list(text: str) -> list[str]:
    """`a, b,, c` -> `[a, b, c]`; semicolons separate too (for `Last, First` names)."""
    separator = ";" if ";" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


AUTHOR_LIST_RULE = (
    "separate names with ';' when any is written 'Last, First' "
    '("Fraser, Gordon; Andrea Stocco"), else with \',\' ("Gordon Fraser, Andrea Stocco")'
)
_NAME_PARTICLES = frozenset(
    {"da", "de", "del", "della", "der", "di", "do", "dos", "du", "la", "le", "ten", "ter"}
    | {"van", "von", "bin", "al", "el"}
)


def split_author_names(text: str) -> list[str]:
    """The names of an author list as `init --authors` takes it, each as written.

    With a `;` anywhere, names are separated by `;` and one comma inside a name is `Last,
    First`; without, names are separated by commas. A list that mixes the two (`Fraser, Gordon,
    Andrea Stocco`: a comma-separated list with a bare surname; `Stocco, Andrea; Paolo Tonella,
    Gordon Fraser`: two full names inside one `;` part) is refused with the rule, rather than
    read as the wrong people.
    """
    names = _semicolon_names(text) if ";" in text else _comma_names(text)
    return [" ".join(name.split()) for name in names]


def _semicolon_names(text: str) -> list[str]:
    """The `;`-separated names of `text`; ConfigError for a part that holds several names."""
    names = [part.strip(" ,") for part in text.split(";") if part.strip(" ,")]
    for name in names:
        if _several_names(name):
            raise ConfigError(f"authors: {name!r} looks like several names: {AUTHOR_LIST_RULE}")
    return names


def _several_names(name: str) -> bool:
    """A `;` part with more than one comma, or one comma between two full names."""
    commas = name.count(",")
    return commas > 1 or (commas == 1 and _two_full_names(name))


def _comma_names(text: str) -> list[str]:
    """The comma-separated names of `text`; ConfigError when a list of several holds a single
    word (a `Last, First` name split in two)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    single = _single_word(names) if len(names) > 1 else None
    if single is not None:
        raise ConfigError(
            f"authors: {single!r} is a single word, so the list seems to hold 'Last, First' "
            f"names: {AUTHOR_LIST_RULE}"
        )
    return names


def _single_word(names: Sequence[str]) -> str | None:
    """The first of `names` that is a single word, None if none is."""
    return next((name for name in names if len(name.split()) == 1), None)


def _two_full_names(name: str) -> bool:
    """`Andrea Stocco, Paolo Tonella`: a first and a last name on both sides of the comma (a
    surname with a particle, `de la Cruz, Maria`, or initials, `Doe, J. A.`, is one name)."""
    last, first = (part.split() for part in name.split(",", 1))
    if len(last) < 2 or len(first) < 2:
        return False
    if any(word.lower() in _NAME_PARTICLES for word in last):
        return False
    return not any(len(word.rstrip(".")) == 1 for word in first)


# Shown by `init` when it asks for categories: the arXiv categories most readers pick from.
COMMON_CATEGORIES = (
    ("cs.LG", "machine learning"),
    ("cs.CL", "computation and language"),
    ("cs.CV", "computer vision"),
    ("cs.AI", "artificial intelligence"),
    ("cs.SE", "software engineering"),
    ("cs.CR", "cryptography and security"),
    ("cs.PL", "programming languages"),
    ("cs.RO", "robotics"),
    ("stat.ML", "machine learning (statistics)"),
    ("math.OC", "optimization and control"),
    ("q-bio.NC", "neurons and cognition"),
    ("physics.comp-ph", "computational physics"),
)


def system_timezone() -> str:
    """The IANA name of this machine's time zone (`TZ`, then the system's), UTC if unknown."""
    import tzlocal

    configured = os.environ.get("TZ", "").removeprefix(":")
    if configured and _is_zone(configured):  # read each time: tzlocal caches its answer
        return configured
    try:
        return tzlocal.get_localzone_name() or "UTC"
    except (ValueError, LookupError, OSError):  # a TZ naming no zone, an unreadable /etc/localtime
        return "UTC"


def _is_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# The example's bundled seed listings: left in the starter config only as a comment.
_SEED_FILES = re.compile(r"^\[\[sources\.files\]\]\n(?:(?:name|path) = .*\n)+", re.M)
# The interests in the example's profile: a starter config holds the reader's own instead.
_INTERESTS = ("keywords", "all_of", "exclude", "authors", "categories", "days")


def starter_config(
    example: str,
    path: Path,
    *,
    email: str | None = None,
    keywords: Sequence[str] = (),
    authors: Sequence[str] = (),
    categories: Sequence[str] = (),
    timezone: str = "UTC",
    send_at: str | None = None,
) -> str:
    """The example config turned into the reader's own: their address, interests, authors,
    categories, time zone and send time, and none of the example's (its keywords, `all_of`,
    `exclude`, authors, categories, days, the seed listings); every comment of the example
    stays. The result is validated as if it were `path`.
    """
    import tomlkit

    document = tomlkit.parse(example)
    profile = profile_tables(document)[0]
    _set_interests(profile, _interests(keywords, authors, categories))
    profile["timezone"] = timezone
    if send_at:
        profile["send_at"] = send_at
    if email:
        _set_email(document, profile, email.strip())
    arxiv = document.get("sources", {}).get("arxiv")
    if arxiv is not None:
        arxiv["categories"] = list(categories)
    text = _SEED_FILES.sub(_commented, tomlkit.dumps(document))
    validate_text(text, path)
    return text


def _interests(
    keywords: Sequence[str], authors: Sequence[str], categories: Sequence[str]
) -> dict[str, list[str]]:
    """The reader's interests by profile key, terms and names checked and trimmed."""
    return {
        "keywords": [clean_term(k) for k in keywords],
        "authors": [clean_name(a) for a in authors],
        "categories": list(categories),
    }


def _set_interests(profile: ProfileTable, values: dict[str, list[str]]) -> None:
    """Replace each of the example's interests with the reader's (none when not given), and
    add those the example lacks."""
    for key in _INTERESTS:
        if key in profile or values.get(key):
            profile[key] = _multiline(values.get(key, []))


def _set_email(document: TOMLDocument, profile: ProfileTable, email: str) -> None:
    """The reader's address as the profile's recipient and as the fetchers' contact."""
    profile["email"] = [email]
    fetch = document.get("fetch")
    if fetch is not None and "contact" in fetch:
        fetch["contact"] = email


def _commented(found: re.Match[str]) -> str:
    """The matched lines as TOML comments."""
    return "".join(f"# {line}\n" for line in found[0].splitlines())


def _multiline(values: Sequence[str]) -> Array:
    """A TOML array laid out one value a line, like the example's."""
    import tomlkit

    array = tomlkit.array()
    array.extend(values)
    return array.multiline(len(values) > 2)
