"""The README's command examples work, in order, on a fresh copy of the repository after
`digest demo` (what `make demo` runs), as a new user would type them.

Every command of every ```sh block is run, but those listed in SKIPPED with the reason; a
command that would reach the network and is not listed fails the test, so a new example must
say how it is covered. No network: proxies point at a closed local port, so a stray request
fails instead of leaving the machine.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Commands not run, each with why (the first words of the command, as written in the README).
SKIPPED = {
    "make demo": "builds .venv and runs `digest demo`: the test runs `digest demo` itself",
    "make test": "runs this whole suite",
    "pipx install .": "installs into the user's own pipx environments, outside the test's copy",
    "pip wheel --no-deps -w dist .": "builds a wheel from PyPI's hatchling (network)",
    "pipx install dist/research_digest-0.1.0-py3-none-any.whl": "as `pipx install .`",
    "$EDITOR config.toml": "needs an editor",
    "digest preview --open": "opens a browser",
    "digest preview --serve": "a server that runs until stopped (tests/test_preview.py)",
    "digest serve": "a server that runs until stopped (tests/test_serve.py)",
    "digest feedback": "needs a fetched paper in the store (tests/test_feedback.py)",
    "digest profile mute": "edits profile me's muted authors (tests/test_feedback.py)",
    "digest run": "the scheduler daemon, runs until stopped (tests/test_schedule.py)",
    "digest author search": "asks OpenAlex (tests/test_openalex.py serves it locally)",
    "digest feed-key": "needs a database with deliveries (tests/test_feed_reader.py)",
    "digest preview --profile me --atom": "needs delivered papers (tests/test_feed_reader.py)",
}
# Commands that talk to the network or a mail server: each must be in SKIPPED.
NETWORK = ("digest fetch", "digest send", "digest doctor", "digest author")


def sh_commands(text: str) -> list[list[str]]:
    """The words of every command of the ```sh blocks, in order, comments and blank lines left
    out (quoting as the shell reads it)."""
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def skipped(words: list[str]) -> str:
    """Why the command is not run, or "" when it is."""
    plain = " ".join([words[0].removeprefix(".venv/bin/"), *words[1:]])
    for start, reason in SKIPPED.items():
        if plain == start or plain.startswith(start + " "):
            return reason
    return ""


def fresh_copy(target: Path) -> Path:
    """The repository's tracked files (as they are in the work tree), nothing generated."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_sh_commands_are_read_in_order() -> None:
    text = "```sh\nmake demo   # a\n            # b\n```\nx\n```sh\ndigest run\n```\n"
    assert sh_commands(text) == [["make", "demo"], ["digest", "run"]]


def test_every_readme_command_runs_in_order_on_a_fresh_copy(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("needs a git checkout to copy the tracked files")
    repo = fresh_copy(tmp_path / "repo")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing leaves
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        TZ="UTC",
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        ALL_PROXY=closed,
        NO_PROXY="",
        COLUMNS="120",
    )

    def run(words: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest", *words],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )

    demo = run(["demo"])
    assert demo.returncode == 0, demo.stderr
    commands = sh_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 10
    ran = []
    for words in commands:
        command = " ".join(words)
        if skipped(words):
            continue
        program = words[0].removeprefix(".venv/bin/")
        assert program == "digest", f"{command!r}: not a digest command; list it in SKIPPED"
        plain = " ".join(["digest", *words[1:]])
        assert not plain.startswith(NETWORK), f"{command!r} needs the network: list it in SKIPPED"
        result = run(words[1:])
        assert result.returncode == 0, f"{command!r} failed:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, command
        ran.append(plain)
    assert any(c.startswith("digest match --input seeds/") for c in ran)
    assert (repo / "config.toml").exists()  # `digest init` wrote the reader's own config


# --- the README's demo figures are the demo's ------------------------------------------------

DEMO_SENTENCE = re.compile(
    r"The demo digest, [^)]*\), holds (?P<papers>\d+) papers \((?P<full>\d+) in full, "
    r"(?P<compact>\d+) in the compact list,\s+(?P<suggested>\d+) suggested\) in\s+"
    r"(?P<kb>[\d.]+) KB of HTML as it is sent.*?(?:the other (?P<more>\d+) wait|every\s+candidate"
    r"\s+fits)",
    re.DOTALL,
)


@pytest.fixture(scope="module")
def demo_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, int]:
    """What `digest demo` prints, the text part of its digest and its HTML part's size as sent."""
    from click.testing import CliRunner

    from digest.cli import cli
    from digest.render import html_part_bytes

    out = tmp_path_factory.mktemp("readme-demo") / "out"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "demo" / "me.html").read_text(encoding="utf-8")
    text = (out / "demo" / "me.txt").read_text(encoding="utf-8")
    return result.output, text, html_part_bytes(html)


def excerpt_runs(readme: str) -> list[list[str]]:
    """The README's excerpt of the demo digest, as runs of lines between the `…` lines."""
    block = readme.split("An excerpt of the demo digest", 1)[1].split("```text\n", 1)[1]
    runs: list[list[str]] = [[]]
    for line in block.split("\n```", 1)[0].splitlines():
        if line == "…":
            runs.append([])
        else:
            runs[-1].append(line)
    return [run for run in runs if run]


def test_the_readme_excerpt_is_lines_of_the_demo_digest_in_order(
    demo_text: tuple[str, str, int],
) -> None:
    lines = demo_text[1].splitlines()
    at = 0
    for run in excerpt_runs(README.read_text(encoding="utf-8")):
        starts = [i for i in range(at, len(lines) - len(run) + 1) if lines[i : i + len(run)] == run]
        assert starts, "not in the demo digest (after the previous part):\n" + "\n".join(run)
        at = starts[0] + len(run)


def test_the_readme_figures_are_the_demo_digest(demo_text: tuple[str, str, int]) -> None:
    printed, text, html_bytes = demo_text
    found = DEMO_SENTENCE.search(README.read_text(encoding="utf-8"))
    assert found, "the README's sentence about the demo digest"
    figures = {name: int(value or 0) for name, value in found.groupdict().items() if name != "kb"}
    sections = {
        title: int(count)
        for title, count in re.findall(r"^([A-Z][A-Z ]+) \((\d+)\)$", text, re.MULTILINE)
    }
    more = re.search(r"^(\d+) more papers match your profile", text, re.MULTILINE)
    assert figures == {
        "papers": sum(sections.values()),
        "full": sections["FROM PEOPLE YOU FOLLOW"] + sections["ON YOUR TOPICS"],
        "compact": sections["MORE THAT MATCH"],
        "suggested": sections["SUGGESTED FOR YOU"],
        "more": int(more.group(1)) if more else 0,
    }
    assert f"Profile me: {figures['papers']} papers" in printed
    assert found["kb"] == f"{html_bytes / 1000:.1f}"


def test_the_commands_table_lists_every_command() -> None:
    """Each command the CLI has is in the README's Commands table (`| `digest NAME …`)."""
    from digest.cli import cli

    text = README.read_text(encoding="utf-8")
    table = text[text.index("\n## Commands\n") :]
    table = table[: table.index("\n## ", 1)]
    missing = [name for name in sorted(cli.commands) if f"| `digest {name}" not in table]
    assert missing == []
