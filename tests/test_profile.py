"""`digest profile …`: edits of a commented TOML file, in place, through the real CLI entry point.

Every edit must change only the lines it is about (comments, order and layout elsewhere stay
byte for byte), the result must load, duplicates must be refused the way the matcher compares,
and a refused or failed edit must leave the old file and no temp file behind.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest

from digest.cli import main
from digest.errors import ConfigError
from digest.match import same_person
from digest.profile_edit import same_term, write_atomically
from digest.settings import load_settings
from digest.starter import split_list

from .conftest import DATA

FIXTURE = DATA / "profile" / "config.toml"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A private copy of the commented fixture."""
    path = tmp_path / "config.toml"
    path.write_bytes(FIXTURE.read_bytes())
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `digest ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines removed, lines added) between two texts."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    return removed, added


def _files(directory: Path) -> list[str]:
    """The directory's files but the edit lock (it stays, empty, for the next edit)."""
    return sorted(p.name for p in directory.iterdir() if p.name != ".config.toml.lock")


EDITS = [
    pytest.param(
        ["follow", "me", "Jane Doe"],
        [],
        ['    "Jane Doe",'],
        id="follow",
    ),
    pytest.param(
        ["follow", "me", "Jane Doe", "--alias", "J. Q. Doe-Miller", "--alias", "Jane Miller"],
        [],
        ['    { name = "Jane Doe", aliases = ["J. Q. Doe-Miller", "Jane Miller"] },'],
        id="follow-with-aliases",
    ),
    pytest.param(
        ["follow", "me", "Rishabh Tiwari", "--alias", "Rishi Tiwari-Rao"],
        ['    "Rishabh Tiwari",'],
        ['    { name = "Rishabh Tiwari", aliases = ["Rishi Tiwari-Rao"] },'],
        id="alias-for-a-followed-author",
    ),
    pytest.param(
        ["follow", "lab", "Jane Doe"],
        ['authors = ["Lauren A. Hannah"]'],
        ['authors = ["Lauren A. Hannah", "Jane Doe"]'],
        id="follow-in-a-one-line-list",
    ),
    pytest.param(
        ["unfollow", "me", "Iman Mirzadeh"],
        ['    { name = "Seyed Iman Mirzadeh", aliases = ["Iman Mirzadeh"] },  # same person'],
        [],
        id="unfollow-by-alias",
    ),
    pytest.param(
        ["unfollow", "lab", "Lauren Hannah"],
        ['authors = ["Lauren A. Hannah"]'],
        ["authors = []"],
        id="unfollow-by-a-matching-name",
    ),
    pytest.param(
        ["add-keyword", "me", "state space model"],
        [],
        ['    "state space model",'],
        id="add-keyword",
    ),
    pytest.param(
        ["add-keyword", "lab", "diffusion"],
        [],
        ['keywords = ["diffusion"]'],
        id="add-keyword-creates-the-key",
    ),
    pytest.param(
        ["remove-keyword", "me", "kv-caches"],
        ['    "KV cache",          # memory'],
        [],
        id="remove-keyword-as-the-matcher-compares",
    ),
    pytest.param(
        ["exclude", "me", "x-ray"],
        ['exclude = ["medical imaging"]  # not my field'],
        ['exclude = ["medical imaging", "x-ray"]  # not my field'],
        id="exclude",
    ),
    pytest.param(
        ["exclude", "lab", "survey"],
        [],
        ['exclude = ["survey"]'],
        id="exclude-creates-the-key",
    ),
    pytest.param(
        ["include", "me", "Medical Imaging"],
        ['exclude = ["medical imaging"]  # not my field'],
        ["exclude = []  # not my field"],
        id="include",
    ),
    pytest.param(
        ["set", "me", "send_at", "06:15"],
        ['send_at = "07:30"'],
        ['send_at = "06:15"'],
        id="set-send_at",
    ),
    pytest.param(
        ["set", "me", "timezone", "America/Toronto"],
        ['timezone = "Europe/Berlin"'],
        ['timezone = "America/Toronto"'],
        id="set-timezone",
    ),
    pytest.param(
        ["set", "me", "categories", "cs.SE, cs.PL"],
        ['categories = ["cs.LG", "cs.CL"]'],
        ['categories = ["cs.SE", "cs.PL"]'],
        id="set-categories",
    ),
    pytest.param(
        ["set", "me", "categories", ""],
        ['categories = ["cs.LG", "cs.CL"]'],
        ["categories = []"],
        id="set-categories-to-any",
    ),
    pytest.param(
        ["set", "me", "email", "me@example.org, you@example.org"],
        ['email = "me@example.org"'],
        ['email = ["me@example.org", "you@example.org"]'],
        id="set-email",
    ),
    pytest.param(
        ["set", "lab", "days", "mon, wed fri"],
        [],
        ['days = ["mon", "wed", "fri"]'],
        id="set-days-creates-the-key",
    ),
    pytest.param(["set", "lab", "max_items", "20"], [], ["max_items = 20"], id="set-max_items"),
    pytest.param(["set", "lab", "window_days", "7"], [], ["window_days = 7"], id="set-window"),
    pytest.param(
        ["set", "lab", "first_run_days", "0"], [], ["first_run_days = 0"], id="set-first-run"
    ),
    pytest.param(["set", "lab", "send_empty", "yes"], [], ["send_empty = true"], id="set-bool"),
    pytest.param(["set", "lab", "cadence", "weekly"], [], ['cadence = "weekly"'], id="set-cadence"),
    pytest.param(
        ["add-group", "me", "diffusion, language model"],
        [],
        ['all_of = [["diffusion", "language model"]]'],
        id="add-group",
    ),
]


@pytest.mark.parametrize(("args", "removed", "added"), EDITS)
def test_an_edit_changes_only_its_own_lines(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    removed: list[str],
    added: list[str],
) -> None:
    before = config.read_text()
    code, out, err = run(capsys, "--config", str(config), "profile", *args)
    assert (code, err) == (0, "")
    assert out.startswith(f"profile {args[1]}: ") and str(config) in out
    assert changed_lines(before, config.read_text()) == (removed, added)
    load_settings(config)  # the result is a valid config


def test_new_keys_land_inside_their_profile(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key the `lab` profile lacked goes after its time zone, not below the closing comment."""
    assert (
        run(capsys, "--config", str(config), "profile", "add-keyword", "lab", "diffusion")[0] == 0
    )
    lines = config.read_text().splitlines()
    timezone = lines.index('timezone = "America/New_York"')
    assert lines[timezone + 1] == 'keywords = ["diffusion"]'
    assert lines[-1] == "# The end."


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (["follow", "me", "Jane Doe", "--alias", "J. Miller"], "authors"),
        (["unfollow", "me", "Rishabh Tiwari"], "authors"),
        (["add-keyword", "lab", "Naïve Bayes"], "keywords"),
        (["exclude", "lab", "survey"], "exclude"),
    ],
)
def test_edits_reach_the_loaded_profile(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], check: str
) -> None:
    before = load_settings(config).profile_records(args[1])[0]
    assert run(capsys, "--config", str(config), "profile", *args)[0] == 0
    after = load_settings(config).profile_records(args[1])[0]
    assert getattr(before, check) != getattr(after, check)
    if args[0] == "follow":
        assert after.authors[-1].name == "Jane Doe" and after.authors[-1].aliases == ("J. Miller",)
    if args[0] == "add-keyword":
        assert after.keywords == ("Naïve Bayes",)


REFUSALS = [
    (["follow", "me", "Rishabh Tiwari"], "already follows 'Rishabh Tiwari'"),
    (["follow", "me", "rishabh  TIWARI"], "already follows 'Rishabh Tiwari'"),
    (["follow", "me", "R. Tiwari"], "already follows 'Rishabh Tiwari' ('R. Tiwari' names"),
    (["follow", "me", "Tiwari, Rishabh"], "already follows 'Rishabh Tiwari'"),
    (["follow", "me", "Iman Mirzadeh"], "already follows 'Seyed Iman Mirzadeh'"),
    (["follow", "lab", "Lauren Hannah"], "already follows 'Lauren A. Hannah'"),
    (["follow", "lab", "Laurén Hannah"], "already follows 'Lauren A. Hannah'"),
    (["follow", "me", "Jane Doe", "--alias", "R Tiwari"], "whom the matcher takes 'R Tiwari'"),
    (["follow", "me", "Jane Doe", "--alias", "J. Doe"], "an alias is only needed"),
    (["follow", "me", "Seyed Iman Mirzadeh", "--alias", "Iman Mirzadeh"], "already follows"),
    (["follow", "me", "  "], "is not an author name"),
    (["add-keyword", "me", "KV cache"], "already has the keyword 'KV cache'"),
    (["add-keyword", "me", "KV-Caches"], "'KV-Caches' is the same term for matching"),
    (["add-keyword", "me", "ＫＶ cache"], "already has the keyword 'KV cache'"),
    (["add-keyword", "me", "Quantiz*"], "already has the keyword 'quantiz*'"),
    (["add-keyword", "me", "*"], "no letters or digits"),
    (
        ["add-keyword", "me", "Quantization-aware training"],
        "already has the keyword 'quantiz*', which covers 'Quantization-aware training'",
    ),
    (
        ["add-keyword", "me", "paged KV caches"],
        "already has the keyword 'KV cache', which covers 'paged KV caches'",
    ),
    (
        ["exclude", "me", "medical imaging segmentation"],
        "already has the exclusion 'medical imaging', which covers",
    ),
    (["exclude", "me", "Medical-Imaging"], "already has the exclusion 'medical imaging'"),
    (["remove-keyword", "me", "pruning"], "has no keyword 'pruning' (keywords: 'KV cache'"),
    (["include", "lab", "survey"], "has no exclusion 'survey' (exclude: none)"),
    (["unfollow", "me", "Jane Doe"], "does not follow 'Jane Doe' (authors: 'Rishabh Tiwari'"),
    (["set", "me", "max_items", "5000"], 'profiles[0] ("me").max_items: '),
    (["set", "me", "max_items", "many"], "max_items: 'many' is not a whole number"),
    (["set", "me", "timezone", "Mars/Base"], "unknown time zone 'Mars/Base'"),
    (["set", "me", "days", "monday"], 'profiles[0] ("me").days'),
    (["set", "me", "send_empty", "maybe"], "send_empty: 'maybe' is not true or false"),
    (["set", "me", "email", "not-an-address"], "invalid email address 'not-an-address'"),
    (["set", "me", "send_at", "25:00"], 'profiles[0] ("me").send_at'),
    (["set", "me", "cadence", "hourly"], 'profiles[0] ("me").cadence'),
    (["set", "me", "keywords", "x"], "keywords cannot be set: use add-keyword"),
    (["set", "me", "colour", "x"], "no setting 'colour' (settings: categories, send_at"),
    (["set", "nobody", "max_items", "3"], "no profile named 'nobody' (profiles: me, lab)"),
    (["add-group", "me", "diffusion"], "a group needs at least two terms"),
    (["add-group", "me", "diffusion, Diffusions"], "'Diffusions' is the same term as 'diffusion'"),
    (["remove-group", "me", "a, b"], "has no all_of group 'a' + 'b' (all_of: none)"),
    (["add-keyword", "nobody", "x"], "no profile named 'nobody' (profiles: me, lab)"),
    (["follow", "nobody", "Jane Doe"], "no profile named 'nobody' (profiles: me, lab)"),
]


@pytest.mark.parametrize(("args", "expected"), REFUSALS)
def test_refusals_are_one_line_and_leave_the_file_alone(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    before = config.read_bytes()
    code, out, err = run(capsys, "--config", str(config), "profile", *args)
    assert code == 2 and out == ""
    assert err.startswith("digest: error: ") and err.count("\n") == 1, err
    assert expected in err
    assert config.read_bytes() == before
    assert _files(config.parent) == ["config.toml"]


def test_set_keeps_a_comment_on_the_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config.write_text(config.read_text().replace('send_at = "07:30"', 'send_at = "07:30"  # early'))
    before = config.read_text()
    assert run(capsys, "--config", str(config), "profile", "set", "me", "send_at", "6:05")[0] == 0
    assert changed_lines(before, config.read_text()) == (
        ['send_at = "07:30"  # early'],
        ['send_at = "06:05"  # early'],
    )


@pytest.mark.parametrize(
    ("args", "key", "value"),
    [
        (["max_items", "12"], "max_items", 12),
        (["days", "sat,sun"], "days", ("sat", "sun")),
        (["categories", "cs.SE"], "categories", ("cs.SE",)),
        (["send_empty", "off"], "send_empty", False),
        (["send_empty", "true"], "send_empty", True),
        (["window_days", "9"], "window_days", 9),
        (["email", "a@example.org"], "emails", ("a@example.org",)),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_set_reaches_the_loaded_profile(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], key: str, value: object
) -> None:
    assert run(capsys, "--config", str(config), "profile", "set", "lab", *args)[0] == 0
    assert getattr(load_settings(config).profile_records("lab")[0], key) == value


def test_groups_are_added_and_removed_as_the_matcher_compares(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = config.read_text()
    edit = ["--config", str(config), "profile"]
    code, out, _ = run(capsys, *edit, "add-group", "me", "diffusion, language model")
    assert code == 0 and "'diffusion' + 'language model'" in out
    assert load_settings(config).profile_records("me")[0].all_of == (
        ("diffusion", "language model"),
    )
    code, _, err = run(capsys, *edit, "add-group", "me", "Language Models, diffusion")
    assert code == 2 and "already has the all_of group 'diffusion' + 'language model'" in err
    code, out, _ = run(capsys, *edit, "remove-group", "me", "Language-Models, Diffusion")
    assert code == 0 and "removed the all_of group 'diffusion' + 'language model'" in out
    assert load_settings(config).profile_records("me")[0].all_of == ()
    assert changed_lines(before, config.read_text()) == ([], ["all_of = []"])


@pytest.mark.parametrize(
    ("first", "second", "refused"),
    [
        pytest.param("flaky test*", "Flaky Tests", True, id="prefix-covers-plural"),
        pytest.param("flaky tests", "flaky test*", False, id="prefix-is-broader"),
        pytest.param("test*", "flaky test*", True, id="shorter-prefix-covers"),
        pytest.param("KV cache", "KV", False, id="longer-term-does-not-cover"),
        pytest.param("metamorphic testing", "metamorphic", False, id="part-does-not-cover"),
    ],
)
def test_add_keyword_refuses_a_term_an_existing_one_covers(
    config: Path, capsys: pytest.CaptureFixture[str], first: str, second: str, refused: bool
) -> None:
    args = ("--config", str(config), "profile", "add-keyword", "lab")
    assert run(capsys, *args, first)[0] == 0
    code, _, err = run(capsys, *args, second)
    keywords = load_settings(config).profile_records("lab")[0].keywords
    if refused:
        assert code == 2 and f"keyword {first!r}, which covers {second!r}" in err
        assert keywords == (first,)
    else:
        assert code == 0 and keywords == (first, second)


def test_unfollow_asks_for_the_exact_name_when_several_match(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Jane Doe", "John Doe"):
        assert run(capsys, "--config", str(config), "profile", "follow", "lab", name)[0] == 0
    code, _, err = run(capsys, "--config", str(config), "profile", "unfollow", "lab", "J. Doe")
    assert code == 2 and "could be any of 'Jane Doe', 'John Doe'" in err
    assert run(capsys, "--config", str(config), "profile", "unfollow", "lab", "John Doe")[0] == 0
    assert [a.name for a in load_settings(config).profile_records("lab")[0].authors] == [
        "Lauren A. Hannah",
        "Jane Doe",
    ]


def test_an_edit_of_an_invalid_config_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole document is validated before writing: an edit never writes an invalid file."""
    config.write_text(
        config.read_text().replace('timezone = "America/New_York"', 'timezone = "Mars"')
    )
    before = config.read_bytes()
    code, _, err = run(capsys, "--config", str(config), "profile", "add-keyword", "me", "RLHF")
    assert code == 2 and 'profiles[1] ("lab").timezone: unknown time zone' in err
    assert config.read_bytes() == before


def test_a_toml_syntax_error_is_reported_with_its_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text("[[profiles]\n")
    code, _, err = run(capsys, "--config", str(config), "profile", "add-keyword", "me", "RLHF")
    assert code == 2 and "TOML syntax error" in err and "line 1, column" in err


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = config.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    code, _, err = run(capsys, "--config", str(config), "profile", "add-keyword", "me", "RLHF")
    assert code == 2 and f"{config}: cannot write: Permission denied" in err
    assert config.read_bytes() == before
    assert _files(config.parent) == ["config.toml"]


def test_an_interrupted_write_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.toml"
    target.write_text("old = 1\n")

    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, "new = 2\n")
    assert target.read_text() == "old = 1\n"
    assert _files(tmp_path) == ["config.toml"]


def test_permissions_and_symlinks_are_kept(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.chmod(0o640)
    link = config.parent / "link.toml"
    link.symlink_to(config.name)
    assert run(capsys, "--config", str(link), "profile", "add-keyword", "me", "RLHF")[0] == 0
    assert link.is_symlink() and '    "RLHF",' in config.read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_the_config_is_found_like_every_other_command(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --config: $DIGEST_CONFIG, else ./config.toml."""
    monkeypatch.setenv("DIGEST_CONFIG", str(config))
    assert run(capsys, "profile", "add-keyword", "me", "RLHF")[0] == 0
    monkeypatch.delenv("DIGEST_CONFIG")
    monkeypatch.chdir(config.parent)
    assert run(capsys, "profile", "add-keyword", "me", "DPO")[0] == 0
    assert load_settings(config).profile_records("me")[0].keywords[-2:] == ("RLHF", "DPO")


def test_inline_profiles_can_be_edited_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('profiles = [{ name = "me", email = "me@example.org" }]  # inline\n')
    assert run(capsys, "--config", str(path), "profile", "follow", "me", "Jane Doe")[0] == 0
    assert path.read_text().endswith("]  # inline\n")
    assert load_settings(path).profile_records("me")[0].authors[0].name == "Jane Doe"


def test_show_prints_every_part_of_the_profile(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--config", str(config), "profile", "show", "me")
    assert code == 0
    assert "profile me" in out and "profile lab" not in out
    assert "07:30 Europe/Berlin, every day, daily" in out
    assert "Rishabh Tiwari; Seyed Iman Mirzadeh (also: Iman Mirzadeh)" in out
    assert "KV cache, speculative decoding, quantiz*" in out
    assert "medical imaging" in out and "cs.LG, cs.CL" in out

    code, out, _ = run(capsys, "--config", str(config), "profile", "show")
    assert code == 0 and "profile me" in out and "profile lab" in out
    assert "lab@example.org, pi@example.org" in out

    code, out, err = run(capsys, "--config", str(config), "profile", "show", "nobody")
    assert code == 2 and "no profile named 'nobody' (profiles: me, lab)" in err


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("KV cache", "kv-cache", True),
        ("KV cache", "KVcache", True),
        ("policy", "policies", True),
        ("LLM", "LLMs", True),
        ("Naïve", "naive", True),
        ("quantiz*", "quantiz", False),
        ("RL", "URL", False),
        ("cache", "caching", False),
    ],
)
def test_terms_compare_as_the_matcher_reads_them(a: str, b: str, same: bool) -> None:
    assert same_term(a, b) is same and same_term(b, a) is same


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Lauren A. Hannah", "Lauren Hannah", True),
        ("Lauren A. Hannah", "Hannah, Lauren", True),
        ("Lauren A. Hannah", "Lauren B. Hannah", False),
        ("José García", "Jose Garcia", True),
        ("Jane Doe", "John Doe", False),
    ],
)
def test_names_compare_as_the_matcher_reads_them(a: str, b: str, same: bool) -> None:
    assert same_person(a, b) is same


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("KV cache, pruning,, ", ["KV cache", "pruning"]),
        ("Doe, Jane; Roe, John", ["Doe, Jane", "Roe, John"]),
        ("", []),
    ],
)
def test_split_list(text: str, parts: list[str]) -> None:
    assert split_list(text) == parts


def test_a_missing_config_is_one_line(tmp_path: Path) -> None:
    from digest.profile_edit import add_term

    with pytest.raises(ConfigError, match="config file not found"):
        add_term(tmp_path / "nope.toml", "me", "keywords", "x")


def test_parallel_edits_all_survive_with_the_comments(config: Path) -> None:
    import subprocess
    import sys

    before = config.read_text()
    terms = [f"parallel term {i:02d}" for i in range(20)]
    command = [sys.executable, "-m", "digest", "--config", str(config), "profile"]
    children = [
        subprocess.Popen(
            [*command, "add-keyword", "me", term],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for term in terms
    ]
    outcomes = []
    for child in children:
        try:
            out, err = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        outcomes.append((child.returncode, out, err))
    failed = [err for code, _, err in outcomes if code != 0]
    assert not failed, failed
    assert all("added the keyword" in out for _, out, _ in outcomes)
    keywords = load_settings(config).profile_records("me")[0].keywords
    assert sorted(set(keywords) & set(terms)) == terms
    removed, added = changed_lines(before, config.read_text())
    assert removed == [] and len(added) == 20
    assert not any(line.lstrip().startswith("#") for line in added)
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert all(line in config.read_text().splitlines() for line in comments)
    assert not list(config.parent.glob(".config.toml.*.tmp"))


@pytest.mark.parametrize(
    ("args", "entry", "record"),
    [
        pytest.param(
            ["Wei Chen", "--openalex", "https://openalex.org/A5023888391"],
            '{ name = "Wei Chen", openalex = "A5023888391" }',
            ("Wei Chen", "A5023888391", ""),
            id="new-by-openalex",
        ),
        pytest.param(
            ["Rishabh Tiwari", "--orcid", "0000-0002-1825-0097"],
            '{ name = "Rishabh Tiwari", orcid = "0000-0002-1825-0097" }',
            ("Rishabh Tiwari", "", "0000-0002-1825-0097"),
            id="plain-name-becomes-table",
        ),
        pytest.param(
            ["Iman Mirzadeh", "--openalex", "A1"],
            '{ name = "Seyed Iman Mirzadeh", aliases = ["Iman Mirzadeh"], openalex = "A1" }',
            ("Seyed Iman Mirzadeh", "A1", ""),
            id="table-keeps-aliases",
        ),
    ],
)
def test_follow_by_id_writes_the_id_and_keeps_comments(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    entry: str,
    record: tuple[str, str, str],
) -> None:
    before = config.read_text()
    code, out, err = run(capsys, "--config", str(config), "profile", "follow", "me", *args)
    assert "now followed by id" in out or "now following" in out
    assert code == 0, err
    after = config.read_text()
    assert entry in after
    assert "# People I follow." in after and "# same person" in after
    removed, added = changed_lines(before, after)
    assert len(added) == 1 and len(removed) <= 1
    [me, _] = load_settings(config).profile_records()
    assert record in [(a.name, a.openalex, a.orcid) for a in me.authors]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        pytest.param(
            ["Wei Chen", "--orcid", "0000-0002-1825-0098"], "not an ORCID iD", id="checksum"
        ),
        pytest.param(["Wei Chen", "--openalex", "W123"], "not an OpenAlex author id", id="work-id"),
    ],
)
def test_follow_refuses_a_malformed_id(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    before = config.read_text()
    code, _, err = run(capsys, "--config", str(config), "profile", "follow", "me", *args)
    assert code != 0 and problem in err and len(err.strip().splitlines()) == 1
    assert config.read_text() == before


def test_follow_refuses_another_id_for_a_followed_name(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = ["--config", str(config), "profile", "follow", "me", "Wei Chen", "--openalex", "A1"]
    assert run(capsys, *first)[0] == 0
    before = config.read_text()
    code, _, err = run(capsys, *first[:-1], "A2")
    assert code != 0 and "another person of the same name" in err
    assert config.read_text() == before


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param(
            "name",
            '[[profiles]]  # me\nname = "me"\nkeywords = ["x"]\ntimezone = "UTC"  # zone\n'
            "\n# about the sources\n",
            id="between-keys",
        ),
        pytest.param(
            "timezone",
            '[[profiles]]  # me\nname = "me"\ntimezone = "UTC"  # zone\nkeywords = ["x"]\n'
            "\n# about the sources\n",
            id="after-the-last-key-above-the-trailing-comment",
        ),
    ],
)
def test_table_with_key_after_keeps_every_other_line(after: str, expected: str) -> None:
    import tomlkit
    from tomlkit.items import AoT

    from digest.profile_edit import table_with_key_after

    document = tomlkit.parse(
        '[[profiles]]  # me\nname = "me"\ntimezone = "UTC"  # zone\n\n# about the sources\n'
        "[sources.arxiv]\ncategories = []\n"
    )
    tables = document["profiles"]
    assert isinstance(tables, AoT)
    tables[0] = table_with_key_after(tables[0], after, "keywords", tomlkit.item(["x"]))
    assert tomlkit.dumps(document) == expected + "[sources.arxiv]\ncategories = []\n"
