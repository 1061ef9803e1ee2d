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
from collections.abc import Callable
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
        entry, from_env = _placed(tuple(error["loc"]), data, _problem(error, root))
        into = in_env if from_env else in_file
        if entry not in into:
            into.append(entry)
    return _one_line(path, in_file, in_env)


def _unknown_key(error: Any, root: type[BaseModel]) -> str:
    """An unknown key, with the known key it may be a misspelling of."""
    return f"unknown key{_did_you_mean(tuple(error['loc']), root)}"


def _missing_key(error: Any, root: type[BaseModel]) -> str:
    """A required key that is not there."""
    return "required key is missing"


def _pattern_mismatch(error: Any, root: type[BaseModel]) -> str:
    """A value that fails a pattern, with the pattern said in words."""
    words = _PATTERN_WORDS.get(str(error.get("ctx", {}).get("pattern")), "")
    return f"{error['input']!r} {words or 'has characters that are not allowed'}"


def _message(error: Any, root: type[BaseModel]) -> str:
    """Any other problem: pydantic's message on one line, without its "Value error, "."""
    return " ".join(str(error["msg"]).removeprefix("Value error, ").split())


# A pydantic error type -> how its problem is said (else `_message`).
_PROBLEMS: dict[str, Callable[[Any, type[BaseModel]], str]] = {
    "extra_forbidden": _unknown_key,
    "missing": _missing_key,
    "string_pattern_mismatch": _pattern_mismatch,
}


def _problem(error: Any, root: type[BaseModel]) -> str:
    """One validation error's problem, in the words a user needs."""
    return _PROBLEMS.get(error["type"], _message)(error, root)


def _placed(loc: tuple[Any, ...], data: dict[str, Any], problem: str) -> tuple[str, bool]:
    """(the problem after where it is, whether it came from an environment variable): the
    key path in the file, the variable, or the variable and the key path inside its value."""
    variable = _env_variable(loc)
    if variable is None:
        return f"{_format_loc(loc, data)}: {problem}", False
    name, whole = variable
    if whole:
        return f"environment variable {name}: {problem}", True
    return f"environment variable {name}: {_format_loc(loc, data)}: {problem}", True


def _one_line(path: Path, in_file: list[str], in_env: list[str]) -> str:
    """The problems joined with "; ", the file's after its name, at most _MAX_PROBLEMS of them
    and a count of the rest."""
    parts = ([f"{path}: {in_file[0]}", *in_file[1:]] if in_file else []) + in_env
    shown = parts[:_MAX_PROBLEMS]
    hidden = len(parts) - len(shown)
    more = f" (and {hidden} more problem{'s' if hidden > 1 else ''})" if hidden else ""
    return "; ".join(shown) + more


def _relevant(errors: list[Any]) -> list[Any]:
    """The errors a user needs: of a `str | AuthorConfig` value, only the branch its type picks
    (a table gets the table's errors, such as an unknown key; anything else the string's)."""
    return [error for error in errors if not _other_branch(error)]


def _other_branch(error: Any) -> bool:
    """An error of the union branch the value's type does not pick."""
    loc, is_table = tuple(error["loc"]), isinstance(error["input"], dict)
    if is_table:
        return "str" in loc
    return bool(loc) and loc[-1] == "AuthorConfig"


_UNION_BRANCHES = {"str", "AuthorConfig"}  # pydantic's names for union branches, not keys


def _format_loc(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`profiles[0].timezone`, with the profile's name when it has one: `profiles[0] ("me")`."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if item in _UNION_BRANCHES:
            continue
        node = _child(node, item)
        if isinstance(item, int):
            parts[-1] += f"[{item}]{_name_label(node)}"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _child(node: Any, item: Any) -> Any:
    """The value at key or index `item` of `node`, None when there is none."""
    return node[item] if isinstance(node, dict | list) and _has(node, item) else None


def _name_label(node: Any) -> str:
    """` ("me")` for a table with a name (a profile), else nothing."""
    return f' ("{node["name"]}")' if isinstance(node, dict) and "name" in node else ""


def _has(node: dict[str, Any] | list[Any], item: Any) -> bool:
    if isinstance(node, dict):
        return item in node
    return isinstance(item, int) and 0 <= item < len(node)


def _did_you_mean(loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    """` (did you mean 'smtp'?)` when an unknown key is close to a known one."""
    known = list(getattr(_model_at(loc[:-1], root), "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(keys: tuple[Any, ...], root: type[BaseModel]) -> Any:
    """The model of the table at `keys` below `root` (indexes and union branches skipped),
    None when a key is not one of a model's fields."""
    model: Any = root
    for item in keys:
        if isinstance(item, int) or item in _UNION_BRANCHES:
            continue
        fields = getattr(model, "model_fields", {})
        if item not in fields:
            return None
        model = _model_of(fields[item].annotation)
        if model is None:
            return None
    return model


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
