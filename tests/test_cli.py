"""The command line, run as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from digest.app import data_path
from tests.children import child_env

from .conftest import DATA, Script, ScriptedSmtp

COMMANDS = [
    "demo",
    "fetch",
    "match",
    "preview",
    "serve",
    "feedback",
    "send",
    "run",
    "init",
    "history",
    "backup",
    "doctor",
    "feed-key",
]
PROFILE_COMMANDS = [
    "show",
    "follow",
    "unfollow",
    "add-keyword",
    "remove-keyword",
    "exclude",
    "include",
    "set",
    "add-group",
    "remove-group",
    "mute",
    "unmute",
]


def digest(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,  # never a terminal: `digest init` does not ask
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command: str | None) -> None:
    result = digest(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: digest" in result.stdout


@pytest.mark.parametrize("command", PROFILE_COMMANDS)
def test_every_profile_command_has_help(command: str) -> None:
    from click.testing import CliRunner

    from digest.cli import cli

    result = CliRunner().invoke(cli, ["profile", command, "--help"])
    assert result.exit_code == 0 and "Usage: cli profile" in result.output


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


def _own_database(tmp_path: Path) -> dict[str, str]:
    """The environment for a command on the example config with its database in `tmp_path`
    (the example profile has a library: its suggestion model is kept in the database, which
    would otherwise be created beside the config, in the repository)."""
    return {**os.environ, "DIGEST_STORE__PATH": str(tmp_path / "digest.sqlite")}


def test_match_input_jsonl_echoes_listing_ids_in_rank_order(tmp_path: Path) -> None:
    result = digest(
        "--config",
        str(data_path("config.example.toml")),
        "match",
        "--input",
        str(DATA / "listings.jsonl"),
        "--format",
        "jsonl",
        env=_own_database(tmp_path),
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


def test_preview_server_renders_fresh_on_every_request(tmp_path: Path) -> None:
    from digest.serve import ServeOptions, running

    config = tmp_path / "config.toml"
    base = f'[store]\npath = "d.sqlite"\n[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
    config.write_text(
        base + '[[profiles]]\nname = "me"\nkeywords = ["KV cache"]\nfirst_run_days = 1\n'
    )
    assert digest("--config", str(config), "fetch").returncode == 0
    with running(ServeOptions(config, None)) as (_, port):
        url = f"http://127.0.0.1:{port}"
        index = urllib.request.urlopen(url + "/").read().decode()
        assert "me</a>: 1 paper ·" in index
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
    history = digest(
        "--config", str(config), "history", env=child_env({"COLUMNS": "250", "PATH": ""})
    )
    assert history.returncode == 0
    assert "Message-ID" in history.stdout and " sent " in history.stdout


def test_send_says_why_nothing_was_sent(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\npath = "d.sqlite"\n[delivery]\nmethod = "maildir"\nmaildir = "mail"\n'
        f'[[sources.files]]\npath = "{DATA / "listings.jsonl"}"\n'
        '[[profiles]]\nname = "me"\nemail = "me@example.org"\nkeywords = ["no such topic"]\n'
    )
    assert digest("--config", str(config), "fetch").returncode == 0
    result = digest("--config", str(config), "send")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"· me: nothing new: 6 papers fetched since \w{3} \d\d \w{3} \d\d:\d\d, none matched\n",
        result.stdout,
    ), result.stdout


def test_run_says_nothing_before_it_holds_the_lock(tmp_path: Path) -> None:
    from digest.store import exclusive_lock

    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "d.sqlite"\n[[profiles]]\nname = "me"\n')
    with exclusive_lock(tmp_path / "d.sqlite", "digest run"):
        refused = digest("--config", str(config), "run")
    assert refused.returncode == 6 and refused.stdout == ""
    assert refused.stderr.startswith("digest: error: ") and refused.stderr.count("\n") == 1


def test_run_settles_its_app_before_the_scheduler_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest run` builds what every pass uses and freezes it (`App.settle`) once, before
    its first tick (the scheduler is replaced here: it would run for good)."""
    from click.testing import CliRunner

    import digest.schedule
    from digest.app import App
    from digest.cli import cli

    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "d.sqlite"\n[[profiles]]\nname = "me"\nkeywords = ["rl"]\n')
    calls: list[str] = []
    monkeypatch.setattr(App, "settle", lambda self: calls.append("settle"))
    monkeypatch.setattr(
        digest.schedule, "run_forever", lambda app, started: calls.append("scheduler")
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "run"])
    assert result.exit_code == 0, result.output
    assert calls == ["settle", "scheduler"]


def test_settling_an_app_builds_its_matcher_and_freezes_what_is_alive(tmp_path: Path) -> None:
    import gc

    from digest.app import build_app
    from digest.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "d.sqlite"\n[[profiles]]\nname = "me"\nkeywords = ["rl"]\n')
    app = build_app(load_settings(config))
    try:
        assert app.memory.verdicts.matcher._algebra is None  # built on first use
        app.settle()
        assert app.memory.verdicts.matcher._algebra is not None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # a test process must not keep its objects out of the collector
        app.close()


def test_history_refuses_an_unknown_profile_like_the_other_commands(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "d.sqlite"\n[[profiles]]\nname = "me"\n')
    for command in ("history", "send", "match"):
        result = digest("--config", str(config), command, "--profile", "nobody")
        assert result.returncode == 2, (command, result.stderr)
        assert "no profile named 'nobody' (profiles: me)" in result.stderr


@pytest.mark.parametrize("command", ["match", "send"])
def test_no_profiles_is_said_and_exits_0(tmp_path: Path, command: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "d.sqlite"\n')
    result = digest("--config", str(config), command)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"digest: no profiles in {config}: add a [[profiles]] table (see `digest init`)\n"
    )


@pytest.fixture
def history_db(tmp_path: Path) -> tuple[Path, list[str]]:
    """A config and database with two past digests, one failing with a long error."""
    from datetime import UTC, datetime

    from digest.deliver import new_message_id
    from digest.store import RecipientStatus, Store

    config = tmp_path / "config.toml"
    config.write_text('[store]\npath = "d.sqlite"\n[[profiles]]\nname = "me"\n')
    store = Store.open(tmp_path / "d.sqlite")
    ids = []
    for day, error in ((20, ""), (21, "connection refused by smtp.example.org:587 " * 3)):
        now = datetime(2026, 11, day, 6, 30, tzinfo=UTC)
        ids.append(new_message_id("mail.example.org"))
        outbox = store.add_outbox(
            profile="me",
            message_id=ids[-1],
            recipients=("me@example.org",),
            subject="s",
            raw=b"raw",
            paper_keys=(),
            cutoff=now,
            now=now,
        )
        status: RecipientStatus = "pending" if error else "sent"
        tried = {"me@example.org": (status, error or "250")}
        store.record_attempt(outbox, now, tried=tried, error=error)
    store.close()
    return config, ids


def test_history_fits_80_columns_in_local_time(history_db: tuple[Path, list[str]]) -> None:
    config, ids = history_db
    env = {**os.environ, "COLUMNS": "80", "TZ": "Europe/Berlin"}
    result = digest("--config", str(config), "history", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    for line in ("2026-11-20 07:30 CET", "2026-11-21 07:30 CET"):
        assert sum(line in row for row in lines) == 1, result.stdout
    assert not any(i in result.stdout for i in ids)  # a short id, not the whole one
    assert "connection refused by smtp.example.org:587" in " ".join(result.stdout.split())
    wide = digest("--config", str(config), "history", "--wide", env=env)
    assert all(i in wide.stdout for i in ids)
    jsonl = digest("--config", str(config), "history", "--format", "jsonl", env=env)
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["message_id"] for r in rows] == ids[::-1]
    assert rows[0]["created"] == "2026-11-21T07:30:00+01:00" and rows[0]["status"] == "pending"


# --- digest init ----------------------------------------------------------------------------------


def _changed(before: str, after: str) -> tuple[list[str], list[str]]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [x[2:] for x in diff if x[:2] == "- "], [x[2:] for x in diff if x[:2] == "+ "]


def _comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_init_writes_your_own_profile_and_keeps_the_explanations(tmp_path: Path) -> None:
    from digest.settings import load_settings

    target = tmp_path / "config.toml"
    result = digest(
        "init",
        str(target),
        "--email",
        "ada@example.org",
        "--keywords",
        "metamorphic testing, flaky test*",
        "--categories",
        "cs.SE, cs.PL",
        "--timezone",
        "America/Toronto",
        "--send-at",
        "06:15",
    )
    assert result.returncode == 0, result.stderr
    example = data_path("config.example.toml").read_text()
    text = target.read_text()
    assert set(_comments(example)) <= set(_comments(text))  # every explanation kept
    settings = load_settings(target)
    profile = settings.profile_records()[0]
    assert profile.emails == ("ada@example.org",)
    assert profile.keywords == ("metamorphic testing", "flaky test*")
    assert profile.categories == ("cs.SE", "cs.PL")
    assert (profile.all_of, profile.exclude, profile.authors, profile.days) == ((), (), (), ())
    assert profile.timezone == "America/Toronto" and f"{profile.send_at:%H:%M}" == "06:15"
    assert settings.sources.files == []  # not the bundled seeds
    assert settings.sources.arxiv is not None and settings.sources.arxiv.categories == [
        "cs.SE",
        "cs.PL",
    ]
    assert settings.fetch.contact == "ada@example.org"
    for example_only in ("medical imaging", "diffusion", "cs.LG", "Europe/Berlin", "Tiwari"):
        assert example_only not in [line for line in text.splitlines() if "#" not in line]
    assert target.stat().st_mode & 0o077 == 0  # it may hold a password: private


def test_init_takes_the_system_time_zone_by_default(tmp_path: Path) -> None:
    from digest.settings import load_settings

    target = tmp_path / "config.toml"
    env = {**os.environ, "TZ": "Asia/Tokyo"}
    result = digest("init", str(target), "--keywords", "fuzzing", env=env)
    assert result.returncode == 0, result.stderr
    assert load_settings(target).profile_records()[0].timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("given", "names"),
    [
        pytest.param(
            "Fraser, Gordon; Andrea Stocco", ["Fraser, Gordon", "Andrea Stocco"], id="semi"
        ),
        pytest.param(
            "Andrea Stocco, Paolo Tonella", ["Andrea Stocco", "Paolo Tonella"], id="comma"
        ),
        pytest.param(
            "de la Cruz, Maria; Jane Doe", ["de la Cruz, Maria", "Jane Doe"], id="particle"
        ),
    ],
)
def test_init_reads_last_first_names_between_semicolons(
    tmp_path: Path, given: str, names: list[str]
) -> None:
    from digest.settings import load_settings

    target = tmp_path / "config.toml"
    result = digest("init", str(target), "--authors", given, "--timezone", "UTC")
    assert result.returncode == 0, result.stderr
    assert [a.name for a in load_settings(target).profile_records()[0].authors] == names


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("Fraser, Gordon, Andrea Stocco", id="last-first-between-commas"),
        pytest.param("Fraser, Gordon; Andrea Stocco, Paolo Tonella", id="two-names-in-one"),
        pytest.param("Fraser, Gordon, Stocco, Andrea", id="all-last-first-with-commas"),
    ],
)
def test_init_refuses_a_mixed_author_list_with_the_rule(tmp_path: Path, given: str) -> None:
    target = tmp_path / "config.toml"
    result = digest("init", str(target), "--authors", given, "--timezone", "UTC")
    assert result.returncode == 2 and result.stderr.startswith("digest: error: ")
    assert result.stderr.count("\n") == 1 and "';'" in result.stderr
    assert not target.exists()


def test_init_refuses_an_invalid_address_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    result = digest("init", str(target), "--email", "not-an-address")
    assert result.returncode == 2 and "invalid email address 'not-an-address'" in result.stderr
    assert result.stderr.count("\n") == 1 and not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_an_existing_file_like_every_other_error(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.write_text("# mine\n")
    result = digest("init", str(target))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"digest: error: {target} exists; not overwriting it\n"
    assert target.read_text() == "# mine\n"


def test_init_refuses_a_missing_directory_and_creates_none(tmp_path: Path) -> None:
    target = tmp_path / "nonexistent" / "dir" / "c.toml"
    result = digest("init", str(target), "--timezone", "UTC")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("digest: error: ") and result.stderr.count("\n") == 1
    assert "does not exist" in result.stderr and str(target.parent) in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_asks_at_a_terminal(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    from digest.settings import load_settings

    target = tmp_path / "config.toml"
    answers = (
        "nope\nada@example.org\n"  # asked again after a bad address
        "metamorphic testing, flaky test*\n"
        "Fraser, Gordon; Andrea Stocco\n"
        "cs.SE\n"
        "Mars/Base\nAmerica/Toronto\n"  # asked again after an unknown zone
        "25:00\n06:45\n"
    )
    result = CliRunner().invoke(cli, ["init", str(target), "--interactive"], input=answers)
    assert result.exit_code == 0, result.output
    assert "'nope' is not an email address" in result.output
    assert "';'" in result.output  # how to separate `Last, First` names
    assert "cs.SE" in result.output and "cs.LG" in result.output  # common categories listed
    assert "unknown time zone 'Mars/Base'" in result.output
    profile = load_settings(target).profile_records()[0]
    assert profile.emails == ("ada@example.org",)
    assert profile.keywords == ("metamorphic testing", "flaky test*")
    assert [a.name for a in profile.authors] == ["Fraser, Gordon", "Andrea Stocco"]
    assert profile.categories == ("cs.SE",) and profile.timezone == "America/Toronto"
    assert f"{profile.send_at:%H:%M}" == "06:45"


def test_init_at_a_terminal_offers_the_system_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from digest.cli import cli
    from digest.settings import load_settings

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    target = tmp_path / "config.toml"
    result = CliRunner().invoke(
        cli,
        ["init", str(target), "--interactive", "--email", "ada@example.org"],
        input="fuzzing\n\n\n\n\n",
    )
    assert result.exit_code == 0, result.output
    assert "email address" not in result.output  # given as an option: not asked
    assert "[Asia/Tokyo]" in result.output and "[07:30]" in result.output
    profile = load_settings(target).profile_records()[0]
    assert profile.timezone == "Asia/Tokyo" and profile.keywords == ("fuzzing",)
    assert (profile.authors, profile.categories) == ((), ())


# --- config errors, in process --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "[smtp]\nport = 587\n[store\n",
            "TOML syntax error: Expected ']' at the end of a table "
            "declaration (at line 3, column 7)",
        ),
        ('[[profiles]]\nname = "me"\nsend_at = "25:00"\n', 'profiles[0] ("me").send_at: '),
        ('[[profiles]]\nname = "me"\nsend_at = "7.30"\n', 'profiles[0] ("me").send_at: '),
        (
            '[[profiles]]\nname = "me"\ntimezone = "Europe/Berlim"\n',
            "profiles[0] (\"me\").timezone: unknown time zone 'Europe/Berlim'",
        ),
        (
            '[[profiles]]\nname = "me"\n[[profiles]]\nname = "you"\nemail = ["a@b"]\n',
            "profiles[1] (\"you\").email: invalid email address 'a@b'",
        ),
        (
            '[[profiles]]\nname = "me"\nkeyword = ["x"]\n',
            "profiles[0] (\"me\").keyword: unknown key (did you mean 'keywords'?)",
        ),
        ('[delivery]\nmethd = "smtp"\n', "delivery.methd: unknown key (did you mean 'method'?)"),
    ],
)
@pytest.mark.parametrize("command", [["match"], ["profile", "show"], ["doctor"]])
def test_config_errors_name_the_file_key_and_profile(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: str,
    expected: str,
    command: list[str],
) -> None:
    from digest.cli import main

    path = tmp_path / "config.toml"
    path.write_text(config)
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(path), *command])
    captured = capsys.readouterr()
    message = captured.err if command[0] != "doctor" else captured.out
    assert caught.value.code == (1 if command[0] == "doctor" else 2)
    assert message.count("\n") == 1 and expected in message and str(path) in message


def test_match_on_a_seed_file_prints_the_expected_papers_in_rank_order(tmp_path: Path) -> None:
    seed = Path(__file__).resolve().parents[1] / "seeds" / "001_bfef749d84ab509c.jsonl"
    config = str(data_path("config.example.toml"))
    command = ("--config", config, "match", "--input", str(seed), "--format", "jsonl")
    result = digest(*command, env=_own_database(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r["title"] for r in rows[:2]] == [
        "Continual Learning Beyond a Single Model",
        "Architecture Matters in Continual Learning",
    ]
    followed = [r for r in rows if r["reasons"][0]["kind"] == "author"]
    assert len(followed) == 27 and rows[: len(followed)] == followed  # people you follow first
    diffusion = next(r for r in rows if r["title"] == "Residual Context Diffusion Language Models")
    assert {(x["kind"], x["term"]) for x in diffusion["reasons"]} == {
        ("all_of", "diffusion"),
        ("all_of", "language model"),
    }
    assert all(r["id"] == "" for r in rows)  # the seeds carry no ids
    # As in the digest of these papers: 32 rule matches, then the library's suggestions (the
    # followed authors' papers in the listing count among what the model learns from).
    rules = [r for r in rows if r["reasons"][0]["kind"] != "similar"]
    assert len(rules) == 32 and rows[:32] == rules and len(rows) == 34


# --- digest send says what became of a digest (issue 11, item 8) ---------------------------------


@pytest.mark.parametrize(
    ("scripts", "emails", "code", "expected"),
    [
        (
            [Script(auth="535 5.7.8 bad credentials")],
            1,
            5,
            "✗ me: failed permanently, its papers go in the next digest: ",
        ),
        (
            [Script(greeting="421 4.3.2 too busy")],
            1,
            5,
            "✗ me: not delivered, kept for retry: ",
        ),
        (
            [Script(dot="drop")],
            1,
            5,
            "✗ me: delivery ambiguous (it may have arrived), will be resent unchanged: ",
        ),
        (
            [Script(dot="drop"), Script(rcpt={"me@example.org": "550 5.1.1 gone"})],
            1,
            5,
            "✗ me: undeliverable after an ambiguous try, its papers stay with ",
        ),
        (
            [Script(rcpt={"you@example.org": "452 4.2.2 mailbox full"})],
            2,
            0,
            "! me: partly delivered, 1 recipient(s) retried later: ",
        ),
    ],
    ids=["permanent", "transient", "ambiguous", "undeliverable", "partial"],
)
def test_send_says_what_became_of_the_digest(
    tmp_path: Path,
    scripted_smtp: ScriptedSmtp,
    five_paper_config: Callable[..., dict[str, Any]],
    scripts: list[Script],
    emails: int,
    code: int,
    expected: str,
) -> None:
    scripted_smtp.scripts = scripts
    addresses = ("me@example.org", "you@example.org")[:emails]
    config = tmp_path / "config.toml"
    data = five_paper_config(scripted_smtp, addresses)
    config.write_text(tomlkit.dumps(data))
    assert digest("--config", str(config), "fetch").returncode == 0

    sent = digest("--config", str(config), "send")

    assert sent.returncode == code and "Traceback" not in sent.stderr
    [line] = [x for x in sent.stderr.splitlines() if x.startswith(("✗", "!"))]
    assert line.startswith(expected)
    if "kept for retry" not in expected:
        assert "kept for retry" not in sent.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_match_shows_one_reason_per_term_and_field(tmp_path: Path, fmt: str) -> None:
    """A term that is both a keyword and in an `all_of` group is one reason per field."""
    listing = tmp_path / "l.jsonl"
    paper = {
        "id": "x1",
        "title": "A hallucination benchmark",
        "authors": ["Ann Example"],
        "abstract": "We measure hallucination on a benchmark.",
        "categories": [],
        "published": "2026-11-20",
        "url": "",
        "source": "t",
    }
    listing.write_text(json.dumps(paper) + "\n")
    config = tmp_path / "config.toml"
    config.write_text(
        '[[profiles]]\nname = "me"\nkeywords = ["hallucination"]\n'
        'all_of = [["hallucination", "benchmark"]]\n'
    )
    args = ("--config", str(config), "match", "--input", str(listing), "--format", fmt)
    result = digest(*args, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    if fmt == "jsonl":
        (row,) = [json.loads(line) for line in result.stdout.splitlines()]
        places = [(r["term"], r["field"]) for r in row["reasons"]]
        assert sorted(places) == sorted(set(places)) and len(places) == 4
    else:
        assert "(title and abstract and title" not in result.stdout
        assert "“hallucination” (title and abstract)" in result.stdout


def test_the_distribution_is_not_named_digest() -> None:
    """`digest` on the package index is an unrelated project: the distribution has its own
    name, while the package and the command stay `digest`; the README says how to install."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "research-digest"
    assert project["scripts"] == {"digest": "digest.cli:main"}
    assert "research-digest[test]" in project["optional-dependencies"]["dev"]
    readme = (root / "README.md").read_text()
    assert "pipx install ." in readme and "pipx install dist/research_digest-" in readme
    assert "pip install digest" not in readme
    version = digest("--version")
    assert version.returncode == 0 and version.stdout.strip() == "digest, version 0.1.0"


def test_tables_print_config_and_payload_text_as_written_not_as_markup(tmp_path: Path) -> None:
    # rich reads `[http]` as a style tag: "more than 50 MB ([http] max_response_mb)" printed
    # as "more than 50 MB ( max_response_mb)". Names, errors and titles are text, not markup.
    config = tmp_path / "config.toml"
    config.write_text(
        '[store]\npath = "d.sqlite"\n'
        '[[sources.files]]\nname = "mine [bold]"\npath = "lists/[http]/*.jsonl"\n'
        '[[profiles]]\nname = "me"\nkeywords = ["cache"]\n'
    )
    env = {**os.environ, "COLUMNS": "250"}
    fetched = digest("--config", str(config), "fetch", env=env)
    assert "mine [bold]" in fetched.stdout
    assert "no files match" in fetched.stdout and "lists/[http]/*.jsonl" in fetched.stdout
    listing = tmp_path / "in.jsonl"
    title = "A [b]cache[/b] for [red] tokens"
    listing.write_text(json.dumps({"id": "2401.00001", "title": title}) + "\n")
    matched = digest("--config", str(config), "match", "--input", str(listing), env=env)
    assert matched.returncode == 0, matched.stderr
    assert title in matched.stdout
