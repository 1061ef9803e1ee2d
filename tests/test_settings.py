"""Settings: TOML plus environment overrides, secrets kept secret, one-line config errors."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from digest.app import data_path
from digest.errors import ConfigError
from digest.settings import FeedConfig, load_settings


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
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    line = str(caught.value)
    assert line.startswith(f"{path}: ") and message in line
    assert "\n" not in line


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
