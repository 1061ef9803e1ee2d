"""Followed and muted authors (`digest profile follow`, `unfollow`, `mute`, `unmute`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from digest.errors import ConfigError, UnchangedError
from digest.match import same_person
from digest.profile_edit.document import (
    append_item,
    array_values,
    delete_items,
    edit_config,
    find_profile,
    load_document,
    matching_indexes,
    profile_array,
    quoted,
)

if TYPE_CHECKING:
    from tomlkit.items import Array, InlineTable, Table
    from tomlkit.toml_document import TOMLDocument

    ProfileTable = Table | InlineTable


# --- authors --------------------------------------------------------------------------------------


def _spellings(entry: Any) -> list[str]:
    """Every name of an `authors` entry: a string, or a table's name and aliases."""
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, dict):
        return [str(entry.get("name", "")), *(str(a) for a in entry.get("aliases", []))]
    return []


def _entry_name(entry: Any) -> str:
    return _spellings(entry)[0] if _spellings(entry) else "?"


def clean_name(name: str) -> str:
    """The author name, trimmed; ConfigError if it holds no name at all."""
    from digest.match import parse_name

    name = " ".join(name.split())
    if parse_name(name) is None:
        raise ConfigError(f"{name!r} is not an author name")
    return name


def _who_is(entries: Sequence[Any], name: str) -> list[int]:
    """Indexes of the entries with a spelling the matcher takes for `name`."""
    return [i for i, e in enumerate(entries) if any(same_person(s, name) for s in _spellings(e))]


def _clean_ids(openalex: str, orcid: str) -> dict[str, str]:
    """The given ids, normalised (`https://openalex.org/A…` → `A…`); ConfigError if malformed."""
    from digest.ids import normalise_openalex, normalise_orcid

    given = (("openalex", openalex, normalise_openalex), ("orcid", orcid, normalise_orcid))
    try:
        ids = {key: normalise(value) for key, value, normalise in given if value}
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {key: value for key, value in ids.items() if value}


def follow(
    path: Path,
    profile_name: str,
    author: str,
    aliases: Sequence[str] = (),
    *,
    openalex: str = "",
    orcid: str = "",
) -> str:
    """Follow `author` (with other spellings `aliases`, and who exactly: an OpenAlex author id
    and/or an ORCID iD); refuse a person already followed.

    When the author is already followed and new aliases or ids are given, they are added to
    that entry instead (a plain-name entry becomes an inline table); an entry with another id
    of the same kind is refused: that is another person of the same name.
    """
    ids = _clean_ids(openalex, orcid)
    author = clean_name(author)
    aliases = list(dict.fromkeys(clean_name(a) for a in aliases))
    for alias in aliases:
        if same_person(alias, author):
            raise ConfigError(
                f"{alias!r} already matches {author!r}: an alias is only needed for a "
                "different spelling"
            )

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        authors = profile_array(profile, "authors", path, profile_name)
        entries = array_values(authors)
        existing = _who_is(entries, author)
        _refuse_taken_aliases(path, profile_name, entries, existing, aliases)
        if existing and ids and authors is not None:
            return _add_ids(path, profile_name, authors, entries, existing[0], aliases, ids)
        if existing:
            return _add_aliases(path, profile_name, authors, entries, existing[0], author, aliases)
        item = _author_item([author], aliases, ids)
        append_item(document, profile, "authors", authors, item)
        also = f" (also as {', '.join(repr(a) for a in aliases)})" if aliases else ""
        return f"profile {profile_name}: now following {author!r}{_ids_text(ids)}{also}"

    return edit_config(path, change)


def _refuse_taken_aliases(
    path: Path, profile_name: str, entries: list[Any], existing: list[int], aliases: Sequence[str]
) -> None:
    """ConfigError when an alias matches a followed entry other than the author's own."""
    for alias in aliases:
        taken = _who_is(entries, alias)
        if taken and taken != existing[:1]:
            raise ConfigError(
                f"{path}: profile {profile_name!r} already follows "
                f"{_entry_name(entries[taken[0]])!r}, whom the matcher takes {alias!r} for"
            )


def _add_aliases(
    path: Path,
    profile_name: str,
    authors: Array | None,
    entries: list[Any],
    index: int,
    given: str,
    aliases: Sequence[str],
) -> str:
    """Add the aliases the followed entry `index` lacks; refuse when it lacks none."""
    entry = entries[index]
    new = _new_aliases(entry, aliases)
    followed = _entry_name(entry)
    if not new or authors is None:
        same = "" if followed == given else f" ({given!r} names the same person)"
        raise ConfigError(f"{path}: profile {profile_name!r} already follows {followed!r}{same}")
    authors[index] = _author_item(_spellings(entry), new)
    spelled = ", ".join(repr(a) for a in new)
    return f"profile {profile_name}: {followed!r} is now also matched as {spelled}"


def _new_aliases(entry: Any, aliases: Sequence[str]) -> list[str]:
    """The aliases the followed entry does not match yet."""
    return [a for a in aliases if not _who_is([entry], a)]


def _ids_text(ids: dict[str, str]) -> str:
    names = {"openalex": "OpenAlex", "orcid": "ORCID"}
    return "".join(f" ({names[k]} {v})" for k, v in ids.items())


def _add_ids(
    path: Path,
    profile_name: str,
    authors: Array,
    entries: list[Any],
    index: int,
    aliases: Sequence[str],
    ids: dict[str, str],
) -> str:
    """Give the followed entry `index` these ids (and aliases it lacks); refuse another id of
    the same kind, which names another person."""
    entry = entries[index]
    followed = _entry_name(entry)
    known = _known_ids(entry)
    other = _clashing_id(known, ids)
    if other is not None:
        raise ConfigError(
            f"{path}: profile {profile_name!r} already follows {followed!r} as "
            f"{other} {known[other]!r}: another person of the same name; unfollow first"
        )
    new_aliases = _new_aliases(entry, aliases)
    spellings = _spellings(entry)
    item = _author_item(spellings, new_aliases, {**known, **ids})
    authors[index] = item
    return f"profile {profile_name}: {followed!r} is now followed by id{_ids_text(ids)}"


def _known_ids(entry: Any) -> dict[str, str]:
    """The ids a followed entry already has (a plain name has none)."""
    if not isinstance(entry, dict):
        return {}
    return {key: str(entry[key]) for key in ("openalex", "orcid") if key in entry}


def _clashing_id(known: dict[str, str], ids: dict[str, str]) -> str | None:
    """The kind of a given id that differs from the one the entry has, None when none does."""
    for key, value in ids.items():
        if known.get(key) and known[key] != value:
            return key
    return None


def _author_item(
    spellings: Sequence[str], aliases: Sequence[str], ids: dict[str, str] | None = None
) -> Any:
    """A plain string, or `{ name = "…", aliases = [...], openalex = "…", orcid = "…" }` in the
    file's usual inline style."""
    import tomlkit

    name, *known = spellings
    every = [*known, *aliases]
    if not every and not ids:
        return tomlkit.string(name)
    return _inline_author(name, every, ids or {})


def _inline_author(name: str, aliases: list[str], ids: dict[str, str]) -> Any:
    """`{ name = "…", aliases = [...], openalex = "…", orcid = "…" }` (no aliases key when
    there are none), as tomlkit would read it from the file."""
    import tomlkit

    parts = [f"name = {tomlkit.string(name).as_string()}"]
    if aliases:
        parts.append(f"aliases = {tomlkit.item(aliases).as_string()}")
    parts.extend(f"{key} = {tomlkit.string(value).as_string()}" for key, value in ids.items())
    return tomlkit.parse(f"x = {{ {', '.join(parts)} }}")["x"]


def unfollow(path: Path, profile_name: str, author: str) -> str:
    """Stop following `author` (any spelling of a followed person; an exact one if ambiguous)."""
    wanted = " ".join(author.split())

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        authors = profile_array(profile, "authors", path, profile_name)
        entries = array_values(authors)
        index = _followed_index(path, profile_name, entries, wanted)
        if authors is None or index is None:
            raise ConfigError(
                f"{path}: profile {profile_name!r} does not follow {wanted!r} "
                f"(authors: {quoted(map(_entry_name, entries))})"
            )
        del authors[index]
        return f"profile {profile_name}: no longer following {_entry_name(entries[index])!r}"

    return edit_config(path, change)


def _followed_index(path: Path, profile_name: str, entries: list[Any], wanted: str) -> int | None:
    """The index of the followed entry `wanted` names (an exact spelling first, else any the
    matcher takes for it), None for none; ConfigError when it could be several."""
    hits = _named(entries, wanted)
    if len(hits) > 1:
        names = quoted(_entry_name(entries[i]) for i in hits)
        raise ConfigError(
            f"{path}: {wanted!r} could be any of {names} in profile {profile_name!r}; "
            "give the name exactly as written"
        )
    return hits[0] if hits else None


def _named(entries: list[Any], wanted: str) -> list[int]:
    """The indexes of the entries spelt exactly `wanted`, else of those the matcher takes for
    it."""
    exact = [i for i, e in enumerate(entries) if wanted in _spellings(e)]
    return exact or _who_is(entries, wanted)


def mute_author(path: Path, profile_name: str, author: str) -> str:
    """Add `author` to the profile's `mute_authors`: their papers are left out unless a
    followed author also wrote them. A person already muted (by the name rules) is refused
    (UnchangedError)."""
    author = clean_name(author)
    return edit_config(path, lambda document: _mute_in(document, path, profile_name, author))


def _mute_in(document: TOMLDocument, path: Path, profile_name: str, author: str) -> str:
    profile = find_profile(document, profile_name, path)
    muted = profile_array(profile, "mute_authors", path, profile_name)
    entries = [str(m) for m in array_values(muted)]
    taken = [m for m in entries if same_person(m, author)]
    if taken:
        raise UnchangedError(f"{path}: profile {profile_name!r} already mutes {taken[0]!r}")
    append_item(document, profile, "mute_authors", muted, author)
    return f"profile {profile_name}: now leaving out papers by {author!r}"


def unfollow_or_mute(path: Path, profile_name: str, author: str) -> Literal["unfollowed", "muted"]:
    """A "mute this author" link: unfollow `author` when the profile follows them, else add
    them to `mute_authors`; decided and written under one lock, so two clicks at once do one
    edit and the other sees it (UnchangedError when the person is already muted)."""
    author = clean_name(author)

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        authors = profile_array(profile, "authors", path, profile_name)
        index = _followed_index(path, profile_name, array_values(authors), author)
        if authors is None or index is None:
            _mute_in(document, path, profile_name, author)
            return "muted"
        del authors[index]
        return "unfollowed"

    return "unfollowed" if edit_config(path, change) == "unfollowed" else "muted"


def unmute_author(path: Path, profile_name: str, author: str) -> str:
    """Take `author` (any spelling the name rules take for them) off `mute_authors`."""
    wanted = " ".join(author.split())

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        muted = profile_array(profile, "mute_authors", path, profile_name)
        entries = [str(m) for m in array_values(muted)]
        hits = matching_indexes(entries, wanted, same_person)
        if muted is None or not hits:
            raise ConfigError(
                f"{path}: profile {profile_name!r} does not mute {wanted!r} "
                f"(mute_authors: {quoted(entries)})"
            )
        delete_items(muted, hits)
        removed = quoted(entries[i] for i in hits)
        return f"profile {profile_name}: no longer leaving out papers by {removed}"

    return edit_config(path, change)


def follows(path: Path, profile_name: str, author: str) -> bool:
    """True when the profile follows someone the matcher takes `author` for."""
    profile = find_profile(load_document(path), profile_name, path)
    authors = profile_array(profile, "authors", path, profile_name)
    return bool(_who_is(array_values(authors), author))
