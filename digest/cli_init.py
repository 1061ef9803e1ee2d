"""`digest init`: write a starter config, asking what it needs when run in a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable
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
    _say_what_next(path, bool(email), bool(chosen))


def _say_what_next(path: Path, has_email: bool, has_categories: bool) -> None:
    """Tell the reader what the starter config still needs."""
    todo = "your SMTP server" if has_email else "your email and SMTP server"
    click.echo(f"Wrote {path}: set {todo}, then run `digest doctor` and `digest preview`.")
    if not has_categories:
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
) -> tuple[str, ...]:
    """Prompt for whatever the options did not give, in this order; an empty answer means
    none."""
    given = (email, keywords, authors, categories, timezone, send_at)
    return tuple(
        ask() if value is None else value for value, ask in zip(given, _QUESTIONS, strict=True)
    )


def _ask_email() -> str:
    """Ask for the reader's address (required)."""
    return str(click.prompt("Your email address", value_proc=_email_answer))


def _ask_keywords() -> str:
    """Ask for the reader's interests."""
    return str(
        click.prompt("Interests (keywords), comma-separated", default="", show_default=False)
    )


def _ask_authors() -> str:
    """Ask for the authors to follow, saying how to separate their names first."""
    click.echo(
        "Authors to follow: separate names with ',' (Gordon Fraser, Andrea Stocco), "
        "or with ';' when written 'Last, First' (Fraser, Gordon; Andrea Stocco)."
    )
    return str(
        click.prompt(
            "Authors (empty: none)", default="", show_default=False, value_proc=_authors_answer
        )
    )


def _ask_categories() -> str:
    """Ask for the arXiv categories, listing the common ones first."""
    from digest.starter import COMMON_CATEGORIES

    click.echo("Common arXiv categories (all: https://arxiv.org/category_taxonomy):")
    for code, title in COMMON_CATEGORIES:
        click.echo(f"  {code:<16} {title}")
    return str(
        click.prompt(
            "arXiv categories, comma-separated (empty: none)",
            default="",
            show_default=False,
            value_proc=_categories_answer,
        )
    )


def _ask_timezone() -> str:
    """Ask for the time zone, this machine's by default."""
    from digest.starter import system_timezone

    return str(
        click.prompt("Time zone", default=system_timezone(), value_proc=_setting_answer("timezone"))
    )


def _ask_send_at() -> str:
    """Ask for the local time to send at."""
    return str(
        click.prompt("Send at (HH:MM)", default="07:30", value_proc=_setting_answer("send_at"))
    )


# The questions of `init`, in the order of `_ask_starter`'s arguments.
_QUESTIONS: tuple[Callable[[], str], ...] = (
    _ask_email,
    _ask_keywords,
    _ask_authors,
    _ask_categories,
    _ask_timezone,
    _ask_send_at,
)


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
