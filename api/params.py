"""Reading request input: JSON bodies and query parameters, with clear errors and size limits."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from api.context import context
from api.errors import ApiError


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body). Refuses oversize and malformed bodies."""
    limit = context(request).max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(f"request body is larger than {limit} bytes", 413)
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(f"request body is larger than {limit} bytes", 413)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError("request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ApiError(f"the JSON body must be an object, got {type(data).__name__}")
    return data


def int_value(name: str, raw: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(raw, bool):
        raise ApiError(f"'{name}' must be an integer, got a boolean")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ApiError(f"'{name}' must be an integer, got {str(raw)[:40]!r}") from None
    if minimum is not None and value < minimum:
        raise ApiError(f"'{name}' must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ApiError(f"'{name}' must be at most {maximum}, got {value}")
    return value


def query_int(
    request: web.Request, name: str, default: int | None = None, *, minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = request.query.get(name, "")
    if raw.strip() == "":
        return default
    return int_value(name, raw, minimum=minimum, maximum=maximum)


def int_list(name: str, raw: str) -> list[int]:
    """"1,2,3" -> [1, 2, 3]; empty -> []."""
    return [int_value(name, part) for part in raw.split(",") if part.strip()]


def path_int(request: web.Request, name: str) -> int:
    return int_value(name, request.match_info[name], minimum=1)
