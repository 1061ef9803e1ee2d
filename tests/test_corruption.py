"""A damaged database, as a disk or a bad copy leaves it: every command says so in one line
(exit 4, no traceback), fetch/send/run do not write to it, and `doctor` says how to recover.
Real database files, corrupted on disk, and the real CLI in subprocesses."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import StoreError
from digest.store import Store

PAGE = 4096


def _flip_text(data: bytearray) -> None:
    """Invalid UTF-8 inside one stored abstract (a flipped bit in a text cell)."""
    at = data.index(b"ABSTRACT-00200")
    data[at : at + 6] = b"\xff\xfe\xc3\x28\xff\xfe"


def _flip_json(data: bytearray) -> None:
    """One stored authors list no longer JSON (`[` became `{`)."""
    at = data.index(b'["Author 200", ')
    data[at] = ord("{")


def _flip_schema(data: bytearray) -> None:
    """One byte of the schema's own SQL (sqlite_master) no longer UTF-8: sqlite's "malformed
    schema" message quotes it, and that message itself cannot be decoded."""
    at = data.index(b"CREATE TABLE papers")
    data[at + 7] = 0xFF


def _garble_middle_page(data: bytearray) -> None:
    middle = len(data) // PAGE // 2
    data[middle * PAGE : (middle + 1) * PAGE] = bytes(range(256)) * (PAGE // 256)


def _overwrite_header(data: bytearray) -> None:
    data[:100] = b"\x00" * 100


CORRUPTIONS: dict[str, Callable[[bytearray], None]] = {
    "flipped-text": _flip_text,
    "flipped-json": _flip_json,
    "flipped-schema": _flip_schema,
    "middle-page": _garble_middle_page,
    "header": _overwrite_header,
}


@pytest.fixture(scope="module")
def good_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real database of 400 papers (a few hundred pages), written by `digest fetch`."""
    root = tmp_path_factory.mktemp("good")
    listing = root / "many.jsonl"
    with listing.open("w") as out:
        for i in range(400):
            paper = {
                "id": f"2401.{i:05d}",
                "title": f"Paper {i} on KV cache",
                "authors": [f"Author {i}", "Ana Gómez"],
                "abstract": f"ABSTRACT-{i:05d} " + "lorem ipsum dolor " * 60,
                "categories": ["cs.CL"],
                "published": "2024-01-03",
                "url": f"https://arxiv.org/abs/2401.{i:05d}",
                "source": "arxiv",
            }
            out.write(json.dumps(paper) + "\n")
    config = _config(root, listing)
    assert digest(config, "fetch").returncode == 0
    return root / "d.sqlite"


def _config(root: Path, listing: Path) -> Path:
    config = root / "config.toml"
    config.write_text(
        '[store]\npath = "d.sqlite"\n[delivery]\nmethod = "maildir"\nmaildir = "mail"\n'
        f'[[sources.files]]\npath = "{listing}"\n'
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["KV cache"]\n'
        "first_run_days = 30\n"
    )
    return config


def digest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:  # `digest run` that did not refuse: stop it
            child.kill()
            child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _corrupt(good: Path, tmp_path: Path, corruption: str) -> tuple[Path, Path]:
    """A config beside a damaged copy of the good database: (config, database)."""
    db = tmp_path / "d.sqlite"
    data = bytearray(good.read_bytes())
    CORRUPTIONS[corruption](data)
    db.write_bytes(bytes(data))
    shutil.copy(good.parent / "many.jsonl", tmp_path / "many.jsonl")
    return _config(tmp_path, tmp_path / "many.jsonl"), db


def _digest_of(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


# (corruption, command): every command that reads what the damage hit.
CASES = [
    (corruption, command)
    for corruption in CORRUPTIONS
    for command in ("match", "send", "preview", "fetch")
] + [
    ("middle-page", "run"),
    ("header", "run"),
    ("header", "history"),
    ("flipped-schema", "history"),
]


@pytest.mark.parametrize(("corruption", "command"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_a_damaged_database_is_one_line_and_exit_4(
    good_database: Path, tmp_path: Path, corruption: str, command: str
) -> None:
    config, db = _corrupt(good_database, tmp_path, corruption)
    args = [command, "--out", str(tmp_path / "out")] if command == "preview" else [command]
    result = digest(config, *args)
    assert result.returncode == 4, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("digest: error: ") and str(db.name) in lines[0]
    assert "digest doctor" in lines[0]


@pytest.mark.parametrize("command", ["fetch", "send", "run"])
def test_a_database_failing_its_quick_check_is_not_written(
    good_database: Path, tmp_path: Path, command: str
) -> None:
    config, db = _corrupt(good_database, tmp_path, "middle-page")
    before = _digest_of(db)
    result = digest(config, command)
    assert result.returncode == 4, result.stderr[-2000:]
    assert "integrity" in result.stderr and "not writing" in result.stderr
    assert _digest_of(db) == before
    assert not (tmp_path / "mail").exists()


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_doctor_reports_the_damage_and_how_to_recover(
    good_database: Path, tmp_path: Path, corruption: str
) -> None:
    config, db = _corrupt(good_database, tmp_path, corruption)
    result = digest(config, "doctor")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    line = next(x for x in result.stdout.splitlines() if "database:" in x)
    assert line.startswith("✗ database: ")
    assert f'sqlite3 {db} ".recover"' in line and "backup" in line


def test_the_good_database_passes_every_check(good_database: Path, tmp_path: Path) -> None:
    shutil.copy(good_database, tmp_path / "d.sqlite")
    shutil.copy(good_database.parent / "many.jsonl", tmp_path / "many.jsonl")
    config = _config(tmp_path, tmp_path / "many.jsonl")
    result = digest(config, "doctor")
    assert "✓ database: " in result.stdout, result.stdout
    assert digest(config, "send").returncode == 0
    assert digest(config, "fetch").returncode == 0


@pytest.mark.parametrize("corruption", ["flipped-text", "flipped-json"])
def test_every_read_of_a_damaged_row_is_a_store_error_with_its_cause(
    good_database: Path, tmp_path: Path, corruption: str
) -> None:
    _, db = _corrupt(good_database, tmp_path, corruption)
    store = Store.open(db)
    try:
        assert store.quick_check() == "ok"  # the damage is inside a value, not the b-tree
        with pytest.raises(StoreError, match="digest doctor") as caught:
            list(store.papers_seen_since(datetime(2000, 1, 1, tzinfo=UTC)))
        assert caught.value.__cause__ is not None
        with pytest.raises(StoreError):
            store.get_paper("arxiv:2401.00200")
    finally:
        store.close()


# --- random byte flips in stored text (values, JSON, and the schema's own SQL) ------------------

FLIPS = 200
FLIP_COMMANDS = ("fetch", "send", "history", "match")


def _lived_in_config(root: Path) -> Path:
    config = root / "config.toml"
    config.write_text(
        '[store]\npath = "d.sqlite"\n[delivery]\nmethod = "maildir"\nmaildir = "mail"\n'
        f'[[sources.files]]\npath = "{root}/listings/*.jsonl"\n'
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["KV cache"]\n'
        'first_run_days = 30\nauthors = ["Ana Gómez"]\n'
    )
    return config


def _write_listing(path: Path, numbers: range) -> None:
    with path.open("w") as out:
        for i in numbers:
            paper = {
                "id": f"2401.{i:05d}",
                "title": f"Paper {i} on KV cache",
                "authors": [f"Author {i}", "Ana Gómez"],
                "abstract": f"ABSTRACT-{i:05d} " + "lorem ipsum " * 10,
                "categories": ["cs.CL"],
                "published": "2024-01-03",
                "url": f"https://arxiv.org/abs/2401.{i:05d}",
                "source": "arxiv",
                "extra": {"upvotes": i},
            }
            out.write(json.dumps(paper) + "\n")


def _in_process(config: Path, *args: str) -> tuple[int, str]:
    """(exit code, stderr) of the CLI's own entry point, run in this process: the same error
    mapping as `python -m digest`, a few milliseconds a run instead of a second."""
    import io

    from digest.cli import main

    err, out = io.StringIO(), io.StringIO()
    code: int = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(["--config", str(config), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        except Exception:  # what `python -m digest` would print as a traceback
            import traceback

            return -1, err.getvalue() + traceback.format_exc()
    return code, err.getvalue()


@pytest.fixture(scope="module")
def lived_in_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store as a day of use leaves it: 60 papers fetched and delivered (outbox, deliveries,
    send runs), then 30 more fetched and not yet sent. Written on the fixtures' clock."""
    import time_machine

    from .conftest import FIXED_NOW

    root = tmp_path_factory.mktemp("lived")
    (root / "listings").mkdir()
    _write_listing(root / "listings" / "a.jsonl", range(60))
    config = _lived_in_config(root)
    with time_machine.travel(FIXED_NOW, tick=False):
        assert _in_process(config, "fetch")[0] == 0
        assert _in_process(config, "send")[0] == 0
        _write_listing(root / "listings" / "b.jsonl", range(60, 90))
        assert _in_process(config, "fetch")[0] == 0
    db = root / "d.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # everything in the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def _text_cells(db: Path) -> list[bytes]:
    """Every stored text value, as its bytes, the schema's SQL (sqlite_master) included."""
    cells: list[bytes] = []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.text_factory = bytes
        tables = [row[0].decode() for row in conn.execute("SELECT name FROM sqlite_master")]
        for table in ["sqlite_master", *tables]:
            columns = [
                row[1].decode()
                for row in conn.execute(f"PRAGMA table_info([{table}])")
                if row[2].upper() == b"TEXT"
            ]
            for column in columns:
                for (value,) in conn.execute(f"SELECT [{column}] FROM [{table}]"):
                    if isinstance(value, bytes) and value:
                        cells.append(value)
    return cells


def test_random_byte_flips_in_stored_text_are_one_line_and_exit_4(
    lived_in_database: Path, tmp_path: Path
) -> None:
    """200 seeded flips, each in a random stored text value (a paper's fields, JSON lists, the
    outbox, dates, the schema's SQL), each copy run through fetch, send, history and match:
    every run either works or ends in one StoreError line (exit 4) with doctor's advice."""
    import time_machine

    from .conftest import FIXED_NOW

    good = lived_in_database.read_bytes()
    cells = _text_cells(lived_in_database)
    rng = random.Random(20261206)
    (tmp_path / "listings").mkdir()
    for listing in (lived_in_database.parent / "listings").iterdir():
        shutil.copy(listing, tmp_path / "listings" / listing.name)
    config = _lived_in_config(tmp_path)
    db = tmp_path / "d.sqlite"
    outcomes: dict[int, int] = {}
    bad: list[str] = []
    with time_machine.travel(FIXED_NOW, tick=False):
        for flip in range(FLIPS):
            value = rng.choice(cells)
            starts = _occurrences(good, value)
            if not starts:
                continue  # an overflow value split across pages: not one run of bytes
            data = bytearray(good)
            data[rng.choice(starts) + rng.randrange(len(value))] ^= rng.randrange(1, 256)
            for command in FLIP_COMMANDS:
                for stale in tmp_path.glob("d.sqlite*"):
                    stale.unlink()
                db.write_bytes(bytes(data))
                code, err = _in_process(config, command)
                outcomes[code] = outcomes.get(code, 0) + 1
                lines = err.strip().splitlines()
                if code == 0 and "Traceback" not in err:
                    continue
                if (
                    code != 4
                    or len(lines) != 1
                    or not lines[0].startswith("digest: error: ")
                    or str(db) not in lines[0]
                    or "digest doctor" not in lines[0]
                ):
                    bad.append(f"flip {flip} {command}: exit {code}: {err[-400:]}")
    assert bad == [], "\n".join(bad[:5])
    assert outcomes.get(4, 0) >= FLIPS // 2, outcomes  # the flips did damage something (205)
    print(f"{FLIPS} flips x {len(FLIP_COMMANDS)} commands: exit codes {outcomes}, 0 tracebacks")


def _occurrences(data: bytes, value: bytes) -> list[int]:
    found, at = [], data.find(value)
    while at >= 0:
        found.append(at)
        at = data.find(value, at + 1)
    return found
