"""The schema: `MIGRATIONS[i]` takes a database from version i to i + 1 (in `PRAGMA
user_version`), so every database ever created can be brought up to date. Never edit a released
migration; add one. Times are stored as ISO 8601 strings in UTC, which sort correctly as text.
"""

from __future__ import annotations

# The first schema.
_MIGRATE_1 = """
        CREATE TABLE papers (
            key TEXT PRIMARY KEY,
            arxiv_id TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 0,
            doi TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            authors TEXT NOT NULL DEFAULT '[]',
            authors_truncated INTEGER NOT NULL DEFAULT 0,
            categories TEXT NOT NULL DEFAULT '[]',
            published TEXT,
            url TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            sources TEXT NOT NULL DEFAULT '[]',
            listing_id TEXT NOT NULL DEFAULT '',
            extra TEXT NOT NULL DEFAULT '{}',
            first_seen TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX papers_first_seen ON papers(first_seen);
        CREATE TABLE paper_keys (
            alias TEXT PRIMARY KEY,
            paper_key TEXT NOT NULL REFERENCES papers(key)
        );
        CREATE TABLE authors (
            paper_key TEXT NOT NULL REFERENCES papers(key),
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            folded TEXT NOT NULL,
            PRIMARY KEY (paper_key, position)
        );
        CREATE INDEX authors_folded ON authors(folded);
        CREATE TABLE fetch_state (
            source TEXT PRIMARY KEY,
            last_attempt TEXT,
            last_success TEXT,
            failing_since TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            etag TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT '',
            cursor TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            profile TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
            created_at TEXT NOT NULL,
            cutoff TEXT NOT NULL,
            recipients TEXT NOT NULL,
            subject TEXT NOT NULL,
            raw BLOB NOT NULL,
            paper_count INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            sent_at TEXT
        );
        CREATE INDEX outbox_profile_status ON outbox(profile, status);
        CREATE TABLE outbox_papers (
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            paper_key TEXT NOT NULL REFERENCES papers(key),
            PRIMARY KEY (outbox_id, paper_key)
        );
        CREATE INDEX outbox_papers_key ON outbox_papers(paper_key);
        CREATE TABLE deliveries (
            profile TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers(key),
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            delivered_at TEXT NOT NULL,
            PRIMARY KEY (profile, paper_key)
        );
"""

# Conditional-GET validators per source and URL (a source may read many URLs).
_MIGRATE_2 = """
        CREATE TABLE http_validators (
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            etag TEXT NOT NULL DEFAULT '',
            last_modified TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (source, url)
        );
"""

# When each profile's send job last ran to the end (sent, or nothing to send): what is due.
_MIGRATE_3 = """
        CREATE TABLE send_runs (
            profile TEXT PRIMARY KEY,
            last_run TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT ''
        );
"""

# The window rule (DESIGN.md): papers carry the sequence the store committed them in; each
# profile's window has an origin (its first digest's start) and a mark up to which papers that
# left it undelivered have been recorded as expired.
_MIGRATE_WINDOW = """
        ALTER TABLE papers ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
        UPDATE papers SET seq = rowid;
        CREATE INDEX papers_seq ON papers(seq);
        CREATE TABLE windows (
            profile TEXT PRIMARY KEY,
            origin TEXT NOT NULL,
            expired_until TEXT NOT NULL
        );
        CREATE TABLE expired (
            profile TEXT NOT NULL,
            paper_key TEXT NOT NULL REFERENCES papers(key),
            expired_at TEXT NOT NULL,
            PRIMARY KEY (profile, paper_key)
        );
"""

# Per-recipient delivery state, and outbox statuses for digests held back (ambiguous: maybe
# delivered; partial: some recipients still to retry) or given up while bound (undeliverable).
# SQLite cannot widen a CHECK constraint in place: the outbox table is rebuilt (its columns
# named, so this does not depend on its position among the migrations; `migrate` runs it with
# foreign keys off, as SQLite's procedure for a table rebuild asks).
_MIGRATE_RECIPIENTS = """
        CREATE TABLE outbox_rebuilt (
            id INTEGER PRIMARY KEY,
            profile TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL CHECK (status IN ('pending', 'ambiguous', 'partial', 'sent',
                                                   'failed', 'undeliverable')),
            created_at TEXT NOT NULL,
            cutoff TEXT NOT NULL,
            recipients TEXT NOT NULL,
            subject TEXT NOT NULL,
            raw BLOB NOT NULL,
            paper_count INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            sent_at TEXT
        );
        INSERT INTO outbox_rebuilt (id, profile, message_id, status, created_at, cutoff,
                                    recipients, subject, raw, paper_count, attempts,
                                    last_error, sent_at)
            SELECT id, profile, message_id, status, created_at, cutoff, recipients, subject,
                   raw, paper_count, attempts, last_error, sent_at FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_rebuilt RENAME TO outbox;
        CREATE INDEX outbox_profile_status ON outbox(profile, status);
        CREATE TABLE outbox_recipients (
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            address TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'ambiguous', 'sent', 'refused',
                                                   'abandoned')),
            attempts INTEGER NOT NULL DEFAULT 0,
            ambiguous_attempts INTEGER NOT NULL DEFAULT 0,
            last_reply TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (outbox_id, address)
        );
"""

# Feedback (suggestions): the reader's latest verdict on a paper, per profile.
_MIGRATE_FEEDBACK = """
        CREATE TABLE feedback (
            profile TEXT NOT NULL,
            paper_key TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('like', 'dislike')),
            at TEXT NOT NULL,
            PRIMARY KEY (profile, paper_key)
        );
"""

# Author identities and citations (OpenAlex): ids per author position and the works a paper
# cites, as JSON lists on the paper; each paper looked up to confirm a name-only author match
# (found or not: never asked twice); each watched paper (or `orcid:…`, the reader's works)
# resolved to its OpenAlex work ids ('' when OpenAlex does not know it); list requests per UTC
# day (the daily budget).
_MIGRATE_IDENTITIES = """
        ALTER TABLE papers ADD COLUMN author_ids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE papers ADD COLUMN author_orcids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE papers ADD COLUMN referenced TEXT NOT NULL DEFAULT '[]';
        CREATE TABLE openalex_lookups (
            paper_key TEXT PRIMARY KEY,
            looked_at TEXT NOT NULL,
            found INTEGER NOT NULL
        );
        CREATE TABLE openalex_works (
            watched TEXT NOT NULL,
            work_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            resolved_at TEXT NOT NULL,
            PRIMARY KEY (watched, work_id)
        );
        CREATE TABLE openalex_usage (
            day TEXT PRIMARY KEY,
            requests INTEGER NOT NULL
        );
"""

# Suggestions: each profile's trained model (plain arrays, no pickle) and a hash of what it was
# trained on, so it is retrained only when that changed; `trainings` counts how often it was.
_MIGRATE_SUGGEST = """
        CREATE TABLE suggest_models (
            profile TEXT PRIMARY KEY,
            inputs TEXT NOT NULL,
            trained_at TEXT NOT NULL,
            trainings INTEGER NOT NULL DEFAULT 1,
            model BLOB NOT NULL
        );
"""

# Matching at ingest (digest.match.hitscan, digest.store.hits): the term book, numbered for good,
# with each term's spellings (so building the automaton needs no dictionary), and each paper's
# scan with the hash of the text it read, its paper's `updated_at` then and how many book terms
# it covers. An existing database's papers have no row yet: the next fetch or
# send scans its windows' papers (`digest.plan.hits`).
_MIGRATE_HITS = """
        CREATE TABLE match_terms (
            number INTEGER PRIMARY KEY,
            letters TEXT NOT NULL,
            prefix INTEGER NOT NULL,
            boundaries TEXT NOT NULL,
            forms TEXT NOT NULL,
            UNIQUE (letters, prefix, boundaries)
        );
        CREATE TABLE paper_hits (
            paper_key TEXT PRIMARY KEY REFERENCES papers(key),
            stamp TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            covered INTEGER NOT NULL,
            hits BLOB NOT NULL
        );
"""

# Chat and push targets (`notify`): the chat message of a digest, kept with its row so that a
# retry posts the same papers ('' for a digest without notify targets).
_MIGRATE_NOTIFY = """
        ALTER TABLE outbox ADD COLUMN chat TEXT NOT NULL DEFAULT '';
"""

# Feeds (`/<profile>/feed.atom?key=…`): each profile's feed-key generation; the key is an HMAC
# of (profile, generation), so bumping it (`digest feed-key --revoke`) revokes the old URLs.
_MIGRATE_FEED_KEYS = """
        CREATE TABLE feed_keys (
            profile TEXT PRIMARY KEY,
            generation INTEGER NOT NULL,
            changed_at TEXT NOT NULL
        );
"""

# Compiled profiles (`digest.match.compile_cache`), kept across processes: one row per distinct
# profile (its matching fields hashed with the compiled format's version), the compiled parts as
# bytes. Only a cache: a missing or unreadable row is compiled again.
_MIGRATE_COMPILED = """
        CREATE TABLE compiled_profiles (
            hash TEXT PRIMARY KEY,
            compiled BLOB NOT NULL
        );
"""

# Author keys at ingest (`digest.match.authors.author_keys`): with each paper's stored scan, the
# numbers of its authors' (last name, first initial), so a pass reads only the names somebody
# follows. Rows stored before have none (NULL): the next refresh adds them, keeping the scans.
_MIGRATE_AUTHOR_KEYS = """
        ALTER TABLE paper_hits ADD COLUMN names BLOB;
"""

# The window rule's candidate read (`WindowStore.candidates_for`) needs each paper's key, first
# stamp and sequence only: from this index alone, not from the rows (which hold the abstracts).
# 4,000 candidates: 12.6 -> 3.0 ms a read, and a morning reads them once per send group. It
# serves every `first_seen` range the old index served.
_MIGRATE_WINDOW_INDEX = """
        DROP INDEX papers_first_seen;
        CREATE INDEX papers_window ON papers(first_seen, seq, key);
"""

# MIGRATIONS[i] takes a database from schema version i to i + 1. Never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    _MIGRATE_1,
    _MIGRATE_2,
    _MIGRATE_3,
    _MIGRATE_WINDOW,
    _MIGRATE_RECIPIENTS,
    _MIGRATE_FEEDBACK,
    _MIGRATE_IDENTITIES,
    _MIGRATE_SUGGEST,
    _MIGRATE_HITS,
    _MIGRATE_NOTIFY,
    _MIGRATE_FEED_KEYS,
    _MIGRATE_COMPILED,
    _MIGRATE_AUTHOR_KEYS,
    _MIGRATE_WINDOW_INDEX,
)
SCHEMA_VERSION = len(MIGRATIONS)
