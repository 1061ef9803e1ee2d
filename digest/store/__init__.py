"""The SQLite store: papers (merged across sources), authors, fetch state, outbox and deliveries.

Built on sqlite-utils; one module per part:

- `schema`: the migrations (`MIGRATIONS`, `SCHEMA_VERSION` in `PRAGMA user_version`);
- `rows`: how a Paper is stored in a row and read back (one column table);
- `merge`: the pure rules that merge listings of the same paper (no database);
- `papers`: storing listings and reading papers;
- `window`: the window rule (candidates, expired papers), several profiles in one pass;
- `outbox`: digests waiting for or past delivery, per-recipient state, deliveries;
- `fetch_state`: each source's last fetch and its conditional-GET validators;
- `feedback`: what a reader liked and disliked, per profile;
- `feed_rows`: feed-key generations and the delivered papers a profile's Atom feed lists;
- `database`: `Store`, made of those parts, with opening, migrating and checking;
- `lock`: one scheduler (or send) per database file, however it is named.
"""

from digest.errors import StoreError
from digest.store.base import store_fault, translate_store_errors
from digest.store.database import Store
from digest.store.lock import exclusive_lock, lock_path, refuse_second_names
from digest.store.merge import BatchWrites, KnownPapers, UpsertCounts, merge_papers
from digest.store.outbox import (
    OPEN_RECIPIENT_STATUSES,
    RELEASED_STATUSES,
    RESERVED_STATUSES,
    RETRY_STATUSES,
    OutboxEntry,
    OutboxStatus,
    RecipientState,
    RecipientStatus,
    outbox_status,
)
from digest.store.schema import MIGRATIONS, SCHEMA_VERSION
from digest.store.window import EPOCH, Window

__all__ = [
    "EPOCH",
    "MIGRATIONS",
    "OPEN_RECIPIENT_STATUSES",
    "RELEASED_STATUSES",
    "RESERVED_STATUSES",
    "RETRY_STATUSES",
    "SCHEMA_VERSION",
    "BatchWrites",
    "KnownPapers",
    "OutboxEntry",
    "OutboxStatus",
    "RecipientState",
    "RecipientStatus",
    "Store",
    "StoreError",
    "UpsertCounts",
    "Window",
    "exclusive_lock",
    "lock_path",
    "merge_papers",
    "outbox_status",
    "refuse_second_names",
    "store_fault",
    "translate_store_errors",
]
