"""Editing the profiles in the TOML config in place: follow and unfollow authors, add and remove
keywords and exclusions, set a profile's values.

Edits go through tomlkit, so comments, key order and formatting outside the edited lines stay as
they were. Duplicates are judged the way the matcher judges them (a keyword equal after folding
case, accents, word breaks and plurals; an author whose name the matcher takes for the same
person). The whole edited document is validated like `load_settings` before anything is written,
and the file is replaced atomically (temp file in the same directory, fsync, rename) with its
permissions kept, so a failed edit leaves the old file untouched. `digest.starter` writes the
first config.
"""

from digest.profile_edit.authors import (
    follow,
    mute_author,
    unfollow,
    unfollow_or_mute,
    unmute_author,
)
from digest.profile_edit.document import (
    EDIT_LOCK_SECONDS,
    TermList,
    edit_config,
    table_with_key_after,
    write_atomically,
)
from digest.profile_edit.terms import (
    add_group,
    add_term,
    clean_categories,
    remove_group,
    remove_term,
    same_term,
    set_value,
)

__all__ = [
    "EDIT_LOCK_SECONDS",
    "TermList",
    "add_group",
    "add_term",
    "clean_categories",
    "edit_config",
    "follow",
    "mute_author",
    "remove_group",
    "remove_term",
    "same_term",
    "set_value",
    "table_with_key_after",
    "unfollow",
    "unfollow_or_mute",
    "unmute_author",
    "write_atomically",
]
