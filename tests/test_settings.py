"""Settings: TOML plus environment overrides, secrets kept secret, one-line config errors."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from digest.app import data_path
from digest.errors import ConfigError
from digest.models import FollowedAuthor, Profile
from digest.settings import (
    FeedConfig,
    OpenAlexConfig,
    Settings,
    load_settings,
    settings_from_dict,
)
from digest.settings_errors import _model_of


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_documents_every_key() -> None:
    settings = load_settings(data_path("config.example.toml"))
    [profile] = settings.profile_records()
    assert profile.name == "me" and profile.timezone == "Europe/Berlin"
    assert profile.send_at == time(7, 30)
    assert [a.name for a in profile.authors] == [
        "Rishabh Tiwari",
        "Mehrdad Farajtabar",
        "Seyed Iman Mirzadeh",
    ]
    text = data_path("config.example.toml").read_text()
    models = [model for _, model in settings if not isinstance(model, list)]
    models += [settings.profiles[0], settings.sources.files[0], settings.sources.arxiv]
    models += [settings.sources.hf_daily, FeedConfig(name="x", url="https://x.org/feed")]
    models += [OpenAlexConfig()]
    for model in models:
        for key in type(model).model_fields:
            forms = (f"\n{key} =", f"\n# {key} =", f"[[sources.{key}]]", f"[sources.{key}]")
            assert any(form in text for form in forms), f"{key} undocumented"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[smtp]\nhost = "file.example.org"\nport = 587\n')
    monkeypatch.setenv("DIGEST_SMTP__PASSWORD", "from-env")
    monkeypatch.setenv("DIGEST_SMTP__HOST", "env.example.org")
    settings = load_settings(path)
    assert settings.smtp.host == "env.example.org"
    assert settings.smtp.port == 587
    assert settings.smtp.secret() == "from-env"
    assert "from-env" not in repr(settings) and "from-env" not in settings.model_dump_json()


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    settings = load_settings(write(tmp_path, '[smtp]\npassword_file = "pw"\n'))
    assert settings.smtp.password_file is not None
    assert settings.resolve(settings.smtp.password_file).read_text().strip() == "from-file"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[store]\npath = "data/d.sqlite"\n'))
    assert settings.resolve(settings.store.path) == tmp_path / "data" / "d.sqlite"


def test_email_may_be_a_string_or_a_list(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[[profiles]]\nname = "a"\nemail = "a@b.org"\n'))
    assert settings.profile_records()[0].emails == ("a@b.org",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[smtp\n", "TOML syntax error: "),
        ("[smtp]\nhots = 'x'\n", "smtp.hots: unknown key (did you mean 'host'?)"),
        ("[smpt]\nhost = 'x'\n", "smpt: unknown key (did you mean 'smtp'?)"),
        (
            '[[profiles]]\nname = "me"\ntimezone = "Mars/Base"\n',
            "profiles[0] (\"me\").timezone: unknown time zone 'Mars/Base'",
        ),
        (
            '[[profiles]]\nname = "me"\nemail = ["ok@example.org", "nope"]\n',
            "profiles[0] (\"me\").email: invalid email address 'nope'",
        ),
        ('[[profiles]]\nname = "me"\nsend_at = "25:00"\n', 'profiles[0] ("me").send_at:'),
        (
            '[[profiles]]\nname = "me"\nkeywrds = ["x"]\n',
            "profiles[0] (\"me\").keywrds: unknown key (did you mean 'keywords'?)",
        ),
        ('[[profiles]]\nname = "a"\n[[profiles]]\nname = "a"\n', "profile name 'a' is used twice"),
        (
            '[[sources.files]]\nname = "x"\npath = "a"\n' * 2,
            "sources: source name 'x' is used twice",
        ),
        (
            '[[sources.feeds]]\nname = "arxiv"\nurl = "https://a.org/f"\n',
            "source name 'arxiv' is used twice",
        ),
        ("[smtp]\nport = 99999\n", "smtp.port: Input should be less than or equal to 65535"),
        ("[smtp]\nsecurity = 'tls'\n", "smtp.security: Input should be 'ssl', 'starttls' or"),
        ("[smtp]\nfrom_address = 'me'\n", "smtp.from_address: invalid email address 'me'"),
        (
            '[smtp]\nfrom_address = "me\\u0000@example.org"\n',
            "smtp.from_address: invalid email address 'me\\x00@example.org'",
        ),
        (
            '[[profiles]]\nname = "me"\nemail = "me@example.org\\u0007"\n',
            "profiles[0] (\"me\").email: invalid email address 'me@example.org\\x07'",
        ),
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    line = str(caught.value)
    assert line.startswith(f"{path}: ") and message in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '[[sources.feeds]]\nname = "f"\nurl = "ftp://a.org/f"\n',
            "sources.feeds[0] (\"f\").url: 'ftp://a.org/f' is not a web address "
            "(it must start with http:// or https://)",
            id="feed-url",
        ),
        pytest.param(
            '[[profiles]]\nname = "my profile"\n',
            "profiles[0] (\"my profile\").name: 'my profile' is not a usable name "
            "(letters, digits, '.', '_' and '-', starting with a letter or digit)",
            id="profile-name",
        ),
    ],
)
def test_pattern_errors_are_said_in_words(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    line = str(caught.value).removeprefix(f"{path}: ")
    assert message in line
    assert "pattern" not in line and "^" not in line


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3, column \d+"):
        load_settings(write(tmp_path, '[smtp]\nhost = "x"\nport = = 1\n'))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml")


def test_unknown_profile_name(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[[profiles]]\nname = "a"\n'))
    with pytest.raises(ConfigError, match="no profile named 'b'"):
        settings.profile_records("b")


def test_profile_records_are_made_once_per_load(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, '[[profiles]]\nname = "a"\n[[profiles]]\nname = "b"\n')
    )
    records = settings.profile_records()
    assert settings.profile_records() is records
    assert settings.profile_records("b")[0] is records[1]


def test_a_record_holds_every_profile_setting(tmp_path: Path) -> None:
    (tmp_path / "lib.bib").write_text("", encoding="utf-8")
    text = """[[profiles]]
name = "a"
email = "a@b.org"
send_at = "06:15"
timezone = "Europe/Berlin"
keywords = ["k"]
all_of = [["x", "y"]]
exclude = ["e"]
authors = ["Ada Lovelace", { name = "Alan Turing", aliases = ["A. M. Turing"] }]
categories = ["cs.LG"]
days = ["mon", "thu"]
cadence = "weekly"
max_items = 7
send_empty = true
first_run_days = 4
window_days = 9
mute_authors = ["M. Uted"]
orcid = "0000-0002-1825-0097"
cites = ["arxiv:1706.03762"]
cites_my_works = true
library = "lib.bib"
"""
    [record] = load_settings(write(tmp_path, text)).profile_records()
    assert record == Profile(
        name="a",
        emails=("a@b.org",),
        keywords=("k",),
        all_of=(("x", "y"),),
        exclude=("e",),
        authors=(FollowedAuthor("Ada Lovelace"), FollowedAuthor("Alan Turing", ("A. M. Turing",))),
        categories=("cs.LG",),
        send_at=time(6, 15),
        timezone="Europe/Berlin",
        days=("mon", "thu"),
        cadence="weekly",
        max_items=7,
        send_empty=True,
        first_run_days=4,
        window_days=9,
        mute_authors=("M. Uted",),
        orcid="0000-0002-1825-0097",
        cites=("arxiv:1706.03762",),
        cites_my_works=True,
        library=(tmp_path / "lib.bib",),
        suggestions=5,
    )


# --- config that must fail as one line, through the real CLI ---------------------------------

_DEEP = 50_000
FAULTS = [
    pytest.param("x = " + "[" * _DEEP + "]" * _DEEP + "\n", {}, 2, "nested too deeply", id="deep"),
    pytest.param(
        '[store]\npath = "blocker/sub/d.sqlite"\n[[profiles]]\nname = "me"\n',
        {},
        4,
        "blocker/sub/d.sqlite: cannot create the database",
        id="store-path-uncreatable",
    ),
    pytest.param(
        '[[profiles]]\nname = "me"\nfirst_run_days = 1000000\n',
        {},
        2,
        'profiles[0] ("me").first_run_days: Input should be less than or equal to',
        id="first-run-days-huge",
    ),
    pytest.param(
        '[smtp]\nfrom_name = "digest\\r\\nBcc: someone@example.org"\n',
        {},
        2,
        "smtp.from_name: must not contain line breaks or control characters",
        id="crlf-from-name",
    ),
    pytest.param(
        '[smtp]\nmessage_id_domain = "example.org\\r\\nX: y"\n',
        {},
        2,
        "smtp.message_id_domain: must not contain line breaks or control characters",
        id="crlf-message-id-domain",
    ),
    pytest.param(
        '[smtp]\nusername = "me\\r\\nMAIL FROM:<x@y.org>"\n',
        {},
        2,
        "smtp.username: must not contain line breaks or control characters",
        id="crlf-username",
    ),
    pytest.param(
        "",
        {"DIGEST_SMTP": "not json"},
        2,
        "environment variable DIGEST_SMTP: not valid JSON",
        id="env-smtp-not-json",
    ),
    pytest.param(
        "",
        {"DIGEST_PROFILES": '[{"name": "me", "keywords": ["x"'},
        2,
        "environment variable DIGEST_PROFILES: not valid JSON",
        id="env-profiles-truncated",
    ),
    pytest.param(
        "",
        {"DIGEST_SMTP__PORT": "many"},
        2,
        "environment variable DIGEST_SMTP__PORT: Input should be a valid integer",
        id="env-port-not-a-number",
    ),
    pytest.param(
        '[[profiles]]\nname = "me"\nsend_at = 730\n',
        {},
        2,
        'profiles[0] ("me").send_at: must be a time in quotes, "HH:MM"',
        id="send-at-number",
    ),
    pytest.param(
        '[[profiles]]\nname = "me"\nauthors = [{ name = "Ana Gómez", alias = ["A. Gómez"] }]\n',
        {},
        2,
        'profiles[0] ("me").authors[0] ("Ana Gómez").alias: unknown key '
        "(did you mean 'aliases'?)",
        id="author-table-unknown-key",
    ),
    pytest.param(
        '[[profiles]]\nname = "me"\nauthors = [7]\n',
        {},
        2,
        'profiles[0] ("me").authors[0]: Input should be a valid string',
        id="author-not-a-name",
    ),
    pytest.param(
        '[smtp]\nport = 0\n[[profiles]]\nname = "me"\ntimezone = "Mars/Base"\nmax_items = 0\n',
        {},
        2,
        "smtp.port: Input should be greater than or equal to 1; "
        "profiles[0] (\"me\").timezone: unknown time zone 'Mars/Base' "
        "(use an IANA name such as 'Europe/Berlin'); "
        'profiles[0] ("me").max_items: Input should be greater than or equal to 1',
        id="every-problem",
    ),
]


@pytest.mark.parametrize(("text", "env", "code", "expected"), FAULTS)
@pytest.mark.parametrize("command", ["match", "send"])
def test_config_faults_are_one_line_through_the_cli(
    tmp_path: Path, text: str, env: dict[str, str], code: int, expected: str, command: str
) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "blocker").write_text("a file, not a directory")
    path = write(tmp_path, text)
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("DIGEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(path), command],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**environment, **env},
        timeout=120,
    )
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]
    if env:  # the variable is named, not the file it did not come from
        assert str(path) not in lines[0]


def _numbers(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The key path of every int or float setting of `model` and the models inside it."""
    found: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        inner = _model_of(info.annotation)
        if inner is not None:
            found += _numbers(inner, (*prefix, name))
        elif info.annotation in (int, float, int | None, float | None):
            found.append((*prefix, name))
    return found


def _nest(keys: tuple[str, ...], value: object) -> dict[str, object]:
    """`{"a": {"b": value}}` for `("a", "b")`; lists of tables get one minimal table."""
    minimal: dict[str, dict[str, object]] = {
        "profiles": {"name": "me"},
        "feeds": {"name": "f", "url": "https://example.org/feed"},
        "files": {"path": "x.jsonl"},
    }
    head, *rest = keys
    if head in minimal:  # a list of tables: one minimal table with the number in it
        return {head: [{**minimal[head], **_nest(tuple(rest), value)}]}
    return {head: _nest(tuple(rest), value) if rest else value}


NUMBERS = _numbers(Settings)


def test_every_number_setting_is_found() -> None:
    assert ("profiles", "first_run_days") in NUMBERS and ("http", "read_timeout") in NUMBERS
    assert len(NUMBERS) >= 18


@pytest.mark.parametrize("keys", NUMBERS, ids=[".".join(k) for k in NUMBERS])
@pytest.mark.parametrize("value", [10**9, float("inf"), -(10**9)], ids=["huge", "inf", "neg"])
def test_every_number_setting_has_bounds(
    tmp_path: Path, keys: tuple[str, ...], value: float
) -> None:
    with pytest.raises(ConfigError, match=keys[-1]):
        settings_from_dict(_nest(keys, value), tmp_path / "config.toml")
