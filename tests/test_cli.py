"""The command line, run as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from threading import Thread

import pytest

from digest.app import data_path

from .conftest import DATA

COMMANDS = ["demo", "fetch", "match", "preview", "send", "run", "init", "history"]


def digest(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command: str | None) -> None:
    result = digest(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: digest" in result.stdout


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[smtp\n", "TOML syntax error"),
        ("[smtp]\nhots = 'x'\n", "smtp.hots: unknown key (did you mean 'host'?)"),
        ('[[profiles]]\nname = "me"\ntimezone = "Mars/Base"\n', "unknown time zone 'Mars/Base'"),
        ('[[profiles]]\nname = "me"\nemail = "not-an-address"\n', "invalid email address"),
    ],
)
@pytest.mark.parametrize("command", ["match", "send", "preview", "fetch"])
def test_bad_config_is_one_line_without_traceback(
    tmp_path: Path, config: str, expected: str, command: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config)
    result = digest("--config", str(path), command)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"digest: error: {path}: ") and expected in result.stderr


def test_send_without_smtp_settings_says_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["KV cache"]\n'
    )
    assert digest("--config", str(path), "fetch").returncode == 0
    result = digest("--config", str(path), "send")
    assert result.returncode == 2 and "smtp.host: needed to send mail" in result.stderr
    # …while match and preview work without SMTP settings.
    assert digest("--config", str(path), "match").returncode == 0
    assert digest("--config", str(path), "preview", "--out", str(tmp_path / "p")).returncode == 0


def test_match_input_jsonl_echoes_listing_ids_in_rank_order() -> None:
    result = digest(
        "--config",
        str(data_path("config.example.toml")),
        "match",
        "--input",
        str(DATA / "listings.jsonl"),
        "--format",
        "jsonl",
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["2401.01234v2", "2402.00002", "2404.00004"]
    assert rows[0]["profile"] == "me" and rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]
    assert set(rows[0]) == {"profile", "id", "title", "score", "reasons"}
    assert rows[0]["reasons"][0] == {
        "kind": "author",
        "term": "Rishabh Tiwari",
        "field": "authors",
        "text": "Rishabh Tiwari",
    }
    assert {"kind": "keyword", "term": "KV cache", "field": "title", "text": "KV-Caches"} in (
        rows[0]["reasons"]
    )
    assert {r["kind"] for r in rows[2]["reasons"]} == {"keyword", "all_of"}


def test_init_writes_the_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    assert digest("init", str(target)).returncode == 0
    assert target.read_text() == data_path("config.example.toml").read_text()
    again = digest("init", str(target))
    assert again.returncode != 0 and "exists" in again.stderr


def test_preview_server_renders_fresh_on_every_request(tmp_path: Path) -> None:
    from digest.preview import make_server

    config = tmp_path / "config.toml"
    base = f'[store]\npath = "d.sqlite"\n[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
    config.write_text(
        base + '[[profiles]]\nname = "me"\nkeywords = ["KV cache"]\nfirst_run_days = 1\n'
    )
    assert digest("--config", str(config), "fetch").returncode == 0
    server = make_server(config, None, 0)
    assert server.server_address[0] == "127.0.0.1"
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        index = urllib.request.urlopen(url + "/").read().decode()
        assert "me</a>: 1 papers" in index
        page = urllib.request.urlopen(url + "/me").read().decode()
        assert "Speculative Decoding with" in page and "Post-Training" not in page

        config.write_text(
            base + '[[profiles]]\nname = "me"\nkeywords = ["KV cache", "quantiz*"]\n'
            "first_run_days = 1\n"
        )
        page = urllib.request.urlopen(url + "/me").read().decode()
        assert "Post-Training" in page

        config.write_text(base + "[[profiles]\n")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url + "/me")
        assert caught.value.code == 500
        assert "TOML syntax error" in caught.value.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_send_refuses_while_the_scheduler_holds_the_database_and_history_lists(
    tmp_path: Path,
) -> None:
    from digest.store import exclusive_lock

    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\npath = "d.sqlite"\n[delivery]\nmethod = "maildir"\nmaildir = "mail"\n'
        f'[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["KV cache"]\n'
    )
    assert digest("--config", str(config), "fetch").returncode == 0
    with exclusive_lock(tmp_path / "d.sqlite", "digest run"):
        refused = digest("--config", str(config), "send")
    assert refused.returncode == 6 and "Traceback" not in refused.stderr
    assert "is already using this database; refusing to start digest send" in refused.stderr

    assert digest("--config", str(config), "send").returncode == 0
    history = digest("--config", str(config), "history", env={"COLUMNS": "250", "PATH": ""})
    assert history.returncode == 0
    assert "Message-ID" in history.stdout and " sent " in history.stdout
