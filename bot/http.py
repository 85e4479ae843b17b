"""HTTP plumbing shared by every route: JSON errors, never a stack trace in a response."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("ticketbot.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TRUNCATED = "the body ended before its declared length"


class BodyRefused(Exception):
    """A request body not read: larger than allowed, or ended before its declared length."""


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, at most `max_bytes` (else BodyRefused); it may come in pieces, and its
    sender may go away mid-body (the handler runs on as deployed: BodyRefused, not a 500)."""
    too_big = BodyRefused(f"the body is larger than {max_bytes} bytes")
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.read(max_bytes + 1):
            size += len(chunk)
            if size > max_bytes:
                raise too_big
            chunks.append(chunk)
    except ConnectionResetError:
        raise BodyRefused(TRUNCATED) from None
    return b"".join(chunks)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status)
    except ConnectionResetError:  # the client went away mid-request: nobody reads this answer
        log.info("client went away mid-request", extra={"path": request.path, "method": request.method})
        return web.json_response({"error": "the request ended early", "status": 400}, status=400)
    except Exception:  # a bug: log it with its trace, answer without one
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return web.json_response({"error": "internal error; see the server log"}, status=500)
