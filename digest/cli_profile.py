"""`digest profile …` (edit the profiles in the config file in place) and `digest author
search` (find people to follow by id)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli_context import Context, plain

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.table import Table

    from digest.models import FollowedAuthor, Profile
    from digest.profile_edit import TermList
    from digest.sources.openalex import AuthorCandidate


@click.group()
def author() -> None:
    """Find people to follow by id (OpenAlex)."""


@author.command("search")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 50), default=10, show_default=True)
@click.pass_obj
def author_search(obj: Context, name: str, limit: int) -> None:
    """List the OpenAlex authors NAME may mean, to follow one by id:
    `digest profile follow PROFILE NAME --openalex A…`."""
    from rich.console import Console

    from digest.app import make_client, system_clock
    from digest.settings import OpenAlexConfig
    from digest.sources.openalex import SHOWN_NAME_CHARS, search_authors, shown

    settings = obj.settings
    config = settings.sources.openalex or OpenAlexConfig()
    with make_client(settings) as client:
        today = system_clock().date()
        found = search_authors(config, client, name, settings.fetch.contact, limit, today=today)
    asked = shown(name, SHOWN_NAME_CHARS)
    if not found:
        click.echo(f"no OpenAlex author found for {asked!r}")
        return
    Console(width=160).print(_candidates_table(asked, found))


def _candidates_table(asked: str, found: Sequence[AuthorCandidate]) -> Table:
    """The table of `author search`: one OpenAlex author a row."""
    from rich.table import Table

    table = Table(title=plain(f"OpenAlex authors named {asked!r}"))
    for column in ("openalex", "name", "orcid", "institution", "works", "topics", "recent"):
        table.add_column(column, overflow="fold", justify="right" if column == "works" else "left")
    for candidate in found:
        table.add_row(*map(plain, _candidate_cells(candidate)))
    return table


def _candidate_cells(candidate: AuthorCandidate) -> tuple[str, ...]:
    """One row of `author search`: a dash for what OpenAlex does not know."""
    return (
        candidate.openalex,
        candidate.name,
        candidate.orcid or "—",
        candidate.institution or "—",
        f"{candidate.works_count:,}",
        ", ".join(candidate.topics) or "—",
        candidate.recent_title or "—",
    )


@click.group()
def profile() -> None:
    """Show and edit the profiles in the config file in place, keeping its comments."""


@profile.command("show")
@click.argument("name", required=False)
@click.pass_obj
def profile_show(obj: Context, name: str | None) -> None:
    """Show one profile (or all): schedule, authors, keywords, exclusions, categories."""
    chosen = obj.settings.profile_records(name)  # an unknown name: one line listing the names
    click.echo(f"# {obj.settings.path}")
    _echo_profiles(chosen)
    if not chosen:
        click.echo("no profiles: add a [[profiles]] table (see `digest init`)")


def _echo_profiles(chosen: Sequence[Profile]) -> None:
    """Each profile's lines, a blank line between two profiles."""
    for i, record in enumerate(chosen):
        if i:
            click.echo()
        for line in _profile_lines(record):
            click.echo(line)


def _profile_lines(record: Profile) -> list[str]:
    """A profile as aligned `label  value` lines, one list item after another."""
    nowhere = "(none)" if record.notify else "(none: cannot be sent)"
    rows = [
        ("email", _listed(", ", record.emails, nowhere)),
        *([("notify", ", ".join(t.label for t in record.notify))] if record.notify else []),
        (
            "sends",
            f"{record.send_at:%H:%M} {record.timezone}, {_listed(' ', record.days, 'every day')}, "
            f"{record.cadence}",
        ),
        ("at most", f"{record.max_items} papers per email"),
        ("authors", _listed("; ", map(_author_label, record.authors))),
        ("keywords", _listed(", ", record.keywords)),
        ("all of", _listed("; ", map(" + ".join, record.all_of))),
        ("exclude", _listed(", ", record.exclude)),
        ("muted", _listed("; ", record.mute_authors)),
        ("categories", _listed(", ", record.categories, "(any)")),
    ]
    return [f"profile {record.name}"] + [f"  {label:<10}  {value}" for label, value in rows]


def _listed(separator: str, items: Iterable[str], empty: str = "(none)") -> str:
    """The items joined with `separator`; `empty` when there are none."""
    return separator.join(items) or empty


def _author_label(author: FollowedAuthor) -> str:
    """A followed author's name, with their other spellings."""
    return author.name + (f" (also: {', '.join(author.aliases)})" if author.aliases else "")


def _edited(obj: Context, message: str) -> None:
    click.echo(f"{message} ({obj.config_path})")


@profile.command("follow")
@click.argument("name")
@click.argument("author")
@click.option("--alias", "aliases", multiple=True, metavar="NAME", help="Another spelling.")
@click.option(
    "--openalex", default="", metavar="A…", help="This person only: their OpenAlex author id."
)
@click.option("--orcid", default="", metavar="ID", help="This person only: their ORCID iD.")
@click.pass_obj
def profile_follow(
    obj: Context, name: str, author: str, aliases: tuple[str, ...], openalex: str, orcid: str
) -> None:
    """Follow AUTHOR in profile NAME: everything they write is included.

    With --openalex or --orcid (see `digest author search`), only that person's papers: a
    namesake's are left out (needs [sources.openalex])."""
    from digest.profile_edit import follow

    _edited(obj, follow(obj.config_path, name, author, aliases, openalex=openalex, orcid=orcid))


@profile.command("unfollow")
@click.argument("name")
@click.argument("author")
@click.pass_obj
def profile_unfollow(obj: Context, name: str, author: str) -> None:
    """Stop following AUTHOR in profile NAME."""
    from digest.profile_edit import unfollow

    _edited(obj, unfollow(obj.config_path, name, author))


# (command, list it edits, add or remove, help): the four term edits differ only in these.
_TERM_COMMANDS: tuple[tuple[str, TermList, bool, str], ...] = (
    ("add-keyword", "keywords", True, "Add TERM to the keywords of profile NAME."),
    ("remove-keyword", "keywords", False, "Remove TERM from the keywords of profile NAME."),
    (
        "exclude",
        "exclude",
        True,
        "Leave out papers that mention TERM (unless a followed author wrote them).",
    ),
    ("include", "exclude", False, "Take TERM off the exclude list of profile NAME."),
)


def _term_command(command: str, key: TermList, add: bool, help_text: str) -> None:
    """Register `digest profile COMMAND NAME TERM`, editing the profile's `key` list."""

    @profile.command(command, help=help_text)
    @click.argument("name")
    @click.argument("term")
    @click.pass_obj
    def edit(obj: Context, name: str, term: str) -> None:
        from digest.profile_edit import add_term, remove_term

        change = add_term if add else remove_term
        _edited(obj, change(obj.config_path, name, key, term))


for _command in _TERM_COMMANDS:
    _term_command(*_command)


@profile.command("mute")
@click.argument("name")
@click.argument("author")
@click.pass_obj
def profile_mute(obj: Context, name: str, author: str) -> None:
    """Leave out papers by AUTHOR in profile NAME (unless a followed author also wrote them)."""
    from digest.profile_edit import mute_author

    _edited(obj, mute_author(obj.config_path, name, author))


@profile.command("unmute")
@click.argument("name")
@click.argument("author")
@click.pass_obj
def profile_unmute(obj: Context, name: str, author: str) -> None:
    """Take AUTHOR off the muted authors of profile NAME."""
    from digest.profile_edit import unmute_author

    _edited(obj, unmute_author(obj.config_path, name, author))


@profile.command("set")
@click.argument("name")
@click.argument("key", metavar="KEY")
@click.argument("value")
@click.pass_obj
def profile_set(obj: Context, name: str, key: str, value: str) -> None:
    """Set KEY of profile NAME to VALUE: categories, send_at, timezone, days, max_items,
    window_days, first_run_days, send_empty, cadence or email (lists comma-separated; "" for
    none)."""
    from digest.profile_edit import set_value

    _edited(obj, set_value(obj.config_path, name, key, value))


@profile.command("add-group")
@click.argument("name")
@click.argument("terms")
@click.pass_obj
def profile_add_group(obj: Context, name: str, terms: str) -> None:
    """Add an all_of group to profile NAME: TERMS, comma-separated, must all appear."""
    from digest.profile_edit import add_group

    _edited(obj, add_group(obj.config_path, name, terms))


@profile.command("remove-group")
@click.argument("name")
@click.argument("terms")
@click.pass_obj
def profile_remove_group(obj: Context, name: str, terms: str) -> None:
    """Remove the all_of group with TERMS (comma-separated, any order) from profile NAME."""
    from digest.profile_edit import remove_group

    _edited(obj, remove_group(obj.config_path, name, terms))
