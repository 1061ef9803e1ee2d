"""Preview: the next digest of each profile, as files (`digest preview`); `digest serve`
(digest/serve.py, which `preview --serve` runs) serves the same pages.

The server re-reads the TOML and the store on every request, so editing the profile and pressing
reload shows the effect at once; a config error is shown in the page instead of stopping it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from digest.app import App, build_app, plan_digests
from digest.models import Profile
from digest.plan.planning import Plan
from digest.settings import Settings
from digest.store import Store

log = logging.getLogger(__name__)

# The names the server answers to (with its own port, or none). Any other Host is refused, so a
# page on another site cannot reach the digest through a DNS name rebound to 127.0.0.1.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def host_allowed(host: str | None, port: int, public: Sequence[str] = ()) -> bool:
    """True when a request's `Host` header names this server: a local name, its port or none,
    or one of the `public` names (the host of `[server] public_url`, behind a proxy)."""
    if not host:
        return False
    name = host.strip().lower()
    return name in public or any(name in (local, f"{local}:{port}") for local in LOCAL_HOSTS)


def open_preview_app(settings: Settings, db: Path | None) -> App:
    """The app a preview needs, on the store opened read-only: a preview never creates or
    changes the database (StoreError naming it when there is none yet)."""
    store = Store.open(db or settings.resolve(settings.store.path), read_only=True)
    return build_app(settings, store=store)


def render_previews(app: App, out_dir: Path, profile: str | None = None) -> list[tuple[Path, int]]:
    """Write `out_dir/<profile>.html` and `.txt` (the email's two parts) for each profile;
    return (HTML path, paper count) pairs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for record, plan in _plans(app, app.settings.profile_records(profile)):
        path = out_dir / f"{record.name}.html"
        path.write_text(plan.rendered.html, encoding="utf-8")
        path.with_suffix(".txt").write_text(plan.rendered.text, encoding="utf-8")
        written.append((path, len(plan.digest.papers)))
    return written


def write_atom(app: App, path: Path, profile: str | None) -> tuple[str, int]:
    """Write one profile's Atom feed (`digest preview --atom`) to `path`, its links under
    `[server] public_url` (relative without one); return the profile's name and the entry
    count. `profile` may be None when the config has one profile only."""
    from digest.errors import ConfigError
    from digest.feed_entries import profile_feed

    records = app.settings.profile_records(profile)
    if len(records) != 1:
        raise ConfigError(
            f"{app.settings.path}: preview --atom writes one profile's feed and the config "
            f"has {len(records)}: pass --profile NAME"
        )
    built = profile_feed(app, records[0], app.settings.server.public_url)
    try:
        path.write_bytes(built.body)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the feed: {exc.strerror or exc}") from exc
    return records[0].name, built.entries


def _plans(app: App, profiles: Sequence[Profile]) -> list[tuple[Profile, Plan]]:
    """Each profile with its next digest, all planned in one pass."""
    plans = plan_digests(app, profiles)
    return [(profile, plans[profile.name]) for profile in profiles]
