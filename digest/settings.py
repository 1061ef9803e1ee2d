"""Settings and profiles: one TOML file, validated by pydantic, overridable from the environment.

Environment variables override the file: `DIGEST_SMTP__PASSWORD`, `DIGEST_SMTP__HOST`, … (prefix
`DIGEST_`, `__` between nesting levels). The SMTP password can also come from `password_file`.
Every problem a user can cause becomes one `ConfigError` line naming the file, key and problem.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
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
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.errors import ConfigError
from digest.models import FollowedAuthor, Profile

CONFIG_ENV = "DIGEST_CONFIG"
_EMAIL = re.compile(r"^[^@\s<>,;]+@(?:localhost|[^@\s<>,;.]+(?:\.[^@\s<>,;.]+)+)$")


def _as_list(value: Any) -> Any:
    """Accept a single string where a list of strings is expected (`email = "me@x.org"`)."""
    return [value] if isinstance(value, str) else value


def _check_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError(f"invalid email address {value!r}")
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
        ) from None
    return value


def _check_unique(kind: str, names: list[str]) -> None:
    """ValueError naming the first name that occurs twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind} name {name!r} is used twice")
        seen.add(name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthorConfig(_Strict):
    """A followed author given as a table: `{ name = "…", aliases = ["…"] }`."""

    name: str = Field(min_length=1)
    aliases: list[str] = []


class ProfileConfig(_Strict):
    """One `[[profiles]]` table: who receives what, and when."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    email: Annotated[list[str], BeforeValidator(_as_list)] = []
    send_at: time = time(7, 30)
    timezone: str = "UTC"
    keywords: list[str] = []
    all_of: list[list[str]] = []
    exclude: list[str] = []
    authors: list[str | AuthorConfig] = []
    categories: list[str] = []
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    cadence: Literal["daily", "weekly"] = "daily"
    max_items: int = Field(default=50, ge=1, le=1000)
    send_empty: bool = False
    first_run_days: int = Field(default=2, ge=0)

    @field_validator("email")
    @classmethod
    def _emails_valid(cls, value: list[str]) -> list[str]:
        return [_check_email(v) for v in value]

    @field_validator("timezone")
    @classmethod
    def _timezone_valid(cls, value: str) -> str:
        return _check_timezone(value)

    def to_record(self) -> Profile:
        """The immutable record the matcher, renderer and scheduler work with."""
        authors = tuple(
            FollowedAuthor(a) if isinstance(a, str) else FollowedAuthor(a.name, tuple(a.aliases))
            for a in self.authors
        )
        return Profile(
            name=self.name,
            emails=tuple(self.email),
            keywords=tuple(self.keywords),
            all_of=tuple(tuple(group) for group in self.all_of),
            exclude=tuple(self.exclude),
            authors=authors,
            categories=tuple(self.categories),
            send_at=self.send_at,
            timezone=self.timezone,
            days=tuple(self.days),
            cadence=self.cadence,
            max_items=self.max_items,
            send_empty=self.send_empty,
            first_run_days=self.first_run_days,
        )


class SmtpConfig(_Strict):
    """How to reach the outgoing mail server. Only needed to send."""

    host: str = ""
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: str = ""
    password: SecretStr | None = None
    password_file: Path | None = None
    timeout: float = Field(default=30.0, gt=0)
    ca_file: Path | None = None
    verify: bool = True
    from_address: str = ""
    from_name: str = "digest"
    message_id_domain: str = ""

    @field_validator("from_address")
    @classmethod
    def _from_valid(cls, value: str) -> str:
        return _check_email(value) if value else value

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
    retry_backoff_seconds: float = Field(default=10.0, ge=0)


class StoreConfig(_Strict):
    """Where the SQLite database lives (relative paths are relative to the config file)."""

    path: Path = Path("digest.sqlite")


class FetchConfig(_Strict):
    """How often `digest run` fetches, and who to name in the User-Agent."""

    interval_minutes: int = Field(default=120, ge=5)
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
    pacing_seconds: float = Field(default=3.0, ge=0)

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
    pacing_seconds: float = Field(default=0.5, ge=0)


class FeedConfig(_Strict):
    """A `[[sources.feeds]]` entry: any RSS or Atom feed (journals, bioRxiv, blogs)."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    pacing_seconds: float = Field(default=1.0, ge=0)


class SourcesConfig(_Strict):
    """Every configured source, by kind."""

    arxiv: ArxivConfig | None = None
    hf_daily: HfDailyConfig | None = None
    feeds: list[FeedConfig] = []
    files: list[FilesSourceConfig] = []

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesConfig:
        # Names key the fetch state, so they may not repeat nor take a built-in source's name.
        builtin = ["arxiv", "arxiv-authors", "hf_daily"]
        _check_unique(
            "source", builtin + [f.name for f in self.feeds] + [f.name for f in self.files]
        )
        return self


class HttpConfig(_Strict):
    """`[http]`: timeouts and retries shared by every network source."""

    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    attempts: int = Field(default=4, ge=1, le=10)
    backoff_seconds: float = Field(default=2.0, ge=0)
    # Overall time for one request, first byte sent to last byte read (not retried when hit).
    deadline_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Most bytes read per response, on the wire and again once decompressed.
    max_response_mb: float = Field(default=50.0, gt=0, le=1024)


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
    profiles: list[ProfileConfig] = []

    _path: Path = PrivateAttr(default=Path("config.toml"))

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
        _check_unique("profile", [p.name for p in self.profiles])
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
        """The profiles as records; only `name` when given (unknown name: ConfigError)."""
        chosen = [p for p in self.profiles if name is None or p.name == name]
        if name is not None and not chosen:
            known = ", ".join(p.name for p in self.profiles) or "none"
            raise ConfigError(f"{self._path}: no profile named {name!r} (profiles: {known})")
        return tuple(p.to_record() for p in chosen)


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


def settings_from_dict(data: dict[str, Any], path: Path) -> Settings:
    """Validate parsed TOML (plus the environment) into Settings, or raise one ConfigError."""
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc, data)}") from None
    settings._path = path
    return settings


def describe_validation_error(exc: ValidationError, data: dict[str, Any]) -> str:
    """The first validation problem as `key.path: problem`, in the words a user needs."""
    error = exc.errors()[0]
    loc = tuple(error["loc"])
    key = _format_loc(loc, data)
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key{_did_you_mean(loc)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required key is missing"
    others = len(exc.errors()) - 1
    more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
    return f"{key}: {message}{more}"


def _format_loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`profiles[0].timezone`, with the profile's name when it has one: `profiles[0] ("me")`."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif item in {"str", "AuthorConfig"}:  # pydantic's union branch names, not keys
            continue
        else:
            parts.append(str(item))
        node = node[item] if isinstance(node, dict | list) and _has(node, item) else None
        if parts and isinstance(item, int) and isinstance(node, dict) and "name" in node:
            parts[-1] += f' ("{node["name"]}")'
    return ".".join(parts) or "(top level)"


def _has(node: dict[str, Any] | list[Any], item: Any) -> bool:
    if isinstance(node, dict):
        return item in node
    return isinstance(item, int) and 0 <= item < len(node)


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """` (did you mean 'smtp'?)` when an unknown key is close to a known one."""
    model: Any = Settings
    for item in loc[:-1]:
        if isinstance(item, int) or model is None:
            continue
        fields = getattr(model, "model_fields", {})
        model = _model_of(fields[item].annotation) if item in fields else None
    known = list(getattr(model, "model_fields", {})) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_of(annotation: Any) -> Any:
    """The BaseModel inside an annotation such as `list[ProfileConfig]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
