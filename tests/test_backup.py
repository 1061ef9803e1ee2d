"""`digest backup PATH`: a safe copy of a live store. Taken while `digest run` holds the
database (its deliveries still in the write-ahead log, where a `cp` of the file misses them)
and another process writes, then sent from: nothing is sent again under a new Message-ID.

Real processes (`python -m digest`), real SQLite and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from digest.errors import StoreError
from digest.store import Store

from .conftest import SmtpHandler, free_port

TIMEOUT = 60  # seconds any child or wait may take


@dataclass
class Live:
    root: Path
    config: Path
    handler: SmtpHandler

    @property
    def db(self) -> Path:
        return self.root / "d.sqlite"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    handler = SmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    listing = tmp_path / "listing.jsonl"
    listing.write_text(
        "".join(
            json.dumps({"title": f"KV cache study {i:02d}", "abstract": "x"}) + "\n"
            for i in range(20)
        )
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
path = "d.sqlite"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
from_address = "digest@example.org"
timeout = 10
[[sources.files]]
path = "{listing}"
[[profiles]]
name = "me"
email = "me@example.org"
keywords = ["KV cache"]
timezone = "UTC"
""",
        encoding="utf-8",
    )
    try:
        yield Live(tmp_path, config, handler)
    finally:
        controller.stop()


def digest(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(live.config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, err = child.communicate(timeout=TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def stop(child: subprocess.Popen[str]) -> None:
    """Ask a child to end; kill it if it does not within the timeout. Always reaped."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
    try:
        child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def delivered(db: Path) -> int:
    store = Store.open(db, read_only=True)
    try:
        return len(store.delivered_keys("me"))
    finally:
        store.close()


def delivered_so_far(db: Path) -> int:
    """`delivered`, or -1 while `digest run` is still creating the store (no file yet, or its
    schema not yet brought up to date: a read-only open refuses both)."""
    try:
        return delivered(db)
    except StoreError:
        return -1


# A writer beside `digest run`: small commits, one after the other, for as long as it lives.
WRITER = """
import sys
from datetime import UTC, datetime
from digest.models import Paper
from digest.store import Store

store = Store.open(sys.argv[1])
for i in range(100_000):
    paper = Paper(key=f"note:{i}", title=f"Unrelated note {i}", abstract="y" * 200, source="w")
    store.upsert_papers([paper], datetime(2026, 11, 22, tzinfo=UTC))
    if i == 0:
        print("writing", flush=True)
"""


def test_a_backup_taken_while_run_and_a_writer_hold_the_store_sends_nothing_again(
    live: Live,
) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(live.config), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    writer: subprocess.Popen[str] | None = None
    try:
        # The first run fetches, then sends the first digest (due at once), and stays up.
        wait_for(lambda: delivered_so_far(live.db) == 20, "the first digest")
        assert len(live.handler.raw) == 1
        copied = live.root / "cp.sqlite"
        shutil.copy(live.db, copied)  # what `cp` gives: the file without its WAL
        with closing(sqlite3.connect(copied)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            in_copy = (
                conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
                if "deliveries" in tables
                else 0
            )
        assert in_copy < 20, "the deliveries were checkpointed: this test would not see a cp"

        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(live.db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
        counts = []
        for n in range(5):  # while the writer commits
            target = live.root / f"backup-{n}.sqlite"
            result = digest(live, "backup", str(target))
            assert result.returncode == 0, result.stderr[-2000:]
            assert result.stdout.startswith(f"backed up {live.db} to {target}")
            with closing(sqlite3.connect(target)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
                (notes,) = conn.execute("SELECT count(*) FROM papers").fetchone()
                (sent,) = conn.execute("SELECT count(*) FROM deliveries").fetchone()
            assert sent == 20
            counts.append(notes)
            assert not target.with_name(target.name + "-wal").exists()
        assert writer.poll() is None, "the writer was writing all along"
        assert counts == sorted(counts) and counts[-1] > counts[0], counts
    finally:
        if writer is not None:
            writer.kill()
            writer.communicate()
        stop(run)

    # Moved to another machine: the backup is the store. Nothing goes out again.
    moved = live.root / "elsewhere" / "d.sqlite"
    moved.parent.mkdir()
    shutil.move(live.root / "backup-4.sqlite", moved)
    sent = digest(live, "--db", str(moved), "send")
    assert sent.returncode == 0, sent.stderr[-2000:]
    assert len(live.handler.raw) == 1, "a paper went out again under a new Message-ID"
    assert delivered(moved) == 20


def test_backup_refuses_to_overwrite_unless_forced(live: Live) -> None:
    assert digest(live, "fetch").returncode == 0
    target = live.root / "b.sqlite"
    target.write_text("mine\n")
    refused = digest(live, "backup", str(target))
    assert refused.returncode == 4, refused.stderr
    assert (
        refused.stderr
        == f"digest: error: {target} exists; not overwriting it (--force replaces it)\n"
    )
    assert target.read_text() == "mine\n"
    forced = digest(live, "backup", "--force", str(target))
    assert forced.returncode == 0, forced.stderr
    with closing(sqlite3.connect(target)) as conn:
        assert conn.execute("SELECT count(*) FROM papers").fetchone()[0] == 20
    assert [p.name for p in live.root.iterdir() if "partial" in p.name] == []


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("d.sqlite", "is the database itself"),
        ("missing/b.sqlite", "does not exist"),
        (".", "is a directory"),
    ],
)
def test_backup_refuses_a_bad_target_in_one_line(live: Live, target: str, says: str) -> None:
    assert digest(live, "fetch").returncode == 0
    before = live.db.read_bytes()
    result = digest(live, "backup", str(live.root / target))
    assert result.returncode == 4, result.stderr
    assert result.stderr.startswith("digest: error: ") and result.stderr.count("\n") == 1
    assert says in result.stderr
    assert live.db.read_bytes() == before
    assert not (live.root / "missing").exists()


def test_backup_without_a_database_says_how_to_make_one(live: Live) -> None:
    result = digest(live, "backup", str(live.root / "b.sqlite"))
    assert result.returncode == 4 and "no database yet" in result.stderr
    assert not live.db.exists() and not (live.root / "b.sqlite").exists()
