"""Shared helpers of the config readers: YAML loading, located errors, typed key access.

Private to the config package. The readers never stop at the first problem: each getter reports
what is wrong with the value at its path and returns None, and the caller carries on.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

E = TypeVar("E", bound=Enum)

MISSING: Any = object()


class Problems:
    """The located errors of one file: `<file>: <path>: <what is wrong>`."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}")

    def __bool__(self) -> bool:
        return bool(self.errors)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def kind(value: Any) -> str:
    """A YAML-ish name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string '{shown}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggest(word: str, options: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a close match exists, else an empty string."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listing(items: Iterable[object], limit: int = 20) -> str:
    shown = [str(i) for i in items]
    if len(shown) > limit:
        return ", ".join(shown[:limit]) + f", ... ({len(shown)} in all)"
    return ", ".join(shown) if shown else "none"


# --- YAML -------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as ISO strings and records duplicate mapping keys."""

    duplicate_keys: list[tuple[int, str]]


# Dates and times stay strings ('2024-05-01'): fields and conditions work on ISO strings.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key; construct_mapping reports it
            continue
        if duplicate:
            loader.duplicate_keys.append((key_node.start_mark.line + 1, str(key)))
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True, slots=True)
class Document:
    data: Any
    digest: str  # sha256 hex of the file bytes


def read_yaml(path: Path, problems: Problems) -> Document | None:
    """Parse one YAML file; report unreadable files, syntax errors (with line) and duplicate keys."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        problems.add("", "file not found")
        return None
    except OSError as exc:
        problems.add("", f"cannot read the file: {exc.strerror or exc}")
        return None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add("", f"not UTF-8 text (byte {exc.start})")
        return None
    loader = _Loader(text)
    loader.duplicate_keys = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = exc.problem or exc.context or "malformed"
        if exc.problem and exc.context:
            started = f" started at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
            what += f" ({exc.context}{started})"
        problems.add("", f"{where}YAML syntax error: {what}")
        return None
    except yaml.YAMLError as exc:
        problems.add("", f"YAML error: {exc}")
        return None
    finally:
        loader.dispose()
    for line, key in loader.duplicate_keys:
        problems.add("", f"line {line}: duplicate key '{key}' (the later value would silently win)")
    return Document(data, digest)


# --- environment references -------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\}\Z", re.DOTALL)


def resolve_env(value: str, env: Mapping[str, str], problems: Problems, path: str) -> str | None:
    """`${NAME}` or `${NAME:-default}` reads an environment variable; other strings are literal."""
    if "${" not in value:
        return value
    m = _ENV_REF.fullmatch(value)
    if m is None:
        problems.add(
            path, "a secret is either a literal or exactly '${ENV_NAME}' (or '${ENV_NAME:-default}')"
        )
        return None
    name, default = m.group(1), m.group(2)
    got = env.get(name, "")
    if got:
        return got
    if default:
        return default
    problems.add(path, f"environment variable {name} is not set (referenced as '{value}')")
    return None


# --- durations --------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+)\s*([smhd])")
_DURATION = re.compile(r"\s*(?:\d+\s*[smhd]\s*)+\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, problems: Problems, path: str) -> int | None:
    """Seconds from an int or a string like '90', '30m', '2h', '1d', '1h30m'."""
    if isinstance(value, bool):
        problems.add(path, f"expected seconds or a duration like '30m', '2h', '1d', got {kind(value)}")
        return None
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str) and _DURATION.fullmatch(value.lower()):
        seconds = sum(int(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value.lower()))
    else:
        problems.add(path, f"expected seconds or a duration like '30m', '2h', '1d', got {kind(value)}")
        return None
    if seconds < 0:
        problems.add(path, f"a timer cannot be negative ({seconds})")
        return None
    return seconds


# --- typed access to one mapping --------------------------------------------------------------------


def freeze(m: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(m or {}))


class Node:
    """One YAML mapping at `path`. Reports unknown keys (with a suggestion) and missing required keys.

    Getters return the value, the default when the key is absent (or null), or None after reporting
    a wrong value.
    """

    def __init__(
        self,
        problems: Problems,
        path: str,
        data: Mapping[Any, Any],
        keys: Iterable[str],
        required: Iterable[str] = (),
    ) -> None:
        self.problems = problems
        self.path = path
        self.data = data
        allowed = tuple(keys)
        for key in data:
            if not isinstance(key, str):
                problems.add(path, f"keys must be strings, got {kind(key)}")
            elif key not in allowed:
                problems.add(
                    join(path, key),
                    f"unknown key{suggest(key, allowed)}; allowed keys: {', '.join(allowed)}",
                )
        for key in required:
            if data.get(key) is None:
                problems.add(join(path, key), "required key is missing")

    @staticmethod
    def of(
        problems: Problems,
        path: str,
        value: Any,
        keys: Iterable[str],
        required: Iterable[str] = (),
    ) -> Node | None:
        if not isinstance(value, dict):
            problems.add(path, f"expected a mapping, got {kind(value)}")
            return None
        return Node(problems, path, value, keys, required)

    def at(self, key: str | int) -> str:
        return join(self.path, key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def error(self, key: str | int | None, message: str) -> None:
        self.problems.add(self.path if key is None else self.at(key), message)

    def string(self, key: str, default: str = "", *, numbers: bool = False, nonempty: bool = False) -> str:
        """The stripped string at `key`; `default` when absent or wrong (wrong values are reported)."""
        value = self.data.get(key)
        if value is None:
            if nonempty and key in self.data:
                self.error(key, "must not be empty")
            return default
        if numbers and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.error(key, f"expected a string, got {kind(value)}")
            return default
        if nonempty and not value.strip():
            self.error(key, "must not be empty")
            return default
        return value.strip()

    def integer(self, key: str, default: int = 0, *, minimum: int | None = None) -> int:
        got = self.optional_int(key, minimum=minimum)
        return default if got is None else got

    def optional_int(self, key: str, *, minimum: int | None = None) -> int | None:
        """The integer at `key`, or None when absent or wrong (wrong values are reported)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"expected an integer, got {kind(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
            return None
        return int(value)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {kind(value)}")
            return default
        return value

    def seq(self, key: str) -> list[Any]:
        """The list at `key`; [] when absent or not a list (reported)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"expected a list, got {kind(value)}")
            return []
        return value

    def strings(self, key: str) -> list[str]:
        """The non-empty strings listed at `key` (others are reported and left out)."""
        out: list[str] = []
        for i, item in enumerate(self.seq(key)):
            if not isinstance(item, str) or not item.strip():
                self.problems.add(join(self.at(key), i), f"expected a non-empty string, got {kind(item)}")
            else:
                out.append(item.strip())
        return out

    def mapping(self, key: str) -> dict[Any, Any]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(key, f"expected a mapping, got {kind(value)}")
            return {}
        return value

    def child(self, key: str, keys: Iterable[str], required: Iterable[str] = ()) -> Node | None:
        return Node.of(self.problems, self.at(key), self.data.get(key), keys, required)

    def choice(self, key: str, table: Mapping[str, E], what: str, default: E) -> E:
        found = pick(self.problems, self.at(key), self.data.get(key), table, what, required=False)
        return default if found is None else found


def pick(
    problems: Problems,
    path: str,
    value: Any,
    table: Mapping[str, E],
    what: str,
    *,
    required: bool = True,
) -> E | None:
    """An enum member from its name in `table` (case-insensitive) or its loonflow integer id.

    None when absent (reported if `required`) or unknown (reported)."""
    if value is None:
        if required:
            problems.add(path, "required key is missing")
        return None
    names = ", ".join(table)
    if isinstance(value, str):
        found = table.get(value.strip().lower())
        if found is None:
            problems.add(path, f"unknown {what} '{value}'{suggest(value.lower(), table)}; known: {names}")
        return found
    if isinstance(value, int) and not isinstance(value, bool):
        for member in table.values():
            if member.value == value:
                return member
        ids = ", ".join(f"{m.value} ({n})" for n, m in table.items())
        problems.add(path, f"unknown {what} id {value}; known: {ids}")
        return None
    problems.add(path, f"expected a {what} name ({names}) or its id, got {kind(value)}")
    return None
