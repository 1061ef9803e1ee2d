"""Editing the profiles in the TOML config in place: follow and unfollow authors, add and remove
keywords and exclusions, and fill in the starter config that `digest init` writes.

Edits go through tomlkit, so comments, key order and formatting outside the edited lines stay as
they were. Duplicates are judged the way the matcher judges them (a keyword equal after folding
case, accents, word breaks and plurals; an author whose name the matcher takes for the same
person). The whole edited document is validated like `load_settings` before anything is written,
and the file is replaced atomically (temp file in the same directory, fsync, rename) with its
permissions kept, so a failed edit leaves the old file untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from digest.errors import ConfigError, UnchangedError
from digest.match import same_person
from digest.settings import ProfileConfig, read_toml, settings_from_dict

if TYPE_CHECKING:
    from tomlkit.items import Array, InlineTable, Item, Table
    from tomlkit.toml_document import TOMLDocument

    ProfileTable = Table | InlineTable

TermList = Literal["keywords", "exclude"]
# How long an edit waits for the others to finish. One takes well under a second, but a queue
# of them on a busy machine (20 at once, beside a test run on 2 cores) once waited past 30 s.
EDIT_LOCK_SECONDS = 90.0
_SINGULAR: dict[str, str] = {"keywords": "keyword", "exclude": "exclusion"}


# --- reading and writing --------------------------------------------------------------------------


def load_document(path: Path) -> TOMLDocument:
    """The config file as a tomlkit document (ConfigError if missing or not valid TOML)."""
    import tomlkit

    read_toml(path)  # the same one-line errors as every other command (missing file, syntax)
    return tomlkit.parse(path.read_bytes().decode("utf-8"))


def validate_text(text: str, path: Path) -> None:
    """Validate a whole config text exactly as `load_settings` would; ConfigError if invalid."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - tomlkit writes valid TOML
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    settings_from_dict(data, path)


def write_atomically(path: Path, text: str, *, new_file_mode: int = 0o600) -> None:
    """Replace `path` with `text` all at once: a temp file beside it, fsync, then rename.

    An existing file keeps its permissions (a symlink is followed, so the link stays); a new
    file gets `new_file_mode`. On any failure the temp file is removed and the old file is left
    as it was.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = new_file_mode
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every platform allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def edit_config(path: Path, change: Callable[[TOMLDocument], str]) -> str:
    """Apply `change` to the document, validate the result, write it atomically.

    Returns `change`'s message. Nothing is written when `change` or the validation fails.
    The read, change and write hold a lock file beside the config, so edits made at the same
    time (two terminals, a script) each see the one before and none is lost.
    """
    import tomlkit

    with config_lock(path):
        document = load_document(path)  # read under the lock: the latest version
        message = change(document)
        text = tomlkit.dumps(document)
        validate_text(text, path)
        write_atomically(path, text)
    return message


@contextlib.contextmanager
def config_lock(path: Path, timeout: float = EDIT_LOCK_SECONDS) -> Iterator[None]:
    """Hold `.<name>.lock` beside the config file (its real location, so a symlink and its
    target share one lock); ConfigError when another edit holds it past `timeout` seconds."""
    from filelock import FileLock, Timeout

    target = Path(os.path.realpath(path))
    lock = FileLock(target.with_name(f".{target.name}.lock"), timeout=timeout)
    try:
        with lock:
            yield
    except Timeout as exc:
        raise ConfigError(f"{path}: another edit is still running; try again") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot lock for editing: {exc.strerror or exc}") from exc


# --- finding things -------------------------------------------------------------------------------


def profile_names(document: TOMLDocument) -> list[str]:
    """The names of the document's profiles, in file order."""
    return [str(p.get("name", "?")) for p in _profiles(document)]


def _profiles(document: TOMLDocument) -> list[ProfileTable]:
    from tomlkit.items import InlineTable, Table

    found = document.get("profiles")
    if found is None:
        return []
    return [p for p in found if isinstance(p, Table | InlineTable)]


def find_profile(document: TOMLDocument, name: str, path: Path) -> ProfileTable:
    """The `[[profiles]]` table called `name`; ConfigError listing the names otherwise."""
    for profile in _profiles(document):
        if profile.get("name") == name:
            return profile
    known = ", ".join(profile_names(document)) or "none: add a [[profiles]] table"
    raise ConfigError(f"{path}: no profile named {name!r} (profiles: {known})")


def _array(profile: ProfileTable, key: str, path: Path, name: str) -> Array | None:
    """The profile's array under `key`, None when the key is absent."""
    from tomlkit.items import Array

    value = profile.get(key)
    if value is None:
        return None
    if not isinstance(value, Array):
        raise ConfigError(f"{path}: profiles ({name!r}).{key}: must be a list")
    return value


def _append(
    document: TOMLDocument, profile: ProfileTable, key: str, array: Array | None, value: Any
) -> None:
    """Append `value` to the profile's list `key` (`array`, as `_array` found it), making the
    list when the profile has none yet."""
    if array is None:
        _set_new_key(document, profile, key, [value])
    else:
        array.append(value)


def _set_new_key(document: TOMLDocument, profile: ProfileTable, key: str, value: Any) -> None:
    """Add a key that is not there yet, after the key that precedes it in the usual order
    (`keywords` after `timezone`, …), so it never lands below a comment about the next table."""
    import tomlkit
    from tomlkit.items import InlineTable

    if isinstance(profile, InlineTable):
        profile[key] = value
        return
    order = list(ProfileConfig.model_fields)
    rank = order.index(key) if key in order else len(order)
    present = [k.key for k, _ in profile.value.body if k is not None]
    before = [k for k in present if k in order and order.index(k) < rank]
    after = max(before, key=order.index) if before else (present[-1] if present else None)
    if after is None:
        profile[key] = value
        return
    tables = document["profiles"]
    index = next(i for i, table in enumerate(tables) if table is profile)
    tables[index] = table_with_key_after(profile, after, key, tomlkit.item(value))


def table_with_key_after(table: Table, after: str, key: str, value: Item) -> Table:
    """A copy of `table` with `key = value` placed right after the key `after`, every other line
    (comments and blank lines included) where it was.

    tomlkit's public API only appends to a table, and appending would put the key below the
    comments that trail the table (those about the next one), so the table is rebuilt line by
    line from its public parts; the caller puts the copy where the table was.
    """
    from tomlkit.container import Container
    from tomlkit.items import Table

    body = Container(True)  # parsed: keep each line as it was, add no blank lines
    for line_key, line in table.value.body:
        body.append(line_key, line)
        if line_key is not None and line_key.key == after:
            body.append(key, value)
    return Table(
        body,
        table.trivia,
        table.is_aot_element(),
        table.is_super_table(),
        table.name,
        table.display_name,
    )


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
    from digest.match import compile_term, plural_forms

    first, second = compile_term(a), compile_term(b)
    if first.prefix != second.prefix or not first.usable or not second.usable:
        return False
    if first.letters == second.letters:
        return True
    return not first.prefix and (
        second.letters in plural_forms(first.letters)
        or first.letters in plural_forms(second.letters)
    )


def covering_term(existing: Sequence[str], term: str) -> str | None:
    """The first of `existing` that already covers `term`: every paper `term` would match, it
    matches too (`flaky test*` covers `Flaky Tests`, `KV cache` covers `paged KV caches`).

    Decided by the matcher itself: an existing term covers `term` when it matches a paper
    whose title is `term`'s own text. A term ending in `*` is covered only by another one.
    """
    from digest.match import compile_term, match_profiles
    from digest.models import Paper, Profile

    prefix = compile_term(term).prefix
    candidates = [e for e in existing if compile_term(e).prefix or not prefix]
    if not candidates:
        return None
    profiles = [Profile(str(i), keywords=(e,)) for i, e in enumerate(candidates)]
    paper = Paper(key="term", title=term.strip().rstrip("*"))
    matched = match_profiles([paper], profiles)
    return next((e for i, e in enumerate(candidates) if matched[str(i)]), None)


def add_term(path: Path, profile_name: str, key: TermList, term: str) -> str:
    """Add `term` to the profile's `keywords` or `exclude` list (creating the list if absent)."""
    term = clean_term(term)
    singular = _SINGULAR[key]

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        terms = _array(profile, key, path, profile_name)
        current = [str(t) for t in terms.unwrap()] if terms is not None else []
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
        _append(document, profile, key, terms, term)
        if key == "keywords":
            return f"profile {profile_name}: added the keyword {term!r}"
        return f"profile {profile_name}: now leaving out papers that mention {term!r}"

    return edit_config(path, change)


def remove_term(path: Path, profile_name: str, key: TermList, term: str) -> str:
    """Remove `term` (and any entry the matcher takes for the same term) from the list."""
    singular = _SINGULAR[key]

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        terms = _array(profile, key, path, profile_name)
        current = [str(t) for t in terms.unwrap()] if terms is not None else []
        wanted = term.strip()
        hits = [i for i, t in enumerate(current) if t == wanted or same_term(t, wanted)]
        if terms is None or not hits:
            listed = ", ".join(repr(t) for t in current) or "none"
            raise ConfigError(
                f"{path}: profile {profile_name!r} has no {singular} {wanted!r} ({key}: {listed})"
            )
        for index in reversed(hits):
            del terms[index]
        removed = ", ".join(repr(current[i]) for i in hits)
        if key == "keywords":
            return f"profile {profile_name}: removed the keyword {removed}"
        return f"profile {profile_name}: no longer leaving out papers that mention {removed}"

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
_LISTS = frozenset({"categories", "days", "email"})
_NUMBERS = frozenset({"max_items", "window_days", "first_run_days"})
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
    text = value.strip()
    if key == "categories":
        return clean_categories(text)
    if key in _LISTS:
        return [part for part in re.split(r"[,;\s]+", text) if part]
    if key in _NUMBERS:
        if not re.fullmatch(r"[+-]?\d{1,9}", text):
            raise ConfigError(f"{key}: {value!r} is not a whole number")
        return int(text)
    if key == "send_empty":
        if text.lower() not in _TRUE | _FALSE:
            raise ConfigError(f"{key}: {value!r} is not true or false")
        return text.lower() in _TRUE
    return text


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
            _set_new_key(document, profile, key, new)
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
    for i, term in enumerate(terms):
        for earlier in terms[:i]:
            if same_term(earlier, term):
                raise ConfigError(f"{term!r} is the same term as {earlier!r} in {text!r}")
    return terms


def _same_group(a: Sequence[str], b: Sequence[str]) -> bool:
    """Both groups hold the same terms, in any order, as the matcher compares them."""
    return (
        len(a) == len(b)
        and all(any(same_term(x, y) for y in b) for x in a)
        and all(any(same_term(y, x) for x in a) for y in b)
    )


def _shown(group: Sequence[str]) -> str:
    return " + ".join(repr(t) for t in group)


def add_group(path: Path, profile_name: str, text: str) -> str:
    """Add an `all_of` group (every term must appear); refuse one the profile already has."""
    terms = _group_terms(text)

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        groups = _array(profile, "all_of", path, profile_name)
        current = [[str(t) for t in g] for g in groups.unwrap()] if groups is not None else []
        for existing in current:
            if _same_group(existing, terms):
                raise ConfigError(
                    f"{path}: profile {profile_name!r} already has the all_of group "
                    f"{_shown(existing)}"
                )
        _append(document, profile, "all_of", groups, terms)
        return f"profile {profile_name}: added the all_of group {_shown(terms)}"

    return edit_config(path, change)


def remove_group(path: Path, profile_name: str, text: str) -> str:
    """Remove the `all_of` group with these terms (any order, as the matcher compares)."""
    terms = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        groups = _array(profile, "all_of", path, profile_name)
        current = [[str(t) for t in g] for g in groups.unwrap()] if groups is not None else []
        hits = [i for i, g in enumerate(current) if _same_group(g, terms)]
        if groups is None or not hits:
            listed = "; ".join(_shown(g) for g in current) or "none"
            raise ConfigError(
                f"{path}: profile {profile_name!r} has no all_of group {_shown(terms)} "
                f"(all_of: {listed})"
            )
        for index in reversed(hits):
            del groups[index]
        return f"profile {profile_name}: removed the all_of group {_shown(current[hits[0]])}"

    return edit_config(path, change)


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

    try:
        ids = {
            "openalex": normalise_openalex(openalex) if openalex else "",
            "orcid": normalise_orcid(orcid) if orcid else "",
        }
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
        authors = _array(profile, "authors", path, profile_name)
        entries = list(authors.unwrap()) if authors is not None else []
        existing = _who_is(entries, author)
        for alias in aliases:
            taken = _who_is(entries, alias)
            if taken and taken != existing[:1]:
                raise ConfigError(
                    f"{path}: profile {profile_name!r} already follows "
                    f"{_entry_name(entries[taken[0]])!r}, whom the matcher takes {alias!r} for"
                )
        if existing and ids and authors is not None:
            return _add_ids(path, profile_name, authors, entries, existing[0], aliases, ids)
        if existing:
            return _add_aliases(path, profile_name, authors, entries, existing[0], author, aliases)
        item = _author_item([author], aliases, ids)
        _append(document, profile, "authors", authors, item)
        also = f" (also as {', '.join(repr(a) for a in aliases)})" if aliases else ""
        return f"profile {profile_name}: now following {author!r}{_ids_text(ids)}{also}"

    return edit_config(path, change)


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
    new = [a for a in aliases if not _who_is([entry], a)]
    followed = _entry_name(entry)
    if not new or authors is None:
        same = "" if followed == given else f" ({given!r} names the same person)"
        raise ConfigError(f"{path}: profile {profile_name!r} already follows {followed!r}{same}")
    authors[index] = _author_item(_spellings(entry), new)
    spelled = ", ".join(repr(a) for a in new)
    return f"profile {profile_name}: {followed!r} is now also matched as {spelled}"


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
    known = {
        k: str(entry[k]) for k in ("openalex", "orcid") if isinstance(entry, dict) and k in entry
    }
    for key, value in ids.items():
        if known.get(key) and known[key] != value:
            raise ConfigError(
                f"{path}: profile {profile_name!r} already follows {followed!r} as "
                f"{key} {known[key]!r}: another person of the same name; unfollow first"
            )
    new_aliases = [a for a in aliases if not _who_is([entry], a)]
    spellings = _spellings(entry)
    item = _author_item(spellings, new_aliases, {**known, **ids})
    authors[index] = item
    return f"profile {profile_name}: {followed!r} is now followed by id{_ids_text(ids)}"


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
    parts = [f"name = {tomlkit.string(name).as_string()}"]
    if every:
        parts.append(f"aliases = {tomlkit.item(every).as_string()}")
    parts.extend(
        f"{key} = {tomlkit.string(value).as_string()}" for key, value in (ids or {}).items()
    )
    return tomlkit.parse(f"x = {{ {', '.join(parts)} }}")["x"]


def unfollow(path: Path, profile_name: str, author: str) -> str:
    """Stop following `author` (any spelling of a followed person; an exact one if ambiguous)."""
    wanted = " ".join(author.split())

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        authors = _array(profile, "authors", path, profile_name)
        entries = list(authors.unwrap()) if authors is not None else []
        exact = [i for i, e in enumerate(entries) if wanted in _spellings(e)]
        hits = exact or _who_is(entries, wanted)
        if authors is None or not hits:
            listed = ", ".join(repr(_entry_name(e)) for e in entries) or "none"
            raise ConfigError(
                f"{path}: profile {profile_name!r} does not follow {wanted!r} (authors: {listed})"
            )
        if len(hits) > 1:
            names = ", ".join(repr(_entry_name(entries[i])) for i in hits)
            raise ConfigError(
                f"{path}: {wanted!r} could be any of {names} in profile {profile_name!r}; "
                "give the name exactly as written"
            )
        del authors[hits[0]]
        return f"profile {profile_name}: no longer following {_entry_name(entries[hits[0]])!r}"

    return edit_config(path, change)


def mute_author(path: Path, profile_name: str, author: str) -> str:
    """Add `author` to the profile's `mute_authors`: their papers are left out unless a
    followed author also wrote them. A person already muted (by the name rules) is refused
    (UnchangedError)."""
    author = clean_name(author)
    return edit_config(path, lambda document: _mute_in(document, path, profile_name, author))


def _mute_in(document: TOMLDocument, path: Path, profile_name: str, author: str) -> str:
    profile = find_profile(document, profile_name, path)
    muted = _array(profile, "mute_authors", path, profile_name)
    entries = [str(m) for m in muted.unwrap()] if muted is not None else []
    taken = [m for m in entries if same_person(m, author)]
    if taken:
        raise UnchangedError(f"{path}: profile {profile_name!r} already mutes {taken[0]!r}")
    _append(document, profile, "mute_authors", muted, author)
    return f"profile {profile_name}: now leaving out papers by {author!r}"


def unfollow_or_mute(path: Path, profile_name: str, author: str) -> Literal["unfollowed", "muted"]:
    """A "mute this author" link: unfollow `author` when the profile follows them, else add
    them to `mute_authors`; decided and written under one lock, so two clicks at once do one
    edit and the other sees it (UnchangedError when the person is already muted)."""
    author = clean_name(author)

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        authors = _array(profile, "authors", path, profile_name)
        entries = list(authors.unwrap()) if authors is not None else []
        hits = [i for i, e in enumerate(entries) if author in _spellings(e)]
        hits = hits or _who_is(entries, author)
        if authors is None or not hits:
            _mute_in(document, path, profile_name, author)
            return "muted"
        if len(hits) > 1:
            names = ", ".join(repr(_entry_name(entries[i])) for i in hits)
            raise ConfigError(
                f"{path}: {author!r} could be any of {names} in profile {profile_name!r}; "
                "give the name exactly as written"
            )
        del authors[hits[0]]
        return "unfollowed"

    return "unfollowed" if edit_config(path, change) == "unfollowed" else "muted"


def unmute_author(path: Path, profile_name: str, author: str) -> str:
    """Take `author` (any spelling the name rules take for them) off `mute_authors`."""
    wanted = " ".join(author.split())

    def change(document: TOMLDocument) -> str:
        profile = find_profile(document, profile_name, path)
        muted = _array(profile, "mute_authors", path, profile_name)
        entries = [str(m) for m in muted.unwrap()] if muted is not None else []
        hits = [i for i, m in enumerate(entries) if m == wanted or same_person(m, wanted)]
        if muted is None or not hits:
            listed = ", ".join(repr(m) for m in entries) or "none"
            raise ConfigError(
                f"{path}: profile {profile_name!r} does not mute {wanted!r} "
                f"(mute_authors: {listed})"
            )
        for index in reversed(hits):
            del muted[index]
        removed = ", ".join(repr(entries[i]) for i in hits)
        return f"profile {profile_name}: no longer leaving out papers by {removed}"

    return edit_config(path, change)


def follows(path: Path, profile_name: str, author: str) -> bool:
    """True when the profile follows someone the matcher takes `author` for."""
    profile = find_profile(load_document(path), profile_name, path)
    authors = _array(profile, "authors", path, profile_name)
    return bool(_who_is(list(authors.unwrap()) if authors is not None else [], author))


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
    if ";" in text:
        names = [part.strip(" ,") for part in text.split(";") if part.strip(" ,")]
        for name in names:
            if name.count(",") > 1 or (name.count(",") == 1 and _two_full_names(name)):
                raise ConfigError(f"authors: {name!r} looks like several names: {AUTHOR_LIST_RULE}")
        return [" ".join(name.split()) for name in names]
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if len(names) > 1 and len(name.split()) == 1:
            raise ConfigError(
                f"authors: {name!r} is a single word, so the list seems to hold 'Last, First' "
                f"names: {AUTHOR_LIST_RULE}"
            )
    return [" ".join(name.split()) for name in names]


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
    profile = _profiles(document)[0]
    values: dict[str, Any] = {
        "keywords": [clean_term(k) for k in keywords],
        "authors": [clean_name(a) for a in authors],
        "categories": list(categories),
    }
    for key in _INTERESTS:
        if key in profile or values.get(key):
            profile[key] = _multiline(values.get(key, []))
    profile["timezone"] = timezone
    if send_at:
        profile["send_at"] = send_at
    if email:
        profile["email"] = [email.strip()]
        fetch = document.get("fetch")
        if fetch is not None and "contact" in fetch:
            fetch["contact"] = email.strip()
    arxiv = document.get("sources", {}).get("arxiv")
    if arxiv is not None:
        arxiv["categories"] = list(categories)
    text = tomlkit.dumps(document)
    text = _SEED_FILES.sub(lambda m: "".join(f"# {line}\n" for line in m[0].splitlines()), text)
    validate_text(text, path)
    return text


def _multiline(values: Sequence[str]) -> Array:
    """A TOML array laid out one value a line, like the example's."""
    import tomlkit

    array = tomlkit.array()
    array.extend(values)
    return array.multiline(len(values) > 2)
