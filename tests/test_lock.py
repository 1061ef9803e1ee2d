"""One send (or scheduler) per database file, however the file is reached: through a symlink,
a symlinked directory, a relative or an absolute path, `--db` or the config's `[store] path`.
A file with a second name (a hard link) is refused: SQLite finds the journal by name, so two
names are two journals, and that corrupts it.

Real processes (`python -m digest`), a real SQLite file and a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from digest.store import exclusive_lock

from .conftest import SmtpHandler, free_port

ROUNDS = 20
TIMEOUT = 90  # seconds a child may take before it is killed


class SlowHandler(SmtpHandler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.3)  # a slow server keeps two sends' windows open together
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Site:
    """A database directory with its config, a slow SMTP server, and the ways to reach it."""

    root: Path
    config: Path
    handler: SlowHandler

    @property
    def db(self) -> Path:
        return self.root / "d.sqlite"

    def spelling(self, name: str) -> tuple[list[str], Path]:
        """(global options, working directory) that reach the database one way."""
        spellings = {
            "config": ([], self.root.parent),  # `[store] path`, relative to the config file
            "absolute": (["--db", str(self.db)], self.root.parent),
            "relative": (["--db", "d.sqlite"], self.root),
            "symlink": (["--db", str(self.root / "link.sqlite")], self.root.parent),
            "symlinked-dir": (["--db", str(self.root.parent / "via" / "d.sqlite")], Path("/")),
        }
        return spellings[name]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    handler = SlowHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    root = tmp_path / "store"
    (root / "listings").mkdir(parents=True)
    config = root / "config.toml"
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
[delivery]
attempts = 1
[[sources.files]]
path = "{root}/listings/*.jsonl"
[[profiles]]
name = "me"
email = "me@example.org"
keywords = ["KV cache"]
max_items = 1000
""",
        encoding="utf-8",
    )
    (root / "link.sqlite").symlink_to("d.sqlite")  # a relative symlink, beside the file
    (tmp_path / "via").symlink_to(root, target_is_directory=True)
    try:
        yield Site(root, config, handler)
    finally:
        controller.stop()


def start(site: Site, spelling: str, *args: str) -> subprocess.Popen[str]:
    options, cwd = site.spelling(spelling)
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(site.config), *options, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def reap(children: Sequence[subprocess.Popen[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Wait for every child, killing any still running after TIMEOUT: none is left behind."""
    done = []
    for child in children:
        try:
            out, err = child.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
        done.append(subprocess.CompletedProcess(child.args, child.returncode, out, err))
    return done


def run(site: Site, spelling: str, *args: str) -> subprocess.CompletedProcess[str]:
    return reap([start(site, spelling, *args)])[0]


def add_papers(site: Site, batch: int, count: int = 2) -> list[str]:
    titles = [f"KV cache study {batch:02d}-{i}" for i in range(count)]
    (site.root / "listings" / f"{batch:02d}.jsonl").write_text(
        "".join(json.dumps({"title": t, "abstract": "x"}) + "\n" for t in titles)
    )
    return titles


def message_ids_by_title(handler: SmtpHandler, titles: list[str]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for raw in handler.raw:
        message = message_from_bytes(raw, policy=policy.default)
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        for title in titles:
            if title in text:
                seen[title].add(str(message["Message-ID"]))
    return seen


def integrity(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# Pairs of ways to one database, raced against each other round after round.
PAIRS = [
    ("config", "symlink"),
    ("absolute", "relative"),
    ("symlinked-dir", "config"),
    ("symlink", "relative"),
    ("config", "absolute"),
]


def test_sends_racing_through_every_spelling_of_one_database_deliver_each_paper_once(
    site: Site,
) -> None:
    """20 rounds: a fetch of two new papers and two sends at once, the sends reaching the
    database two different ways. Then one send to finish. Each paper is delivered once, under
    one Message-ID; none is lost; the file passes its integrity check."""
    titles: list[str] = []
    refused = 0
    for round_ in range(ROUNDS):
        titles += add_papers(site, round_)
        first, second = PAIRS[round_ % len(PAIRS)]
        if round_ == 0:  # the first round creates the database before the race
            assert run(site, "config", "fetch").returncode == 0
            children = [start(site, first, "send"), start(site, second, "send")]
        else:
            fetch = start(site, "config", "fetch")
            children = [fetch, start(site, first, "send"), start(site, second, "send")]
        results = reap(children)
        for result in results[-2:]:
            assert result.returncode in (0, 6), result.stderr[-2000:]
            assert "Traceback" not in result.stderr
            refused += result.returncode == 6
        if len(results) == 3:
            assert results[0].returncode == 0, results[0].stderr[-2000:]
    final = run(site, "config", "send")
    assert final.returncode == 0, final.stderr[-2000:]

    seen = message_ids_by_title(site.handler, titles)
    doubled = {title: ids for title, ids in seen.items() if len(ids) > 1}
    lost = sorted(set(titles) - set(seen))
    assert doubled == {}, f"{len(doubled)} papers under two Message-IDs"
    assert lost == [], f"{len(lost)} papers never delivered"
    assert integrity(site.db) == "ok"
    assert refused > 0, "the sends never overlapped: the race was not run"
    print(f"{ROUNDS} rounds, {len(titles)} papers, {refused} sends refused, 0 doubled, 0 lost")


@pytest.mark.parametrize("spelling", ["symlink", "symlinked-dir", "relative", "absolute", "config"])
@pytest.mark.parametrize("command", ["send", "run"])
def test_the_lock_held_on_the_file_stops_a_send_or_run_reaching_it_another_way(
    site: Site, spelling: str, command: str
) -> None:
    add_papers(site, 0)
    assert run(site, "config", "fetch").returncode == 0
    with exclusive_lock(site.db, "digest run"):
        refused = run(site, spelling, command)
    assert refused.returncode == 6, (refused.returncode, refused.stderr[-2000:])
    assert "is already using this database" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert site.handler.raw == []


def test_a_lock_taken_through_a_symlink_stops_a_send_on_the_real_path(site: Site) -> None:
    add_papers(site, 0)
    assert run(site, "config", "fetch").returncode == 0
    with exclusive_lock(site.root / "link.sqlite", "digest run"):
        refused = run(site, "absolute", "send")
    assert refused.returncode == 6, refused.stderr[-2000:]
    assert site.handler.raw == []


def test_a_database_with_a_second_hard_link_is_refused_and_left_as_it_was(site: Site) -> None:
    """The issue's case: `digest send` and `digest --db hard.sqlite send` at once. Both refuse
    (exit 4, one line saying why and what to do), nothing is sent or written; once the second
    name is gone, one send delivers every paper."""
    titles = add_papers(site, 0, count=4)
    assert run(site, "config", "fetch").returncode == 0
    hard = site.root / "hard.sqlite"
    os.link(site.db, hard)
    before = site.db.read_bytes()
    options = [sys.executable, "-m", "digest", "--config", str(site.config)]
    racing = [
        subprocess.Popen(
            [*options, *extra, "send"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for extra in ([], ["--db", str(hard)])
    ]
    for result in [*reap(racing), run(site, "config", "fetch")]:
        assert result.returncode == 4, (result.returncode, result.stderr[-2000:])
        [line] = result.stderr.strip().splitlines()
        assert "2 names (hard links)" in line and "-samefile" in line, line
    assert site.handler.raw == []
    assert site.db.read_bytes() == before
    doctor = run(site, "config", "doctor")
    line = next(x for x in doctor.stdout.splitlines() if "database:" in x)
    assert line.startswith("✗ database: ") and "hard link" in line, line

    hard.unlink()
    assert run(site, "config", "send").returncode == 0
    seen = message_ids_by_title(site.handler, titles)
    assert sorted(seen) == sorted(titles) and all(len(ids) == 1 for ids in seen.values())
    assert integrity(site.db) == "ok"
