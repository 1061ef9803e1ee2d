"""The config file as a tomlkit document: read, validated, written atomically under the edit
lock; finding a profile's table and placing a new key in it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from digest.errors import ConfigError
from digest.settings import ProfileConfig, read_toml, settings_from_dict

if TYPE_CHECKING:
    from tomlkit.items import Array, InlineTable, Item, Table
    from tomlkit.toml_document import TOMLDocument

    ProfileTable = Table | InlineTable


TermList = Literal["keywords", "exclude"]
# How long an edit waits for the others to finish. One takes well under a second, but a queue
# of twenty on a busy 2-core machine can wait half a minute or more.
EDIT_LOCK_SECONDS = 90.0
SINGULAR: dict[str, str] = {"keywords": "keyword", "exclude": "exclusion"}


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
    mode = _mode_of(target, new_file_mode)
    handle, temp_name = _temp_file_beside(target, path)
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


def _mode_of(target: Path, new_file_mode: int) -> int:
    """The permission bits of `target`, `new_file_mode` when there is no such file yet."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return new_file_mode


def _temp_file_beside(target: Path, path: Path) -> tuple[int, str]:
    """A new temp file in `target`'s directory, open: (its descriptor, its name);
    ConfigError naming `path` when none can be made."""
    try:
        return tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


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
    return [str(p.get("name", "?")) for p in profile_tables(document)]


def profile_tables(document: TOMLDocument) -> list[ProfileTable]:
    from tomlkit.items import InlineTable, Table

    found = document.get("profiles")
    if found is None:
        return []
    return [p for p in found if isinstance(p, Table | InlineTable)]


def find_profile(document: TOMLDocument, name: str, path: Path) -> ProfileTable:
    """The `[[profiles]]` table called `name`; ConfigError listing the names otherwise."""
    for profile in profile_tables(document):
        if profile.get("name") == name:
            return profile
    known = ", ".join(profile_names(document)) or "none: add a [[profiles]] table"
    raise ConfigError(f"{path}: no profile named {name!r} (profiles: {known})")


def profile_array(profile: ProfileTable, key: str, path: Path, name: str) -> Array | None:
    """The profile's array under `key`, None when the key is absent."""
    from tomlkit.items import Array

    value = profile.get(key)
    if value is None:
        return None
    if not isinstance(value, Array):
        raise ConfigError(f"{path}: profiles ({name!r}).{key}: must be a list")
    return value


def array_values(array: Array | None) -> list[Any]:
    """The plain values of a profile's list (`profile_array`), none when it has no such list."""
    return list(array.unwrap()) if array is not None else []


def matching_indexes(
    values: Sequence[str], wanted: str, same: Callable[[str, str], bool]
) -> list[int]:
    """The indexes of the values equal to `wanted` or the same as it by `same`."""
    return [i for i, value in enumerate(values) if value == wanted or same(value, wanted)]


def delete_items(array: Array, indexes: Sequence[int]) -> None:
    """Delete the items at `indexes` (in increasing order) from `array`."""
    for index in reversed(indexes):
        del array[index]


def quoted(values: Iterable[str]) -> str:
    """`'a', 'b'`: the values quoted, comma-separated; "none" when there are none."""
    return ", ".join(repr(value) for value in values) or "none"


def append_item(
    document: TOMLDocument, profile: ProfileTable, key: str, array: Array | None, value: Any
) -> None:
    """Append `value` to the profile's list `key` (`array`, as `_array` found it), making the
    list when the profile has none yet."""
    if array is None:
        set_new_key(document, profile, key, [value])
    else:
        array.append(value)


def set_new_key(document: TOMLDocument, profile: ProfileTable, key: str, value: Any) -> None:
    """Add a key that is not there yet, after the key that precedes it in the usual order
    (`keywords` after `timezone`, …), so it never lands below a comment about the next table."""
    import tomlkit
    from tomlkit.items import InlineTable

    if isinstance(profile, InlineTable):
        profile[key] = value
        return
    after = _key_before(profile, key)
    if after is None:
        profile[key] = value
        return
    tables = document["profiles"]
    index = next(i for i, table in enumerate(tables) if table is profile)
    tables[index] = table_with_key_after(profile, after, key, tomlkit.item(value))


def _key_before(profile: Table, key: str) -> str | None:
    """The key of `profile` a new `key` goes after: the last of those that precede it in
    ProfileConfig's order, else the table's last key; None for an empty table."""
    rank = {name: i for i, name in enumerate(ProfileConfig.model_fields)}
    own = rank.get(key, len(rank))
    present = _keys(profile)
    before = [k for k in present if rank.get(k, own) < own]
    if before:
        return max(before, key=rank.__getitem__)
    return present[-1] if present else None


def _keys(table: Table) -> list[str]:
    """The keys of a table, in file order."""
    return [k.key for k, _ in table.value.body if k is not None]


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
