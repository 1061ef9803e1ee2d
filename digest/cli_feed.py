"""`digest feed-key PROFILE [--revoke]`: a profile's secret Atom feed URL, and revoking it.

This is the one place a feed key is shown, on purpose: the URL goes into a feed reader. It is
never logged. `--revoke` makes every earlier URL of the profile answer 404 and prints the new
one.
"""

from __future__ import annotations

import click

from digest.cli_context import Context

DEFAULT_BASE = "http://127.0.0.1:8642"  # `digest serve`'s own address, without a public_url


@click.command("feed-key")
@click.argument("profile_name", metavar="PROFILE")
@click.option("--revoke", is_flag=True, help="Revoke the current URL (it answers 404) first.")
@click.pass_obj
def feed_key(obj: Context, profile_name: str, revoke: bool) -> None:
    """Print PROFILE's secret Atom feed URL (`--revoke`: a new one; the old stops working)."""
    from digest.errors import StoreError
    from digest.feed_entries import current_key, feed_url

    settings = obj.settings
    settings.profile_records(profile_name)  # an unknown profile: one line
    db = obj.db or settings.resolve(settings.store.path)
    if not db.is_file():  # the key's secret lives beside the database: never create one here
        raise StoreError(f"{db}: no database yet (run `digest fetch` first)")
    app = obj.app()
    try:
        if revoke:
            generation = app.store.revoke_feed_key(profile_name, app.clock())
            click.echo(f"{profile_name}: earlier feed URLs revoked (key generation {generation})")
        key = current_key(app, profile_name)
    finally:
        app.close()
    base = settings.server.public_url or DEFAULT_BASE
    click.echo(feed_url(base, profile_name, key))
