"""A damaged database, as a disk or a bad copy leaves it: every command says so in one line
(exit 4, no traceback), fetch/send/run do not write to it, and `doctor` says how to recover.
Real database files, corrupted on disk, and the real CLI in subprocesses."""

from __future__ import annotations

import hashlib
import json
import shutil
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


def _garble_middle_page(data: bytearray) -> None:
    middle = len(data) // PAGE // 2
    data[middle * PAGE : (middle + 1) * PAGE] = bytes(range(256)) * (PAGE // 256)


def _overwrite_header(data: bytearray) -> None:
    data[:100] = b"\x00" * 100


CORRUPTIONS: dict[str, Callable[[bytearray], None]] = {
    "flipped-text": _flip_text,
    "flipped-json": _flip_json,
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
