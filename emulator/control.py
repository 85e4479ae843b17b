"""The emulator's control surface over HTTP, for tests and benchmarks that run it in another process
(in-process tests call the emulators' methods directly):

    GET  /_emulator/records?platform=wecom|dingtalk[&kind=messages]   everything that platform received
    POST /_emulator/chaos   {"platform": "wecom", "switch": "...", ...}   flip one chaos switch

Switches (arguments in the same JSON object):

    fail_next        n, errcode (WeCom) | failure (DingTalk: HTTP status, errcode or code), path?
    fail_next_http   n, status (500..599), path?              WeCom (DingTalk: fail_next with a status)
    fail_ratio       ratio (0..1), errcode | failure, path?   0 turns it off
    stall_next       n, path?, seconds?                       no seconds: until "release"
    release                                                   stalled calls answer now
    expire_tokens | revoke_tokens                             every issued token refused from now on
    duplicate_next   n        each of the next n callbacks to the bot is delivered twice
    duplicate_ratio  ratio    callbacks delivered twice at random
    replay           k?       the k oldest callbacks sent so far are delivered again, late

    GET|POST /_emulator/contacts   WeCom customers: list them; a member adds / edits / deletes one
                                   and the change_external_contact callback goes to the bot
                                   (emulator/wecom_contacts.py)

Errors are 400 {"error": "..."}; the emulator is a test tool, so this surface has no auth and must
only ever listen on a loopback address.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from emulator.chaos import Redelivery
from emulator.dingtalk import DingTalkEmulator
from emulator.wecom import WeComEmulator


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class BadSwitch(ValueError):
    pass


def _int(data: Mapping[str, Any], name: str, default: int | None = None) -> int:
    raw = data.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadSwitch(f"'{name}' must be an integer")
    return int(raw)


def _ratio(data: Mapping[str, Any]) -> float:
    raw = data.get("ratio")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
        raise BadSwitch("'ratio' must be a number within 0..1")
    return float(raw)


def _path(data: Mapping[str, Any]) -> str | None:
    raw = data.get("path")
    if raw is not None and not isinstance(raw, str):
        raise BadSwitch("'path' must be a string")
    return raw


class Control:
    def __init__(
        self,
        *,
        wecom: WeComEmulator | None = None,
        dingtalk: DingTalkEmulator | None = None,
        redelivery: Mapping[str, Redelivery] | None = None,
    ) -> None:
        self.wecom = wecom
        self.dingtalk = dingtalk
        self.redelivery = dict(redelivery or {})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_emulator/records", self._records)
        app.router.add_post("/_emulator/chaos", self._chaos)
        if self.wecom is not None:
            app.router.add_routes(self.wecom.contacts.control_routes())

    def _platform(self, name: object) -> WeComEmulator | DingTalkEmulator:
        if name == "wecom" and self.wecom is not None:
            return self.wecom
        if name == "dingtalk" and self.dingtalk is not None:
            return self.dingtalk
        known = [n for n, e in (("wecom", self.wecom), ("dingtalk", self.dingtalk)) if e is not None]
        raise BadSwitch(f"unknown platform {name!r} (served here: {', '.join(known) or 'none'})")

    async def _records(self, request: web.Request) -> web.Response:
        try:
            emulator = self._platform(request.query.get("platform"))
        except BadSwitch as exc:
            return web.json_response({"error": str(exc)}, status=400)
        records = _plain(emulator.records)
        kind = request.query.get("kind")
        if kind is not None:
            if kind not in records:
                return web.json_response(
                    {"error": f"unknown kind {kind!r} (known: {', '.join(sorted(records))})"}, status=400
                )
            records = {kind: records[kind]}
        return web.json_response(records, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))

    async def _chaos(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.text())
        except (ValueError, RecursionError, LookupError, web.HTTPException, aiohttp.ClientPayloadError):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        try:
            done = await self._flip(data)
        except (BadSwitch, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, **done})

    async def _flip(self, data: Mapping[str, Any]) -> dict[str, Any]:
        switch = data.get("switch")
        platform = data.get("platform")
        if switch in ("duplicate_next", "duplicate_ratio", "replay"):
            redelivery = self.redelivery.get(str(platform))
            if redelivery is None:
                raise BadSwitch(f"no callback delivery for platform {platform!r} here")
            if switch == "duplicate_next":
                redelivery.duplicate_next(_int(data, "n"))
            elif switch == "duplicate_ratio":
                redelivery.duplicate_ratio(_ratio(data))
            else:
                k = None if data.get("k") is None else _int(data, "k")
                if k is not None and k < 0:
                    raise BadSwitch("'k' must not be negative")
                return {"replayed": await redelivery.replay(k)}
            return {}
        emulator = self._platform(platform)
        if switch == "fail_next":
            n = _int(data, "n")
            if isinstance(emulator, WeComEmulator):
                emulator.fail_next(n, _int(data, "errcode"), path=_path(data))
            else:
                failure = data.get("failure")
                if isinstance(failure, bool) or not isinstance(failure, int | str):
                    raise BadSwitch("'failure' must be an HTTP status, an errcode or a code string")
                emulator.fail_next(n, failure, path=_path(data))
        elif switch == "fail_next_http" and isinstance(emulator, WeComEmulator):
            emulator.fail_next_http(_int(data, "n"), _int(data, "status", 503), path=_path(data))
        elif switch == "fail_ratio":
            if isinstance(emulator, WeComEmulator):
                emulator.fail_ratio(_ratio(data), _int(data, "errcode", -1), path=_path(data))
            else:
                failure = data.get("failure", 503)
                if isinstance(failure, bool) or not isinstance(failure, int | str):
                    raise BadSwitch("'failure' must be an HTTP status, an errcode or a code string")
                emulator.fail_ratio(_ratio(data), failure, path=_path(data))
        elif switch == "stall_next":
            seconds = data.get("seconds")
            if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
                raise BadSwitch("'seconds' must be a number")
            emulator.stall_next(_int(data, "n"), path=_path(data), seconds=seconds)
        elif switch == "release":
            emulator.stalls.release()
        elif switch == "expire_tokens":
            emulator.expire_all_tokens()
        elif switch == "revoke_tokens":
            emulator.revoke_all_tokens()
        else:
            raise BadSwitch(f"unknown switch {switch!r} for {platform}")
        return {}
