"""`digest init`: write a starter config, asking what it needs when run in a terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from digest.errors import DigestError


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), default="config.toml")
@click.option("--email", metavar="ADDRESS", help="Where your digest goes.")
@click.option(
    "--keywords", metavar="TERMS", help='Your interests, comma-separated: "KV cache, pruning".'
)
@click.option(
    "--authors",
    metavar="NAMES",
    help='Authors to follow, comma-separated, or ";"-separated when written "Last, First": '
    '"Fraser, Gordon; Andrea Stocco".',
)
@click.option(
    "--categories",
    metavar="LIST",
    help='arXiv categories to read, comma-separated: "cs.SE, cs.PL" (default: none, any).',
)
@click.option("--timezone", metavar="ZONE", help="IANA time zone (default: this machine's).")
@click.option("--send-at", metavar="HH:MM", help="Local time to send (default: 07:30).")
@click.option(
    "--interactive/--no-interactive",
    default=None,
    help="Ask for what is not given (default: when stdin is a terminal).",
)
def init(
    path: Path,
    email: str | None,
    keywords: str | None,
    authors: str | None,
    categories: str | None,
    timezone: str | None,
    send_at: str | None,
    interactive: bool | None,
) -> None:
    """Write a starter config to PATH: your own profile, the example's explanations as comments."""
    from digest.app import data_path
    from digest.profile_edit import clean_categories, write_atomically
    from digest.starter import split_author_names, split_list, starter_config, system_timezone

    _check_new_config(path)
    if interactive is None:
        interactive = sys.stdin.isatty()
    if interactive:
        answers = _ask_starter(email, keywords, authors, categories, timezone, send_at)
        email, keywords, authors, categories, timezone, send_at = answers
    example = data_path("config.example.toml").read_text(encoding="utf-8")
    chosen = clean_categories(categories or "")
    text = starter_config(
        example,
        path,
        email=email,
        keywords=split_list(keywords or ""),
        authors=split_author_names(authors or ""),
        categories=chosen,
        timezone=timezone or system_timezone(),
        send_at=send_at,
    )
    _check_new_config(path)  # created while we were asking
    write_atomically(path, text)
    todo = "your SMTP server" if email else "your email and SMTP server"
    click.echo(f"Wrote {path}: set {todo}, then run `digest doctor` and `digest preview`.")
    if not chosen:
        click.echo("No arXiv categories: add some to [sources.arxiv] to read arXiv's new papers.")


def _check_new_config(path: Path) -> None:
    """ConfigError unless `path` can be a new file: it must not exist, its directory must."""
    from digest.errors import ConfigError

    if path.exists() or path.is_symlink():
        raise ConfigError(f"{path} exists; not overwriting it")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise ConfigError(f"{path}: the directory {parent} does not exist; create it first")


def _ask_starter(
    email: str | None,
    keywords: str | None,
    authors: str | None,
    categories: str | None,
    timezone: str | None,
    send_at: str | None,
) -> tuple[str, str, str, str, str, str]:
    """Prompt for whatever the options did not give; an empty answer means none."""
    from digest.starter import COMMON_CATEGORIES, system_timezone

    if email is None:
        email = click.prompt("Your email address", value_proc=_email_answer)
    if keywords is None:
        keywords = click.prompt(
            "Interests (keywords), comma-separated", default="", show_default=False
        )
    if authors is None:
        click.echo(
            "Authors to follow: separate names with ',' (Gordon Fraser, Andrea Stocco), "
            "or with ';' when written 'Last, First' (Fraser, Gordon; Andrea Stocco)."
        )
        authors = click.prompt(
            "Authors (empty: none)", default="", show_default=False, value_proc=_authors_answer
        )
    if categories is None:
        click.echo("Common arXiv categories (all: https://arxiv.org/category_taxonomy):")
        for code, title in COMMON_CATEGORIES:
            click.echo(f"  {code:<16} {title}")
        categories = click.prompt(
            "arXiv categories, comma-separated (empty: none)",
            default="",
            show_default=False,
            value_proc=_categories_answer,
        )
    if timezone is None:
        timezone = click.prompt(
            "Time zone", default=system_timezone(), value_proc=_setting_answer("timezone")
        )
    if send_at is None:
        send_at = click.prompt(
            "Send at (HH:MM)", default="07:30", value_proc=_setting_answer("send_at")
        )
    return email or "", keywords or "", authors or "", categories or "", timezone, send_at


def _authors_answer(value: str) -> str:
    from digest.starter import split_author_names

    try:
        split_author_names(value)
    except DigestError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _categories_answer(value: str) -> str:
    from digest.profile_edit import clean_categories

    try:
        clean_categories(value)
    except DigestError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _setting_answer(key: str) -> Any:
    """A prompt check for one profile setting, validated as the config would validate it."""

    def check(value: str) -> str:
        from pydantic import ValidationError

        from digest.settings import ProfileConfig

        try:
            ProfileConfig.model_validate({"name": "check", key: value.strip()})
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise click.BadParameter(problem) from None
        return value.strip()

    return check


def _email_answer(value: str) -> str:
    """An email address as the config would accept it; asks again otherwise."""
    from pydantic import ValidationError

    from digest.settings import ProfileConfig

    try:
        ProfileConfig(name="check", email=[value.strip()])
    except ValidationError:
        raise click.BadParameter(f"{value.strip()!r} is not an email address") from None
    return value.strip()
