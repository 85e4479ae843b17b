"""Safe condition expressions for transitions: parsed once at load time, never eval'ed.

PLACEHOLDER INTERFACE: implemented by the conditions work package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import CoreError


class ConditionError(CoreError):
    """An expression is malformed, uses a construct outside the whitelist, or names an unknown field."""


@dataclass(frozen=True, slots=True)
class Expression:
    source: str
    names: frozenset[str]
    tree: Any  # the validated parse tree; opaque to callers


def compile_expression(source: str, known_names: frozenset[str]) -> Expression:
    raise NotImplementedError


def evaluate(expression: Expression, values: Mapping[str, Any]) -> bool:
    raise NotImplementedError
