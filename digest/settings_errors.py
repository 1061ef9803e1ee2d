"""How a config problem is said: every pydantic validation error as `key.path: problem` on one
line, naming the file or the `DIGEST_…` environment variable it came from, with "did you
mean" for a misspelt key."""

from __future__ import annotations

import difflib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
URL_PATTERN = r"^https?://"
# A pattern a value failed, said in words (pydantic says "String should match pattern '^…'").
_PATTERN_WORDS = {
    NAME_PATTERN: "is not a usable name (letters, digits, '.', '_' and '-', starting with a "
    "letter or digit)",
    URL_PATTERN: "is not a web address (it must start with http:// or https://)",
}


def _env_lookup(name: str) -> tuple[str, str] | None:
    """(the variable as spelled, its value) for `name`, ignoring case as pydantic-settings does."""
    for key, value in os.environ.items():
        if key.upper() == name.upper():
            return key, value
    return None


def describe_env_error(exc: SettingsError) -> str:
    """A complex value in a `DIGEST_…` variable that is not JSON, naming the variable."""
    found = re.search(r'field "([^"]+)"', str(exc))
    variable = _env_lookup(f"DIGEST_{found.group(1)}") if found else None
    if variable is None:  # pragma: no cover - pydantic-settings names the field it read
        return f"environment: {exc}"
    cause = exc.__cause__
    problem = f"not valid JSON: {cause}" if isinstance(cause, json.JSONDecodeError) else str(exc)
    return f"environment variable {variable[0]}: {problem}"


def _env_variable(loc: tuple[Any, ...]) -> tuple[str, bool] | None:
    """(the `DIGEST_A__B` variable a problem at `loc` came from, whether it is that very key),
    when one is set."""
    keys = [str(item).upper() for item in loc if isinstance(item, str)]
    for end in range(len(keys), 0, -1):
        found = _env_lookup("DIGEST_" + "__".join(keys[:end]))
        if found is not None:
            return found[0], end == len(keys)
    return None


_MAX_PROBLEMS = 10  # shown in the one line; the rest are counted


def describe_validation_error(
    exc: ValidationError, data: dict[str, Any], path: Path, root: type[BaseModel]
) -> str:
    """Every validation problem as `key.path: problem`, in the words a user needs, on one line
    joined with "; ": the file's problems after its name, then those of environment
    variables after theirs. `root` is the model validated (for "did you mean")."""
    in_file: list[str] = []
    in_env: list[str] = []
    for error in _relevant(exc.errors()):
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            problem = f"unknown key{_did_you_mean(loc, root)}"
        elif error["type"] == "missing":
            problem = "required key is missing"
        elif error["type"] == "string_pattern_mismatch":
            words = _PATTERN_WORDS.get(str(error.get("ctx", {}).get("pattern")), "")
            problem = f"{error['input']!r} {words or 'has characters that are not allowed'}"
        else:
            problem = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        variable = _env_variable(loc)
        if variable is None:
            entry, into = f"{_format_loc(loc, data)}: {problem}", in_file
        elif variable[1]:
            entry, into = f"environment variable {variable[0]}: {problem}", in_env
        else:
            entry = f"environment variable {variable[0]}: {_format_loc(loc, data)}: {problem}"
            into = in_env
        if entry not in into:
            into.append(entry)
    parts = ([f"{path}: {in_file[0]}", *in_file[1:]] if in_file else []) + in_env
    shown = parts[:_MAX_PROBLEMS]
    hidden = len(parts) - len(shown)
    more = f" (and {hidden} more problem{'s' if hidden > 1 else ''})" if hidden else ""
    return "; ".join(shown) + more


def _relevant(errors: list[Any]) -> list[Any]:
    """The errors a user needs: of a `str | AuthorConfig` value, only the branch its type picks
    (a table gets the table's errors, such as an unknown key; anything else the string's)."""
    kept = []
    for error in errors:
        loc, value = tuple(error["loc"]), error["input"]
        if "str" in loc and isinstance(value, dict):
            continue
        if loc and loc[-1] == "AuthorConfig" and not isinstance(value, dict):
            continue
        kept.append(error)
    return kept


_UNION_BRANCHES = {"str", "AuthorConfig"}  # pydantic's names for union branches, not keys


def _format_loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`profiles[0].timezone`, with the profile's name when it has one: `profiles[0] ("me")`."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif item in _UNION_BRANCHES:
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


def _did_you_mean(loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    """` (did you mean 'smtp'?)` when an unknown key is close to a known one."""
    model: Any = root
    for item in loc[:-1]:
        if isinstance(item, int) or item in _UNION_BRANCHES or model is None:
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
