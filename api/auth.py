"""Who is calling the /api/v1.0 dialect: loonflow's md5 signature, or the stronger HMAC scheme.

Every request names an API app (config/apps.yaml) and the user it acts for. Two schemes:

1. loonflow's own (compatible with every loonflow client)
   Headers ``appname``, ``timestamp`` (epoch seconds, 10 digits), ``signature`` and ``username``::

       signature = lowercase hex md5(timestamp + app_token)

   Worked example (app ``demo``, token ``demo-token``, at 2026-01-05 09:00:00 UTC)::

       import hashlib, time
       timestamp = str(int(time.time()))                       # "1767603600"
       signature = hashlib.md5((timestamp + "demo-token").encode()).hexdigest()
       # -> "47e00ef6ea0c6e89cc9f1fed5e6e2110"
       headers = {"appname": "demo", "timestamp": timestamp, "signature": signature,
                  "username": "admin"}

   Weak by design: it can be replayed within the window and does not cover the method, path,
   body or username. An app with ``strong_auth: true`` refuses it.

2. HMAC-SHA256 (ticketbot's, optional; used whenever ``x-ticketbot-signature`` is present)
   Headers ``appname``, ``timestamp``, ``nonce`` (8 to 64 characters of ``A-Z a-z 0-9 _ -``,
   fresh for every request), ``username`` and ``x-ticketbot-signature``: the lowercase hex
   HMAC-SHA256, keyed with the app's ``hmac_secret`` (its token when none is set), of the UTF-8
   canonical string of six lines joined by ``"\\n"``::

       METHOD            upper case, e.g. POST
       PATH_QS           the request target exactly as sent: path and raw query string, e.g.
                         /api/v1.0/tickets?category=duty (no scheme or host; percent-encoding as sent)
       TIMESTAMP         the timestamp header
       NONCE             the nonce header
       USERNAME          the username header
       BODY_SHA256       lowercase hex sha256 of the raw body (of b"" when there is none)

   Worked example (same app and time; secret ``demo-token``)::

       import hashlib, hmac, secrets, time
       body = b'{"workflow_id": 1, "transition_id": 151}'
       timestamp, nonce = str(int(time.time())), secrets.token_hex(8)   # "1767603600", "3f2a9c1e7b6d4a50"
       canonical = "\\n".join(["POST", "/api/v1.0/tickets", timestamp, nonce, "admin",
                              hashlib.sha256(body).hexdigest()])
       signature = hmac.new(b"demo-token", canonical.encode(), hashlib.sha256).hexdigest()
       # -> "cc177f0a362968d77c9c056bd79553cc4e7e5f9d8991a3ee77bed05efebeda6d"
       headers = {"appname": "demo", "timestamp": timestamp, "nonce": nonce, "username": "admin",
                  "x-ticketbot-signature": signature, "content-type": "application/json"}

   A nonce is accepted once per app within the window (ApiContext.nonces), so a captured request
   can't be replayed, and a changed method, path, query, body or username breaks the signature.

Both schemes accept a timestamp within +-ApiContext.auth_window_seconds (120) of the server clock.
Signatures are compared in constant time. A refusal is HTTP 401 (403 for an unknown or inactive
user) in strict-status mode, always ``{"code": -1, "msg": "permission check fail: <why>"}``
(loonflow's failure text starts the same way). The message says exactly what is wrong, and never
contains the token, the secret or a signature; refusals are logged at INFO with the app and the
reason only. On success the request carries `api.context.Caller` under `api.context.CALLER`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web

from api.context import CALLER, ApiContext, Caller, context
from api.errors import ApiError
from api.params import body_bytes
from config.apps import ApiApp

log = logging.getLogger("ticketbot.api.auth")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

APPNAME = "appname"
TIMESTAMP = "timestamp"
SIGNATURE = "signature"
USERNAME = "username"
NONCE = "nonce"
HMAC_SIGNATURE = "x-ticketbot-signature"

MD5_HEADERS = (APPNAME, TIMESTAMP, SIGNATURE, USERNAME)
HMAC_HEADERS = (APPNAME, TIMESTAMP, NONCE, USERNAME, HMAC_SIGNATURE)
FAIL_PREFIX = "permission check fail: "

_DIGITS_RE = re.compile(r"[0-9]{1,20}\Z")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}\Z")
_SHOW = 64  # at most this many characters of a client-supplied value in a message


def _show(value: str) -> str:
    text = value if len(value) <= _SHOW else value[: _SHOW - 3] + "..."
    return "'" + "".join(ch if ch.isprintable() else "?" for ch in text) + "'"


def _refuse(app: str, reason: str, status: int = 401) -> ApiError:
    log.info("api auth refused", extra={"app": app[:_SHOW], "why": reason})
    return ApiError(FAIL_PREFIX + reason, status)


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace"))


def md5_signature(timestamp: str, token: str) -> str:
    """loonflow's signature: lowercase hex md5(timestamp + token)."""
    return hashlib.md5((timestamp + token).encode()).hexdigest()  # noqa: S324 - loonflow's scheme


def canonical_request(
    method: str, path_qs: str, timestamp: str, nonce: str, username: str, body: bytes
) -> str:
    """The string the HMAC scheme signs (see the module docstring)."""
    return "\n".join((method.upper(), path_qs, timestamp, nonce, username, hashlib.sha256(body).hexdigest()))


def hmac_signature(secret: str, canonical: str) -> str:
    return hmac.new(secret.encode(), canonical.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def _missing(headers: dict[str, str], required: tuple[str, ...]) -> list[str]:
    return [name for name in required if not headers.get(name)]


def _check_timestamp(ctx: ApiContext, app: str, raw: str) -> None:
    if not _DIGITS_RE.match(raw):
        raise _refuse(app, f"timestamp must be an integer (epoch seconds), got {_show(raw)}")
    if len(raw) >= 13:
        raise _refuse(app, f"timestamp {raw} looks like milliseconds; send epoch seconds (10 digits)")
    window = ctx.auth_window_seconds
    skew = int(raw) - int(ctx.clock.now().timestamp())
    if abs(skew) > window:
        where = "ahead of" if skew > 0 else "behind"
        raise _refuse(
            app,
            f"timestamp {raw} is {abs(skew)} seconds {where} the server clock "
            f"(allowed window: +-{window} seconds)",
        )


async def authenticate(request: web.Request) -> Caller:
    """The caller of `request`, or an ApiError saying why not (see the module docstring)."""
    ctx = context(request)
    headers = {
        name: request.headers.get(name, "").strip()
        for name in (APPNAME, TIMESTAMP, SIGNATURE, USERNAME, NONCE, HMAC_SIGNATURE)
    }
    app_name = headers[APPNAME]
    strong = bool(headers[HMAC_SIGNATURE])
    missing = _missing(headers, HMAC_HEADERS if strong else MD5_HEADERS)
    if missing:
        hint = "" if strong else f" (or {NONCE} and {HMAC_SIGNATURE} for the HMAC scheme)"
        raise _refuse(app_name, f"missing header(s): {', '.join(missing)}{hint}")
    app = ctx.apps.get(app_name)
    if app is None:
        raise _refuse(app_name, f"unknown app {_show(app_name)}")
    if not strong and app.strong_auth:
        raise _refuse(
            app_name,
            f"app {_show(app_name)} requires the HMAC scheme (headers {NONCE} and {HMAC_SIGNATURE}); "
            "the md5 signature is not accepted for it",
        )
    timestamp = headers[TIMESTAMP]
    _check_timestamp(ctx, app_name, timestamp)
    username = headers[USERNAME]
    if strong:
        await _check_hmac(request, app, headers)
    elif not _same(md5_signature(timestamp, app.token), headers[SIGNATURE]):
        raise _refuse(app_name, f"signature check failed for app {_show(app_name)}")
    org = await ctx.directory.org()
    if not org.active(username):
        raise _refuse(app_name, f"no active user {_show(username)}", 403)
    if strong:
        # keep the nonce as long as its timestamp stays acceptable: a request stamped ahead of the
        # server clock is accepted until timestamp + window, so it must not be replayable before then
        stamped = datetime.fromtimestamp(int(headers[TIMESTAMP]), UTC)
        expires_at = max(ctx.clock.now(), stamped) + timedelta(seconds=ctx.auth_window_seconds + 1)
        if not await ctx.nonces.add(app.name, headers[NONCE], expires_at):
            raise _refuse(app_name, "nonce already used (send a fresh nonce with every request)")
    return Caller(app, username)


async def _check_hmac(request: web.Request, app: ApiApp, headers: dict[str, str]) -> None:
    nonce = headers[NONCE]
    if not _NONCE_RE.match(nonce):
        raise _refuse(app.name, f"{NONCE} must be 8 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    body = await body_bytes(request)
    canonical = canonical_request(
        request.method, request.raw_path, headers[TIMESTAMP], nonce, headers[USERNAME], body
    )
    if not _same(hmac_signature(app.hmac_secret or app.token, canonical), headers[HMAC_SIGNATURE]):
        raise _refuse(
            app.name,
            f"signature check failed for app {_show(app.name)} "
            f"({HMAC_SIGNATURE}: HMAC-SHA256 of method, path and query, timestamp, nonce, username "
            "and body sha256)",
        )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate every request of the sub-app before its handler runs."""
    request[CALLER] = await authenticate(request)
    return await handler(request)
