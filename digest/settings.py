"""Settings and profiles: one TOML file, validated by pydantic, overridable from the environment.

Environment variables override the file: `DIGEST_SMTP__PASSWORD`, `DIGEST_SMTP__HOST`, … (prefix
`DIGEST_`, `__` between nesting levels). The SMTP password can also come from `password_file`,
the link-signing secret (`DIGEST_SERVER__SECRET`) from `[server] secret_file`.
Every problem a user can cause becomes one `ConfigError` line naming the file, key and problem.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from digest.errors import ConfigError
from digest.ids import normalise_openalex, normalise_orcid, normalise_watched
from digest.models import Cadence, FollowedAuthor, NotifyTarget, Profile, Weekday
from digest.settings_errors import (
    NAME_PATTERN,
    URL_PATTERN,
    describe_env_error,
    describe_validation_error,
)
from digest.settings_values import (
    as_list,
    check_email,
    check_public_url,
    check_timezone,
    check_unique,
    clock_time,
    no_inline_url,
    single_line,
)

CONFIG_ENV = "DIGEST_CONFIG"


SingleLine = Annotated[str, AfterValidator(single_line)]


class _Strict(BaseModel):
    # No NaN or infinity: every number has finite bounds.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class AuthorConfig(_Strict):
    """A followed author given as a table: `{ name = "…", aliases = ["…"], openalex = "A…",
    orcid = "…" }` (ids in their URL forms are accepted and normalised)."""

    name: str = Field(min_length=1)
    aliases: list[str] = []
    openalex: str = ""
    orcid: str = ""

    @field_validator("openalex")
    @classmethod
    def _openalex_valid(cls, value: str) -> str:
        return normalise_openalex(value) if value.strip() else ""

    @field_validator("orcid")
    @classmethod
    def _orcid_valid(cls, value: str) -> str:
        return normalise_orcid(value) if value.strip() else ""

    def to_record(self) -> FollowedAuthor:
        """The matcher's record of this author."""
        return FollowedAuthor(self.name, tuple(self.aliases), self.openalex, self.orcid)


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
NOTIFY_PREFIX = "notify:"  # a chat or push target's outbox address: `notify:` and its name


class NotifyConfig(_Strict):
    """One `notify` target of a profile: an apprise URL (`mmost://…`, `ntfy://…`) read from an
    environment variable (`env`) or a file (`file`), never from the config itself (URLs hold
    tokens). `name` labels it in the outbox and history; default: the variable's name or the
    file's stem."""

    env: str = Field(default="", pattern=_ENV_NAME)
    file: Path | None = None
    name: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> NotifyConfig:
        if bool(self.env) == (self.file is not None):
            raise ValueError("give exactly one of `env` (a variable) or `file` for the URL")
        if not re.fullmatch(NAME_PATTERN, self.label_name):
            raise ValueError(f"{self.label_name!r} is not a usable name: give the target a `name`")
        return self

    @property
    def label_name(self) -> str:
        """The target's name: `name`, else the variable's name, else the file's stem."""
        return self.name or self.env or (self.file.stem if self.file else "")

    def to_record(self, base_dir: Path | None) -> NotifyTarget:
        """The record: the label and where the URL is (a relative file from `base_dir`)."""
        file = _library_path(str(self.file), base_dir) if self.file is not None else None
        return NotifyTarget(NOTIFY_PREFIX + self.label_name, self.env, file)


class ProfileConfig(_Strict):
    """One `[[profiles]]` table: who receives what, and when."""

    name: str = Field(min_length=1, pattern=NAME_PATTERN)
    email: Annotated[list[str], BeforeValidator(as_list)] = []
    notify: Annotated[list[NotifyConfig], BeforeValidator(no_inline_url)] = Field(
        default=[], max_length=10
    )
    send_at: Annotated[time, BeforeValidator(clock_time)] = time(7, 30)
    timezone: str = "UTC"
    keywords: list[str] = []
    all_of: list[list[str]] = []
    exclude: list[str] = []
    authors: list[str | AuthorConfig] = []
    categories: list[str] = []
    days: list[Weekday] = []
    cadence: Cadence = "daily"
    max_items: int = Field(default=50, ge=1, le=1000)
    send_empty: bool = False
    first_run_days: int = Field(default=2, ge=0, le=365)
    window_days: int = Field(default=3, ge=1, le=365)
    mute_authors: list[str] = []
    orcid: str = ""
    cites: list[str] = Field(default=[], max_length=500)
    cites_my_works: bool = False

    @field_validator("orcid")
    @classmethod
    def _orcid_valid(cls, value: str) -> str:
        return normalise_orcid(value) if value.strip() else ""

    @field_validator("cites")
    @classmethod
    def _cites_valid(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_watched(v) for v in value))

    @model_validator(mode="after")
    def _my_works_need_orcid(self) -> ProfileConfig:
        if self.cites_my_works and not self.orcid:
            raise ValueError("cites_my_works = true needs the profile's own `orcid`")
        return self

    # Suggestions (DESIGN.md): the reader's library files, and how many a digest may hold at
    # most (default 5 with a library; 0 turns them off).
    library: Annotated[list[str], BeforeValidator(as_list)] = []
    suggestions: int | None = Field(default=None, ge=0, le=50)

    @field_validator("email")
    @classmethod
    def _emails_valid(cls, value: list[str]) -> list[str]:
        return [check_email(v) for v in value]

    @field_validator("notify")
    @classmethod
    def _notify_names_unique(cls, value: list[NotifyConfig]) -> list[NotifyConfig]:
        check_unique("notify target", [n.label_name for n in value])
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_valid(cls, value: str) -> str:
        return check_timezone(value)

    def to_record(self, base_dir: Path | None = None) -> Profile:
        """The immutable record the matcher, renderer and scheduler work with; relative
        `library` paths are taken from `base_dir` (the config file's directory).

        Every field of `Profile` is read from the field of the same name here, lists made
        tuples; `_RECORD_FIELDS` names the few that are spelled or derived differently.
        """
        return Profile(
            **{
                field.name: _RECORD_FIELDS.get(field.name, _same_field(field.name))(self, base_dir)
                for field in dataclass_fields(Profile)
            }
        )


def _frozen(value: Any) -> Any:
    """A validated value as a record holds it: lists (of lists) become tuples."""
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def _same_field(name: str) -> Callable[[ProfileConfig, Path | None], Any]:
    """The reader of a record field kept under the same name in the config."""
    return lambda config, _base_dir: _frozen(getattr(config, name))


def _author_records(config: ProfileConfig, _base_dir: Path | None) -> tuple[FollowedAuthor, ...]:
    """`authors`: a bare name or a table, each as the matcher's record."""
    return tuple(FollowedAuthor(a) if isinstance(a, str) else a.to_record() for a in config.authors)


def _suggestion_count(config: ProfileConfig, _base_dir: Path | None) -> int:
    """`suggestions`: 5 by default with a library, none without one."""
    if config.suggestions is not None:
        return config.suggestions
    return 5 if config.library else 0


# The record fields not copied from a config field of the same name, and how each is made.
_RECORD_FIELDS: dict[str, Callable[[ProfileConfig, Path | None], Any]] = {
    "emails": lambda config, _base_dir: tuple(config.email),
    "notify": lambda config, base_dir: tuple(n.to_record(base_dir) for n in config.notify),
    "authors": _author_records,
    "library": lambda config, base_dir: tuple(_library_path(p, base_dir) for p in config.library),
    "suggestions": _suggestion_count,
}


def _library_path(value: str, base_dir: Path | None) -> Path:
    """A library file: `~` expanded, relative to `base_dir` when given."""
    path = Path(value).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


class SmtpConfig(_Strict):
    """How to reach the outgoing mail server. Only needed to send."""

    host: SingleLine = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: SingleLine = ""
    password: SecretStr | None = None
    password_file: Path | None = None
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Each message's session time ends by then (connect to QUIT, or its turn on a session a
    # run's messages share), however the server trickles its replies.
    deadline_seconds: float = Field(default=120.0, ge=1, le=3600)
    ca_file: Path | None = None
    verify: bool = True
    from_address: str = ""
    from_name: SingleLine = "digest"
    message_id_domain: SingleLine = ""

    @field_validator("from_address")
    @classmethod
    def _from_valid(cls, value: str) -> str:
        return check_email(value) if value else value

    @property
    def effective_port(self) -> int:
        """The configured port, or the standard one for the security mode."""
        return self.port or {"ssl": 465, "starttls": 587, "none": 25}[self.security]

    def secret(self) -> str | None:
        """The password from `password` or `password_file`; never logged."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                return self.password_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"smtp.password_file: cannot read {self.password_file}: {exc.strerror}"
                ) from None
        return None


class DeliveryConfig(_Strict):
    """Where digests go: an SMTP server, or a local Maildir (for trying things out)."""

    method: Literal["smtp", "maildir"] = "smtp"
    maildir: Path = Path("out/maildir")
    attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=10.0, ge=0, le=3600)
    # How long a digest not yet accepted for every recipient is retried (same Message-ID).
    retry_hours: int = Field(default=72, ge=1, le=720)


class StoreConfig(_Strict):
    """Where the SQLite database lives (relative paths are relative to the config file)."""

    path: Path = Path("digest.sqlite")


class FetchConfig(_Strict):
    """How often `digest run` fetches, and who to name in the User-Agent."""

    interval_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60)
    contact: str = ""


class FilesSourceConfig(_Strict):
    """A `[[sources.files]]` entry: listing JSONL files matched by a glob pattern."""

    name: str = "files"
    path: str = Field(min_length=1)


class ArxivConfig(_Strict):
    """`[sources.arxiv]`: announcement feeds per category, and API queries for followed authors."""

    categories: list[str] = []
    include_cross: bool = True
    follow_authors: bool = True
    author_days: int = Field(default=14, ge=1, le=365)
    max_results: int = Field(default=100, ge=1, le=2000)
    listing_url: str = "https://rss.arxiv.org/rss/"
    api_url: str = "https://export.arxiv.org/api/query"
    # arXiv's terms: one request at a time, at least 3 seconds apart (API and feeds together).
    pacing_seconds: float = Field(default=3.0, ge=0, le=60)

    @field_validator("categories")
    @classmethod
    def _categories_valid(cls, value: list[str]) -> list[str]:
        for category in value:
            if not re.fullmatch(r"[a-z-]+(\.[A-Za-z-]+)?", category):
                raise ValueError(f"not an arXiv category: {category!r} (e.g. 'cs.LG')")
        return value


class HfDailyConfig(_Strict):
    """`[sources.hf_daily]`: Hugging Face Daily Papers, caught up over missed dates."""

    base_url: str = "https://huggingface.co"
    catch_up_days: int = Field(default=7, ge=1, le=60)
    page_size: int = Field(default=50, ge=1, le=100)
    # Pages read per date at most; the server's short page normally ends a date long before.
    max_pages: int = Field(default=100, ge=1, le=1000)
    pacing_seconds: float = Field(default=0.5, ge=0, le=60)


class OpenAlexConfig(_Strict):
    """`[sources.openalex]`: new works of followed authors with ids, works citing watched
    papers, and lookups confirming name-only author matches.

    The API key comes from `api_key` (best: the environment, DIGEST_SOURCES__OPENALEX__API_KEY)
    or `api_key_file`; it is never printed or logged. Without one, `[fetch] contact` is sent as
    `mailto` (the polite pool), on OpenAlex's much smaller keyless allowance.
    """

    enabled: bool = True
    base_url: str = Field(default="https://api.openalex.org", pattern=URL_PATTERN)
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    per_page: int = Field(default=100, ge=1, le=200)
    # Pages read per query at most (cursor paging); the last page normally ends it first.
    max_pages: int = Field(default=10, ge=1, le=1000)
    # OpenAlex dates works by publication, not by when it learnt of them: every fetch reaches
    # back this far, so a work added late or dated in the past is still found.
    lookback_days: int = Field(default=14, ge=1, le=365)
    # List requests (each one is paid from OpenAlex's daily allowance) per UTC day, at most.
    daily_budget: int = Field(default=1000, ge=1, le=1_000_000)
    pacing_seconds: float = Field(default=0.2, ge=0, le=60)
    # The whole source (every query, lookup, page, pacing and Retry-After wait) ends within
    # this; what was read by then is kept, with a warning (without it, a server's long
    # Retry-After on every try could hold one query for many minutes).
    deadline_seconds: float = Field(default=600, ge=10, le=86_400)

    def secret(self) -> str | None:
        """The API key from `api_key` or `api_key_file`; never logged."""
        if self.api_key is not None:
            return self.api_key.get_secret_value().strip() or None
        if self.api_key_file is not None:
            try:
                return self.api_key_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigError(
                    f"sources.openalex.api_key_file: cannot read {self.api_key_file}: "
                    f"{exc.strerror}"
                ) from None
        return None


class FeedConfig(_Strict):
    """A `[[sources.feeds]]` entry: any RSS or Atom feed (journals, bioRxiv, blogs)."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=URL_PATTERN)
    pacing_seconds: float = Field(default=1.0, ge=0, le=60)


class SourcesConfig(_Strict):
    """Every configured source, by kind."""

    arxiv: ArxivConfig | None = None
    hf_daily: HfDailyConfig | None = None
    openalex: OpenAlexConfig | None = None
    feeds: list[FeedConfig] = []
    files: list[FilesSourceConfig] = []

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesConfig:
        # Names key the fetch state, so they may not repeat nor take a built-in source's name.
        builtin = ["arxiv", "arxiv-authors", "hf_daily", "openalex"]
        check_unique(
            "source", builtin + [f.name for f in self.feeds] + [f.name for f in self.files]
        )
        return self

    @property
    def openalex_on(self) -> OpenAlexConfig | None:
        """The OpenAlex settings when the source is configured and enabled."""
        return self.openalex if self.openalex is not None and self.openalex.enabled else None


class HttpConfig(_Strict):
    """`[http]`: timeouts and retries shared by every network source."""

    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    read_timeout: float = Field(default=30.0, gt=0, le=300)
    attempts: int = Field(default=4, ge=1, le=10)
    backoff_seconds: float = Field(default=2.0, ge=0, le=300)
    # Overall time for one request, first byte sent to last byte read (not retried when hit).
    deadline_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Most bytes read per response, on the wire and again once decompressed.
    max_response_mb: float = Field(default=50.0, gt=0, le=1024)


class ServerConfig(_Strict):
    """`[server]`: `digest serve`, and the signed feedback links in the email that point at it."""

    # Where readers reach `digest serve` (behind a reverse proxy); no links in the email without.
    public_url: Annotated[str, Field(max_length=500), AfterValidator(check_public_url)] = ""
    secret: SecretStr | None = None
    secret_file: Path | None = None
    # How long a feedback link in an email stays valid.
    link_days: int = Field(default=30, ge=1, le=365)
    # How long `digest serve` waits for a form body to arrive in full (a client dripping one
    # byte a second would hold its connection open for as long as it likes otherwise).
    body_seconds: float = Field(default=10.0, gt=0, le=120)
    # A profile's Atom feed lists the papers delivered in the last `feed_days`, at most
    # `feed_entries` of them (newest first).
    feed_days: int = Field(default=30, ge=1, le=365)
    feed_entries: int = Field(default=500, ge=1, le=5000)

    def configured_secret(self) -> str | None:
        """The signing secret from `secret` or `secret_file`, None when neither is set; never
        logged."""
        if self.secret is not None:
            value = self.secret.get_secret_value()
        elif self.secret_file is not None:
            try:
                value = self.secret_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"server.secret_file: cannot read {self.secret_file}: {exc.strerror}"
                ) from None
        else:
            return None
        if len(value) < 16:
            raise ConfigError("server.secret: too short to sign links (at least 16 characters)")
        return value


class Settings(BaseSettings):
    """The whole configuration file, after environment overrides."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    store: StoreConfig = StoreConfig()
    fetch: FetchConfig = FetchConfig()
    http: HttpConfig = HttpConfig()
    smtp: SmtpConfig = SmtpConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    sources: SourcesConfig = SourcesConfig()
    server: ServerConfig = ServerConfig()
    profiles: list[ProfileConfig] = []

    _path: Path = PrivateAttr(default=Path("config.toml"))
    # The profiles as records, made once per loaded file (see `profile_records`).
    _records: tuple[Path, tuple[Profile, ...]] | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file (passed in as init values).
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_profile_names(self) -> Settings:
        check_unique("profile", [p.name for p in self.profiles])
        return self

    @property
    def path(self) -> Path:
        """The configuration file these settings were read from."""
        return self._path

    def resolve(self, path: Path | str) -> Path:
        """A path from the config, relative to the config file's directory."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self._path.parent / path

    def profile_records(self, name: str | None = None) -> tuple[Profile, ...]:
        """The profiles as records; only `name` when given (unknown name: ConfigError).

        The records are made once for these settings and the same objects are returned on
        every call, so a memo keyed by them (`VerdictMemo`) sees one profile as one object.
        """
        records = self._all_records()
        if name is None:
            return records
        chosen = tuple(r for r in records if r.name == name)
        if not chosen:
            known = ", ".join(p.name for p in self.profiles) or "none"
            raise ConfigError(f"{self._path}: no profile named {name!r} (profiles: {known})")
        return chosen

    def _all_records(self) -> tuple[Profile, ...]:
        """Every profile's record, made on first use for the file these settings came from."""
        if self._records is None or self._records[0] != self._path:
            made = tuple(p.to_record(self._path.parent) for p in self.profiles)
            self._records = (self._path, made)
        return self._records[1]


def default_config_path() -> Path:
    """`$DIGEST_CONFIG`, else ./config.toml, else the user config dir."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    local = Path("config.toml")
    if local.exists():
        return local
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "digest" / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    """Read, validate and return the settings from `path` (default: `default_config_path()`)."""
    path = path or default_config_path()
    data = read_toml(path)
    return settings_from_dict(data, path)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; syntax errors become one line with the line and column."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (copy config.example.toml there, or pass --config)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: TOML nested too deeply to read") from None


def settings_from_dict(data: dict[str, Any], path: Path) -> Settings:
    """Validate parsed TOML (plus the environment) into Settings, or raise one ConfigError.

    A problem in a value that came from the environment names the variable, not the file.
    """
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, data, path, Settings)) from None
    except SettingsError as exc:  # a complex value in the environment that is not JSON
        raise ConfigError(describe_env_error(exc)) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to validate") from None
    settings._path = path
    return settings
