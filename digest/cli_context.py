"""What every command shares: the global options' `Context` (settings and app built on first
use) and the helpers that print for all of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.text import Text

    from digest.app import App
    from digest.settings import Settings


class Context:
    """What the global options say, with settings and app built on first use."""

    def __init__(self, config: Path | None, db: Path | None) -> None:
        self.config = config
        self.db = db
        self._settings: Settings | None = None

    @property
    def config_path(self) -> Path:
        """The config file: `--config`, else `$DIGEST_CONFIG`, ./config.toml, the user dir."""
        if self.config is not None:
            return self.config
        from digest.settings import default_config_path

        return default_config_path()

    @property
    def settings(self) -> Settings:
        """The validated settings (ConfigError on any problem)."""
        if self._settings is None:
            from digest.settings import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    def app(self, *, keep_compiled: bool = True) -> App:
        """The composition root's product for these settings (`keep_compiled`: `build_app`)."""
        from digest.app import build_app

        return build_app(self.settings, db_path=self.db, keep_compiled=keep_compiled)


pass_context = click.make_pass_decorator(Context)


def plain(text: str) -> Text:
    """`text` as rich prints it verbatim: a source name, an error, a title or a setting is not
    markup (`[http] max_response_mb` would print as ` max_response_mb`)."""
    from rich.text import Text

    return Text(text)


def no_profiles(obj: Context) -> None:
    """Say that there is nothing to do (exit 0): the config has no profile."""
    click.echo(
        f"digest: no profiles in {obj.settings.path}: add a [[profiles]] table (see `digest init`)",
        err=True,
    )
