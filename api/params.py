"""Reading request input: JSON bodies and query parameters, with clear errors and size limits."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from api.context import context
from api.errors import ApiError


async def body_bytes(request: web.Request) -> bytes:
    """The raw request body, at most ApiContext.max_body_bytes (else a 413 ApiError).

    Uses `request.read()`, which aiohttp caches: the auth middleware hashes the body for the HMAC
    scheme and the handler parses the same bytes afterwards (reading `request.content` directly
    would find the stream already consumed).
    """
    limit = context(request).max_body_bytes
    too_large = ApiError(f"request body is larger than {limit} bytes", 413)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        raw = await request.read()  # bounded by the application's client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    except ConnectionResetError:  # the caller went away mid-body (the handler runs on, as deployed)
        raise ApiError("request body ended before its declared length") from None
    if len(raw) > limit:
        raise too_large
    return raw


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON (Python's parser takes them by default)."""
    raise ApiError(f"malformed JSON body: {name} is not a JSON number")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body). Refuses oversize and malformed bodies."""
    raw = await body_bytes(request)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiError("request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ApiError("malformed JSON body: nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ApiError(f"malformed JSON body: {str(exc).split(':')[0]}") from None
    if not isinstance(data, dict):
        raise ApiError(f"the JSON body must be an object, got {type(data).__name__}")
    _check_text(data)
    return data


_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: no "１" or "1_0"
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def _check_text(body: dict[str, Any]) -> None:
    """Refuse NUL characters (PostgreSQL stores none) and unpaired surrogates (not UTF-8) anywhere."""
    stack: list[tuple[str, Any]] = [(key, key) for key in body] + list(body.items())
    while stack:
        top, value = stack.pop()
        if isinstance(value, str):
            if _BAD_TEXT.search(value):
                raise ApiError(
                    f"'{_BAD_TEXT.sub('?', top)[:40]}' contains a NUL character (\\u0000) or an unpaired "
                    "surrogate (\\ud800-\\udfff): text must be valid Unicode without NUL"
                )
        elif isinstance(value, dict):
            stack.extend((top, k) for k in value)
            stack.extend((top, v) for v in value.values())
        elif isinstance(value, list):
            stack.extend((top, v) for v in value)


def int_value(name: str, raw: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(raw, bool):
        raise ApiError(f"'{name}' must be an integer, got a boolean")
    text = str(raw).strip()
    if not _INTEGER.fullmatch(text):
        raise ApiError(f"'{name}' must be an integer, got {text[:40]!r}")
    if len(text.lstrip("+-")) > 18:
        if maximum is not None and not text.startswith("-"):
            raise ApiError(f"'{name}' must be at most {maximum}, got {text[:40]}")
        raise ApiError(f"'{name}' is out of range")
    value = int(text)
    if minimum is not None and value < minimum:
        raise ApiError(f"'{name}' must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ApiError(f"'{name}' must be at most {maximum}, got {value}")
    return value


def query_int(
    request: web.Request,
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = request.query.get(name, "")
    if raw.strip() == "":
        return default
    return int_value(name, raw, minimum=minimum, maximum=maximum)


def int_list(name: str, raw: str) -> list[int]:
    """ "1,2,3" -> [1, 2, 3]; empty -> []."""
    return [int_value(name, part) for part in raw.split(",") if part.strip()]


def path_int(request: web.Request, name: str) -> int:
    return int_value(name, request.match_info[name], minimum=1)
