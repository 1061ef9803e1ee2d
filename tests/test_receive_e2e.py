"""`digest run` on the seeds, end to end, for the three ways to receive a digest: a profile with
only a chat target (a Mattermost-shaped server on 127.0.0.1), one with email and an ntfy-shaped
push target, and one whose papers are read as an Atom feed (`digest preview --atom`, read back
by feedparser). The scheduler fetches on start and sends every profile at once (a first run is
due at once), in its own process; the test waits for the three send runs, then stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from digest.store import SCHEMA_VERSION, Store

from .chat_servers import TOKEN, chat_server, seed_config
from .children import child_env
from .test_cli import digest as run_digest

PROFILES = ("lab", "me", "reader")


def _sent_runs(path: Path) -> set[str]:
    """The profiles whose send job has completed: nothing yet while the child has not made the
    database, or has made the file but not yet committed its schema (seen in CI)."""
    if not path.exists():
        return set()
    store = Store.open(path, read_only=True, any_schema=True)
    try:
        if store.schema_version != SCHEMA_VERSION:
            return set()
        return {name for name in PROFILES if store.last_send_run(name) is not None}
    finally:
        store.close()


def _run_until_sent(config: Path, env: dict[str, str], database: Path) -> str:
    """Start `digest run`, wait (at most 120 s) until every profile's send job completed, stop
    it with Ctrl-C (SIGKILL if it does not end), and return what it wrote to stderr."""
    command = [sys.executable, "-m", "digest", "--config", str(config), "run"]
    child = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while _sent_runs(database) != set(PROFILES) and time.monotonic() < deadline:
            assert child.poll() is None, "digest run ended early"
            time.sleep(0.2)
    finally:
        os.killpg(child.pid, signal.SIGINT)
        try:
            _, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            _, err = child.communicate(timeout=30)
    return err


def test_digest_run_delivers_to_chat_only_email_and_push_and_the_feed(tmp_path: Path) -> None:
    import feedparser  # type: ignore[import-untyped]

    ntfy_file = tmp_path / "ntfy.url"
    reader = (
        '[[profiles]]\nname = "reader"\nemail = "reader@example.org"\n'
        'keywords = ["KV cache", "speculative decoding", "quantiz*"]\n'
    )
    config = seed_config(tmp_path, ntfy_file, reader)
    database = tmp_path / "d.sqlite"
    with chat_server() as mattermost, chat_server() as ntfy:
        ntfy_file.write_text(ntfy.url("ntfy") + "\n")
        env = child_env(
            {
                "LAB_MATTERMOST": mattermost.url("mmost"),
                "HOME": str(tmp_path),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            }
        )
        err = _run_until_sent(config, env, database)
        assert _sent_runs(database) == set(PROFILES), err
    store = Store.open(database, read_only=True)
    try:
        delivered = {name: store.delivered_keys(name) for name in PROFILES}
        dump = "\n".join(store.db.conn.iterdump())
    finally:
        store.close()
    assert all(delivered.values()), delivered
    # The chat-only profile: one Mattermost post naming its papers' count, no email.
    [lab_post] = mattermost.accepted
    assert "[Full digest](https://digest.example.org/lab)" in lab_post.text
    # Email + push: one email each for `me` and `reader`, one ntfy post for `me`.
    emails = sorted((tmp_path / "mail" / "new").iterdir())
    recipients = sorted(
        line.split(":", 1)[1].strip()
        for path in emails
        for line in path.read_text().splitlines()
        if line.startswith("To:")
    )
    assert recipients == ["me@example.org", "reader@example.org"]
    [push] = ntfy.accepted
    assert "[Full digest](https://digest.example.org/me)" in push.text
    # The feed: every paper delivered to `reader`, once, by its key.
    feed = tmp_path / "reader.atom"
    written = run_digest(
        "--config", str(config), "preview", "--profile", "reader", "--atom", str(feed), env=env
    )
    assert written.returncode == 0, written.stderr
    parsed = feedparser.parse(feed.read_bytes())
    assert parsed.bozo == 0
    ids = [entry.id for entry in parsed.entries]
    assert len(ids) == len(set(ids)) == len(delivered["reader"])
    assert {i.removeprefix("tag:digest,2026:") for i in ids} == delivered["reader"]
    # The chat token is in no output and not in the database.
    assert TOKEN not in err + written.stdout + written.stderr and TOKEN not in dump
