"""Keywords, exclusions and `all_of` groups, and the profile's other settings (`digest profile
add-keyword`, `set`, `add-group`, ...)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from digest.errors import ConfigError, UnchangedError
from digest.profile_edit.document import (
    SINGULAR,
    TermList,
    append_item,
    array_values,
    delete_items,
    edit_config,
    find_profile,
    matching_indexes,
    profile_array,
    quoted,
    set_new_key,
)

if TYPE_CHECKING:
    from tomlkit.items import InlineTable, Table
    from tomlkit.toml_document import TOMLDocument

    ProfileTable = Table | InlineTable


# --- keywords and exclusions ----------------------------------------------------------------------


def clean_term(term: str) -> str:
    """The term, trimmed; ConfigError if nothing the matcher could use is left."""
    from digest.match import compile_term

    term = term.strip()
    if not compile_term(term).usable:
        raise ConfigError(f"{term!r} has no letters or digits: not a usable term")
    return term


def same_term(a: str, b: str) -> bool:
    """True when the matcher treats `a` and `b` as one term: case, accents, word breaks
    (`KV cache` = `KV-cache`) and singular/plural (`cache` = `caches`) aside."""
    from digest.match import compile_term

    first, second = compile_term(a), compile_term(b)
    if first.prefix != second.prefix or not first.usable or not second.usable:
        return False
    if first.letters == second.letters:
        return True
    return not first.prefix and _plural_pair(first.letters, second.letters)


def _plural_pair(first: str, second: str) -> bool:
    """One of the two (folded) words is a plural form of the other."""
    from digest.match import plural_forms

    return second in plural_forms(first) or first in plural_forms(second)


def covering_term(existing: Sequence[str], term: str) -> str | None:
    """The first of `existing` that already covers `term`: every paper `term` would match, it
    matches too (`flaky test*` covers `Flaky Tests`, `KV cache` covers `paged KV caches`).

    Decided by the matcher itself: an existing term covers `term` when it matches a paper
    whose title is `term`'s own text. A term ending in `*` is covered only by another one.
    """
    from digest.match import match_profiles
    from digest.models import Paper, Profile

    candidates = _may_cover(existing, term)
    if not candidates:
        return None
    profiles = [Profile(str(i), keywords=(e,)) for i, e in enumerate(candidates)]
    paper = Paper(key="term", title=term.strip().rstrip("*"))
    matched = match_profiles([paper], profiles)
    return next((e for i, e in enumerate(candidates) if matched[str(i)]), None)


def _may_cover(existing: Sequence[str], term: str) -> list[str]:
    """The existing terms that may cover `term`: all, or only prefix terms (`…*`) when `term`
    is one."""
    from digest.match import compile_term

    if not compile_term(term).prefix:
        return list(existing)
    return [e for e in existing if compile_term(e).prefix]


# What adding to and removing from a term list did, by list.
_ADDED = {"keywords": "added the keyword", "exclude": "now leaving out papers that mention"}
_REMOVED = {
    "keywords": "removed the keyword",
    "exclude": "no longer leaving out papers that mention",
}


def add_term(path: Path, profile_name: str, key: TermList, term: str) -> str:
    """Add `term` to the profile's `keywords` or `exclude` list (creating the list if absent)."""
    term = clean_term(term)
    singular = SINGULAR[key]

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        terms = profile_array(profile, key, path, profile_name)
        current = [str(t) for t in array_values(terms)]
        for existing in current:
            if same_term(existing, term):
                same = "" if existing == term else f" ({term!r} is the same term for matching)"
                raise UnchangedError(
                    f"{path}: profile {profile_name!r} already has the {singular} "
                    f"{existing!r}{same}"
                )
        covering = covering_term(current, term)
        if covering is not None:
            raise UnchangedError(
                f"{path}: profile {profile_name!r} already has the {singular} {covering!r}, "
                f"which covers {term!r}"
            )
        append_item(document, profile, key, terms, term)
        return f"profile {profile_name}: {_ADDED[key]} {term!r}"

    return edit_config(path, change)


def remove_term(path: Path, profile_name: str, key: TermList, term: str) -> str:
    """Remove `term` (and any entry the matcher takes for the same term) from the list."""
    singular = SINGULAR[key]

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        terms = profile_array(profile, key, path, profile_name)
        current = [str(t) for t in array_values(terms)]
        wanted = term.strip()
        hits = matching_indexes(current, wanted, same_term)
        if terms is None or not hits:
            raise ConfigError(
                f"{path}: profile {profile_name!r} has no {singular} {wanted!r} "
                f"({key}: {quoted(current)})"
            )
        delete_items(terms, hits)
        return f"profile {profile_name}: {_REMOVED[key]} {quoted(current[i] for i in hits)}"

    return edit_config(path, change)


# --- settings and all_of groups -------------------------------------------------------------------

Setting = Literal[
    "categories",
    "send_at",
    "timezone",
    "days",
    "max_items",
    "window_days",
    "first_run_days",
    "send_empty",
    "cadence",
    "email",
]
SETTINGS: tuple[Setting, ...] = get_args(Setting)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# Keys with their own commands: `set` sends the reader there.
_EDITED_ELSEWHERE = {
    "keywords": "add-keyword/remove-keyword",
    "exclude": "exclude/include",
    "authors": "follow/unfollow",
    "all_of": "add-group/remove-group",
    "mute_authors": "mute/unmute",
}


def setting_value(key: str, value: str) -> Any:
    """The TOML value of `digest profile set KEY VALUE`: a list for categories, days and email
    (comma- or space-separated; empty: none), a number, a boolean, or the text itself.
    ConfigError for a key that cannot be set or a value of the wrong kind; the bounds and
    allowed values are the settings model's, checked when the edited file is validated."""
    if key in _EDITED_ELSEWHERE:
        raise ConfigError(f"{key} cannot be set: use {_EDITED_ELSEWHERE[key]}")
    if key not in SETTINGS:
        raise ConfigError(f"no setting {key!r} (settings: {', '.join(SETTINGS)})")
    return _SETTING_READERS.get(key, _text_setting)(key, value)


def _text_setting(key: str, value: str) -> str:
    """A setting given as text (`send_at`, `timezone`, `cadence`): the text, trimmed."""
    return value.strip()


def _categories_setting(key: str, value: str) -> list[str]:
    """`categories`: checked arXiv categories (`clean_categories`)."""
    return clean_categories(value.strip())


def _list_setting(key: str, value: str) -> list[str]:
    """A list (`days`, `email`): comma-, semicolon- or space-separated; empty: none."""
    return [part for part in re.split(r"[,;\s]+", value.strip()) if part]


def _number_setting(key: str, value: str) -> int:
    """A whole number; ConfigError for anything else."""
    text = value.strip()
    if not re.fullmatch(r"[+-]?\d{1,9}", text):
        raise ConfigError(f"{key}: {value!r} is not a whole number")
    return int(text)


def _boolean_setting(key: str, value: str) -> bool:
    """true/yes/on/1 or false/no/off/0, in any case; ConfigError for anything else."""
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ConfigError(f"{key}: {value!r} is not true or false")
    return word in _TRUE


# A setting -> what reads its value (any other: `_text_setting`).
_SETTING_READERS: dict[str, Callable[[str, str], Any]] = {
    "categories": _categories_setting,
    "days": _list_setting,
    "email": _list_setting,
    "max_items": _number_setting,
    "window_days": _number_setting,
    "first_run_days": _number_setting,
    "send_empty": _boolean_setting,
}


def set_value(path: Path, profile_name: str, key: str, value: str) -> str:
    """Set one of the profile's SETTINGS to `value` (see `setting_value`), keeping the line's
    comment; the whole file is validated as `load_settings` would before it is written."""
    new = setting_value(key, value)

    def change(document: TOMLDocument) -> str:
        import tomlkit

        profile = find_profile(document, profile_name, path)
        if key in profile:
            profile[key] = new  # tomlkit keeps the line's comment
        else:
            set_new_key(document, profile, key, new)
        shown = tomlkit.item(new).as_string()
        return f"profile {profile_name}: {key} = {shown}"

    if key == "send_at":  # `6:05` reads 06:05 (and is written so)
        new = _clock_text(str(new))
    return edit_config(path, change)


def _clock_text(value: str) -> str:
    found = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    return f"{int(found[1]):02d}:{found[2]}" if found else value


def _group_terms(text: str) -> list[str]:
    """The terms of an `all_of` group as given: `diffusion, language model`."""
    terms = [clean_term(t) for t in text.replace(";", ",").split(",") if t.strip()]
    if len(terms) < 2:
        raise ConfigError(
            f"a group needs at least two terms, comma-separated (got {text!r}); "
            "for one term use add-keyword"
        )
    repeated = _repeated_term(terms)
    if repeated is not None:
        term, earlier = repeated
        raise ConfigError(f"{term!r} is the same term as {earlier!r} in {text!r}")
    return terms


def _repeated_term(terms: Sequence[str]) -> tuple[str, str] | None:
    """The first term that is the same as an earlier one, with that one; None if none is."""
    for i, term in enumerate(terms):
        for earlier in terms[:i]:
            if same_term(earlier, term):
                return term, earlier
    return None


def _same_group(a: Sequence[str], b: Sequence[str]) -> bool:
    """Both groups hold the same terms, in any order, as the matcher compares them."""
    return len(a) == len(b) and _all_found(a, b) and _all_found(b, a)


def _all_found(terms: Sequence[str], group: Sequence[str]) -> bool:
    """Every one of `terms` is the same term as one of `group`."""
    return all(any(same_term(term, other) for other in group) for term in terms)


def _shown(group: Sequence[str]) -> str:
    return " + ".join(repr(t) for t in group)


def add_group(path: Path, profile_name: str, text: str) -> str:
    """Add an `all_of` group (every term must appear); refuse one the profile already has."""
    terms = _group_terms(text)

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        groups = profile_array(profile, "all_of", path, profile_name)
        current = [[str(t) for t in g] for g in array_values(groups)]
        for existing in current:
            if _same_group(existing, terms):
                raise ConfigError(
                    f"{path}: profile {profile_name!r} already has the all_of group "
                    f"{_shown(existing)}"
                )
        append_item(document, profile, "all_of", groups, terms)
        return f"profile {profile_name}: added the all_of group {_shown(terms)}"

    return edit_config(path, change)


def remove_group(path: Path, profile_name: str, text: str) -> str:
    """Remove the `all_of` group with these terms (any order, as the matcher compares)."""
    terms = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        groups = profile_array(profile, "all_of", path, profile_name)
        current = [[str(t) for t in g] for g in array_values(groups)]
        hits = [i for i, g in enumerate(current) if _same_group(g, terms)]
        if groups is None or not hits:
            listed = "; ".join(_shown(g) for g in current) or "none"
            raise ConfigError(
                f"{path}: profile {profile_name!r} has no all_of group {_shown(terms)} "
                f"(all_of: {listed})"
            )
        delete_items(groups, hits)
        return f"profile {profile_name}: removed the all_of group {_shown(current[hits[0]])}"

    return edit_config(path, change)


_CATEGORY = re.compile(r"[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?")


def clean_categories(text: str) -> list[str]:
    """`cs.SE, cs.PL` -> `[cs.SE, cs.PL]` (commas or spaces); ConfigError naming a malformed one."""
    found = [part for part in re.split(r"[,;\s]+", text) if part]
    for category in found:
        if not _CATEGORY.fullmatch(category):
            raise ConfigError(
                f"categories: {category!r} is not an arXiv category (like cs.SE, stat.ML or cs)"
            )
    return list(dict.fromkeys(found))
