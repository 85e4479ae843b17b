"""Custom-field values: validation and coercion by loonflow field type, choices and defaults.

PLACEHOLDER INTERFACE: implemented by the fields work package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import CoreError
from core.org import Org
from core.workflow import CustomField


class FieldValueError(CoreError):
    """A value does not fit its field; the message names the field and what is wrong."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def coerce(field: CustomField, raw: Any, org: Org | None = None) -> Any:
    """Validate `raw` for `field` and return the canonical value stored on the ticket."""
    raise NotImplementedError


def coerce_all(
    defs: Mapping[str, CustomField], raw: Mapping[str, Any], org: Org | None = None
) -> dict[str, Any]:
    raise NotImplementedError
