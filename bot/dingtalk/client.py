"""Async client for the DingTalk server API, one internal app (AppKey / AppSecret and its robot).

Two generations of API, each with its own access token (cached separately):

- the new API (`api_base`, https://api.dingtalk.com): token from `POST /v1.0/oauth2/accessToken`,
  sent as header `x-acs-dingtalk-access-token`; errors are HTTP 4xx with
  `{"code", "message", "requestid"}` (a bad token: HTTP 400 or 401 with code InvalidAuthentication);
- the old API (`oapi_base`, https://oapi.dingtalk.com): token from `GET /gettoken`, sent as query
  `access_token`; errors are HTTP 200 `{"errcode", "errmsg"}`, or errcode 88 with a `sub_code`.

Behaviour:

- Each token is cached until shortly before its `expireIn`; concurrent callers share ONE token
  request (single flight under a lock). When DingTalk rejects a token (HTTP 401, InvalidAuthentication,
  40001 / 40014 / 42001) it is refreshed once and the call retried once.
- Throttling (HTTP 429, Forbidden.AccessDenied.QpsLimit*, Throttling*, errcodes 90001..90019 and
  90030), "system busy" (-1), 5xx answers and failed connections are retried with exponential
  backoff through the injected `sleep`, at most `max_attempts` requests in all. A send that may
  already have happened (a timeout, or HTTP 500 to a call that is not idempotent) is not repeated:
  it raises Unavailable(maybe_delivered=True). 502 / 503 / 504 and throttling answers mean the
  request was not processed and are always retried.
- The monthly quota (90020, Forbidden.AccessDenied.ApiCountLimitForOrg) raises QuotaExhausted at
  once. `calls` counts every HTTP request made (`calls_by_path` per path) so spending is observable.
- A card is delivered only if every `deliverResults[].success` is true (DeliveryFailed otherwise;
  the top-level `success` is not enough).
- The secret and the access tokens never reach a log line or an exception message (answers are
  redacted; URLs are never logged, only paths).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from core.ports import Clock

log = logging.getLogger("ticketbot.dingtalk.client")

TOKEN_HEADER = "x-acs-dingtalk-access-token"  # noqa: S105 - a header name
SPACE_PREFIX = "dtv1.card//"
BATCH_USERS = 20  # robot batchSend: at most 20 userIds a call
OA_USERS = 100  # asyncsend_v2: at most 100 userids a call
PAGE_SIZE = 100  # user/list: at most 100 a page
LOCAL = "local"  # code of errors raised by this client without asking DingTalk

TOKEN_CODES = frozenset({"InvalidAuthentication", "40001", "40014", "42001", "41001"})
CREDENTIAL_CODES = frozenset({"invalidClientIdOrSecret", "40089"})
QUOTA_CODES = frozenset({"90020"})
PERMISSION_CODES = frozenset({"60011"})
SESSION_EXPIRED = "300001"
IDEMPOTENT_STATUSES = frozenset({502, 503, 504})  # the request was not processed: always retried

Style = Literal["api", "oapi"]


# ---------------------------------------------------------------- errors


class DingTalkError(Exception):
    """A call DingTalk refused (or this client refused on its behalf): code, message and what to do.

    `code` is the new API's string code or the old API's errcode as a string (its sub_code for
    errcode 88); `status` the HTTP status when it was not 200; `request_id` for DingTalk support."""

    def __init__(
        self, code: str, message: str, hint: str = "", *, status: int | None = None, request_id: str = ""
    ) -> None:
        self.code = code
        self.message = message
        self.hint = hint
        self.status = status
        self.request_id = request_id
        text = f"DingTalk {code}: {message}"
        if status is not None and status != 200:
            text += f" (HTTP {status})"
        super().__init__(f"{text} ({hint})" if hint else text)


class BadCredentials(DingTalkError):
    """invalidClientIdOrSecret / 40089: the AppKey or AppSecret is wrong."""


class TokenRejected(DingTalkError):
    """DingTalk rejected even a freshly fetched access token."""


class NoPermission(DingTalkError):
    """60011 / Forbidden.AccessDenied.*: the app lacks the permission for this API or data."""


class Throttled(DingTalkError):
    """Still over a rate limit (HTTP 429, QPS limits, 9000x) after every retry."""


class QuotaExhausted(DingTalkError):
    """90020 / ApiCountLimitForOrg: the organisation's monthly API quota is spent."""


class CardNotFound(DingTalkError):
    """Updating a card DingTalk does not know (wrong outTrackId, or never created)."""


class SessionWebhookExpired(DingTalkError):
    """300001: the robot message's session webhook is unknown or older than its ~90 minutes."""


class DeliveryFailed(DingTalkError):
    """createAndDeliver answered success, but at least one deliverResults entry failed."""

    def __init__(self, out_track_id: str, results: Sequence[DeliverResult]) -> None:
        self.out_track_id = out_track_id
        self.results = tuple(results)
        failed = [r for r in self.results if not r.success]
        what = "; ".join(f"{r.space_type}.{r.space_id}: {r.error_msg or 'failed'}" for r in failed)
        super().__init__(
            "deliverResults",
            f"card {out_track_id} not delivered to {what or 'any space'}",
            "the user may have left, be outside the app's visible range (可见范围) or the robot is not in the group",
        )

    @property
    def delivered(self) -> tuple[DeliverResult, ...]:
        return tuple(r for r in self.results if r.success)


class Unavailable(DingTalkError):
    """No usable answer: connection failed, timed out, 5xx, busy, or not JSON.

    `maybe_delivered` is False only when the request was certainly not processed."""

    def __init__(self, message: str, *, maybe_delivered: bool = True, status: int | None = None) -> None:
        super().__init__(
            LOCAL, message, "DingTalk could not be reached or answered nonsense; retry later", status=status
        )
        self.maybe_delivered = maybe_delivered


def _is_throttle(status: int, code: str) -> bool:
    if status == 429 or code.startswith(("Forbidden.AccessDenied.QpsLimit", "Throttling")):
        return True
    return code.isdigit() and (90001 <= int(code) <= 90019 or code == "90030")


def _is_quota(code: str) -> bool:
    return code in QUOTA_CODES or code.startswith("Forbidden.AccessDenied.ApiCountLimit")


def _is_token(status: int, code: str) -> bool:
    return status == 401 or code in TOKEN_CODES


def error_for(code: str, message: str, *, status: int | None = None, request_id: str = "") -> DingTalkError:
    """The DingTalkError subclass for an answer, with a hint that says what to do."""
    st = status or 200
    kw: dict[str, Any] = {"status": status, "request_id": request_id}
    if code in CREDENTIAL_CODES:
        return BadCredentials(
            code,
            message,
            "the AppKey or AppSecret is wrong or was reset: copy them from the developer console",
            **kw,
        )
    if _is_token(st, code):
        return TokenRejected(
            code, message, "DingTalk rejected a freshly fetched access token; check AppKey/AppSecret", **kw
        )
    if _is_quota(code):
        return QuotaExhausted(
            code,
            message,
            "the organisation's monthly API quota is spent: wait for next month or buy more (开发者后台-资源管理)",
            **kw,
        )
    if _is_throttle(st, code):
        return Throttled(code, message, "DingTalk is rate-limiting this app; retry later, more slowly", **kw)
    if code in PERMISSION_CODES or code.startswith("Forbidden") or st == 403:
        return NoPermission(
            code,
            message,
            "grant the app this API permission (权限管理) and check its visible range (可见范围) in the developer console",
            **kw,
        )
    if code == SESSION_EXPIRED:
        return SessionWebhookExpired(
            code,
            message,
            "the session webhook expired (about 90 minutes): send through the robot API instead",
            **kw,
        )
    if code == "-1" or st >= 500:
        return Unavailable(
            f"DingTalk busy or failing: {message}",
            maybe_delivered=st not in IDEMPOTENT_STATUSES,
            status=status,
        )
    return DingTalkError(code, message, **kw)


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class DeliverResult:
    space_type: str  # IM_ROBOT | IM_GROUP | ...
    space_id: str  # userId or openConversationId
    success: bool
    error_msg: str = ""


@dataclass(frozen=True, slots=True)
class CardDelivery:
    out_track_id: str
    results: tuple[DeliverResult, ...]


@dataclass(frozen=True, slots=True)
class BatchSendResult:
    process_query_keys: tuple[str, ...]  # one per call (chunk of 20)
    invalid_user_ids: tuple[str, ...] = ()
    flow_controlled_user_ids: tuple[str, ...] = ()


def robot_space(user_id: str) -> str:
    """The openSpaceId of a user's chat with the app's robot."""
    return f"{SPACE_PREFIX}IM_ROBOT.{user_id}"


def group_space(open_conversation_id: str) -> str:
    """The openSpaceId of a group the robot is in."""
    return f"{SPACE_PREFIX}IM_GROUP.{open_conversation_id}"


def _space_types(open_space_id: str) -> set[str]:
    if not open_space_id.startswith(SPACE_PREFIX):
        raise ValueError(f"openSpaceId must start with {SPACE_PREFIX!r}")
    return {part.split(".", 1)[0].strip().upper() for part in open_space_id[len(SPACE_PREFIX) :].split(";")}


def _string_map(params: Mapping[str, Any], what: str) -> dict[str, str]:
    bad = sorted(k for k, v in params.items() if not isinstance(v, str))
    if bad:
        raise TypeError(f"{what} values must be strings (JSON-encode lists and objects): {', '.join(bad)}")
    return {str(k): v for k, v in params.items()}


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


# ---------------------------------------------------------------- token cache


class _TokenCache:
    """One access token, refreshed by exactly one of the concurrent callers."""

    def __init__(
        self, kind: str, fetch: Callable[[], Awaitable[tuple[str, int]]], clock: Clock, margin: timedelta
    ) -> None:
        self.kind = kind
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._lock = asyncio.Lock()
        self.token: str | None = None
        self._expires_at: datetime | None = None

    def _fresh(self) -> str | None:
        if self.token and self._expires_at and self._clock.now() < self._expires_at:
            return self.token
        return None

    async def get(self, *, stale: str | None = None) -> str:
        """The cached token, or a fresh one. `stale`: a token DingTalk just rejected; it is not reused
        (unless another caller already replaced it)."""
        token = self._fresh()
        if token and token != stale:
            return token
        async with self._lock:
            token = self._fresh()
            if token and token != stale:
                return token
            token, expires_in = await self._fetch()
            ttl = timedelta(seconds=expires_in)
            self.token = token
            self._expires_at = self._clock.now() + max(ttl - self._margin, ttl / 2)
            log.info(
                "dingtalk access token refreshed", extra={"token_kind": self.kind, "expires_in": expires_in}
            )
            return token


# ---------------------------------------------------------------- the client


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    code: str  # "" when the call succeeded
    message: str
    request_id: str


class DingTalkClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        oapi_base: str,
        app_key: str,
        app_secret: str,
        robot_code: str,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_attempts: int = 3,
        backoff: float = 0.5,
        refresh_margin: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._api = api_base.rstrip("/")
        self._oapi = oapi_base.rstrip("/")
        self.app_key = app_key
        self._secret = app_secret
        self.robot_code = robot_code
        self._clock = clock
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        margin = timedelta(seconds=refresh_margin)
        self._api_token = _TokenCache("api", self._fetch_api_token, clock, margin)
        self._oapi_token = _TokenCache("oapi", self._fetch_oapi_token, clock, margin)
        self.calls_by_path: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"DingTalkClient(app_key={self.app_key!r}, robot_code={self.robot_code!r})"

    @property
    def calls(self) -> int:
        """HTTP requests made to DingTalk so far (token requests, retries and webhooks included)."""
        return sum(self.calls_by_path.values())

    # ---- redaction

    def _redact(self, text: str) -> str:
        for secret in (self._secret, self._api_token.token, self._oapi_token.token):
            if secret:
                text = text.replace(secret, "***")
        return re.sub(r"(access_token|session|appsecret)=[^&\s\"']+", r"\1=***", text, flags=re.IGNORECASE)

    # ---- plumbing

    async def _request_once(
        self,
        style: Style,
        method: str,
        url: str,
        label: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One HTTP request; its answer classified, or Unavailable (the URL is never in the message)."""
        self.calls_by_path[label] += 1
        try:
            async with self._session.request(
                method, url, params=params, json=payload, headers=headers, timeout=self._timeout
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except TimeoutError:
            raise Unavailable(f"no answer from {label} in time") from None
        except aiohttp.ClientConnectorError:
            raise Unavailable(f"cannot connect for {label}", maybe_delivered=False) from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"{type(exc).__name__} calling {label}") from None
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if status == 200:
                raise Unavailable(f"{label} did not answer a JSON object", status=status)
            return _Answer(status, {}, f"HTTP{status}", f"HTTP {status} from {label}", "")
        if style == "api":
            if status == 200:
                return _Answer(status, body, "", "", "")
            code = str(body.get("code") or f"HTTP{status}")
            message = str(body.get("message") or f"HTTP {status} from {label}")
            return _Answer(status, body, code, self._redact(message), str(body.get("requestid", "")))
        request_id = str(body.get("request_id", ""))
        if status != 200:
            return _Answer(status, body, f"HTTP{status}", f"HTTP {status} from {label}", request_id)
        try:
            errcode = int(body.get("errcode", 0))
        except (TypeError, ValueError):
            errcode = -1
        if errcode == 0:
            return _Answer(status, body, "", "", request_id)
        sub_code = body.get("sub_code")
        code = str(sub_code) if errcode == 88 and sub_code else str(errcode)
        message = str(body.get("sub_msg") or body.get("errmsg") or "")
        return _Answer(status, body, code, self._redact(message), request_id)

    async def _with_retries(
        self,
        style: Style,
        method: str,
        url: str,
        label: str,
        *,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One logical request: throttling, busy and unavailable answers retried with backoff.

        Whatever else is answered (token rejections included) is returned for the caller to judge."""
        for attempt in range(self._max_attempts):
            last = attempt == self._max_attempts - 1
            try:
                answer = await self._request_once(
                    style, method, url, label, params=params, payload=payload, headers=headers
                )
            except Unavailable as exc:
                if last or (not idempotent and exc.maybe_delivered):
                    raise
                await self._backoff_sleep(attempt, label, "unavailable")
                continue
            code, status = answer.code, answer.status
            if not code or last:
                return answer
            if _is_throttle(status, code):
                await self._backoff_sleep(attempt, label, code)
                continue
            if code == "-1" or status in IDEMPOTENT_STATUSES or (status >= 500 and idempotent):
                await self._backoff_sleep(attempt, label, code)
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _backoff_sleep(self, attempt: int, label: str, why: str) -> None:
        delay = self._backoff * 2**attempt
        log.warning("dingtalk call retried", extra={"path": label, "reason": why, "delay_s": delay})
        await self._sleep(delay)

    @staticmethod
    def _raise(answer: _Answer) -> None:
        if answer.code:
            raise error_for(
                answer.code,
                answer.message,
                status=answer.status if answer.status != 200 else None,
                request_id=answer.request_id,
            )

    async def _fetch_api_token(self) -> tuple[str, int]:
        path = "/v1.0/oauth2/accessToken"
        answer = await self._with_retries(
            "api",
            "POST",
            self._api + path,
            path,
            idempotent=True,
            payload={"appKey": self.app_key, "appSecret": self._secret},
        )
        if answer.code in TOKEN_CODES:  # a token error here can only mean the credentials
            raise BadCredentials(
                answer.code, answer.message, "check the AppKey and AppSecret", status=answer.status
            )
        self._raise(answer)
        return self._token_from(answer.body, "accessToken", "expireIn", path)

    async def _fetch_oapi_token(self) -> tuple[str, int]:
        path = "/gettoken"
        answer = await self._with_retries(
            "oapi",
            "GET",
            self._oapi + path,
            path,
            idempotent=True,
            params={"appkey": self.app_key, "appsecret": self._secret},
        )
        if answer.code in TOKEN_CODES:
            raise BadCredentials(answer.code, answer.message, "check the AppKey and AppSecret")
        self._raise(answer)
        return self._token_from(answer.body, "access_token", "expires_in", path)

    @staticmethod
    def _token_from(body: Mapping[str, Any], token_key: str, ttl_key: str, path: str) -> tuple[str, int]:
        token = body.get(token_key)
        if not isinstance(token, str) or not token:
            raise Unavailable(f"{path} answered without an access token")
        try:
            ttl = int(body.get(ttl_key, 7200))
        except (TypeError, ValueError):
            ttl = 7200
        return token, ttl if ttl > 0 else 7200

    async def _api_call(
        self, method: str, path: str, payload: Mapping[str, Any], *, idempotent: bool
    ) -> dict[str, Any]:
        """A new-API call with the header token, refreshed once if DingTalk rejects it."""
        token = await self._api_token.get()
        answer = await self._with_retries(
            "api",
            method,
            self._api + path,
            path,
            idempotent=idempotent,
            payload=payload,
            headers={TOKEN_HEADER: token},
        )
        if answer.code and _is_token(answer.status, answer.code):
            log.info("dingtalk token rejected; refreshing once", extra={"path": path, "code": answer.code})
            token = await self._api_token.get(stale=token)
            answer = await self._with_retries(
                "api",
                method,
                self._api + path,
                path,
                idempotent=idempotent,
                payload=payload,
                headers={TOKEN_HEADER: token},
            )
        self._raise(answer)
        return answer.body

    async def _oapi_call(self, path: str, payload: Mapping[str, Any], *, idempotent: bool) -> dict[str, Any]:
        """An old-API POST with the query token, refreshed once if DingTalk rejects it."""
        token = await self._oapi_token.get()
        answer = await self._with_retries(
            "oapi",
            "POST",
            self._oapi + path,
            path,
            idempotent=idempotent,
            params={"access_token": token},
            payload=payload,
        )
        if answer.code and _is_token(answer.status, answer.code):
            log.info("dingtalk token rejected; refreshing once", extra={"path": path, "code": answer.code})
            token = await self._oapi_token.get(stale=token)
            answer = await self._with_retries(
                "oapi",
                "POST",
                self._oapi + path,
                path,
                idempotent=idempotent,
                params={"access_token": token},
                payload=payload,
            )
        self._raise(answer)
        return answer.body

    # ---- interactive cards

    async def create_and_deliver_card(
        self,
        out_track_id: str,
        template_id: str,
        param_map: Mapping[str, str],
        private_data: Mapping[str, Mapping[str, str]] | None = None,
        *,
        open_space_id: str,
        callback_route_key: str | None = None,
        support_forward: bool = False,
    ) -> CardDelivery:
        """Create a card instance and deliver it to `open_space_id` (robot_space(userId) or
        group_space(openConversationId); several joined by ";"). `private_data` maps a userId to
        that user's own params. With `callback_route_key` clicks come over HTTP to the URL
        registered for it, else over Stream. DeliveryFailed unless every delivery succeeded."""
        types = _space_types(open_space_id)
        payload: dict[str, Any] = {
            "outTrackId": out_track_id,
            "cardTemplateId": template_id,
            "cardData": {"cardParamMap": _string_map(param_map, "cardParamMap")},
            "openSpaceId": open_space_id,
            "userIdType": 1,
            "callbackType": "HTTP" if callback_route_key else "STREAM",
        }
        if callback_route_key:
            payload["callbackRouteKey"] = callback_route_key
        if private_data:
            payload["privateData"] = {
                user: {"cardParamMap": _string_map(params, "privateData")}
                for user, params in private_data.items()
            }
        if "IM_ROBOT" in types:
            payload["imRobotOpenSpaceModel"] = {"supportForward": support_forward}
            payload["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT", "robotCode": self.robot_code}
        if "IM_GROUP" in types:
            payload["imGroupOpenSpaceModel"] = {"supportForward": support_forward}
            payload["imGroupOpenDeliverModel"] = {"robotCode": self.robot_code}
        body = await self._api_call(
            "POST", "/v1.0/card/instances/createAndDeliver", payload, idempotent=False
        )
        if body.get("success") is not True:
            raise DingTalkError(
                LOCAL, "createAndDeliver did not answer success", "retry later or check the template"
            )
        result = body.get("result")
        raw = result.get("deliverResults") if isinstance(result, dict) else None
        results = tuple(
            DeliverResult(
                str(r.get("spaceType", "")),
                str(r.get("spaceId", "")),
                r.get("success") is True,
                self._redact(str(r.get("errorMsg") or "")),
            )
            for r in (raw if isinstance(raw, list) else [])
            if isinstance(r, dict)
        )
        if not results or not all(r.success for r in results):
            raise DeliveryFailed(out_track_id, results)
        log.info("dingtalk card delivered", extra={"out_track_id": out_track_id, "spaces": len(results)})
        return CardDelivery(out_track_id, results)

    async def update_card(
        self,
        out_track_id: str,
        param_map: Mapping[str, str],
        private_data: Mapping[str, Mapping[str, str]] | None = None,
        *,
        by_key: bool = True,
    ) -> None:
        """Update a delivered card: with `by_key` only the given params change, else they replace
        the card's whole param map. CardNotFound for an outTrackId DingTalk does not know."""
        payload: dict[str, Any] = {
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": _string_map(param_map, "cardParamMap")},
            "cardUpdateOptions": {"updateCardDataByKey": by_key, "updatePrivateDataByKey": by_key},
        }
        if private_data:
            payload["privateData"] = {
                user: {"cardParamMap": _string_map(params, "privateData")}
                for user, params in private_data.items()
            }
        try:
            body = await self._api_call("PUT", "/v1.0/card/instances", payload, idempotent=True)
        except DingTalkError as exc:
            if exc.status == 404 or exc.code.startswith("NotFound"):
                raise CardNotFound(
                    exc.code,
                    exc.message,
                    "DingTalk does not know this card: send a fresh one",
                    status=exc.status,
                    request_id=exc.request_id,
                ) from None
            raise
        if body.get("success") is not True:
            raise DingTalkError(LOCAL, f"card update of {out_track_id} did not answer success")

    async def register_card_callback(
        self, route_key: str, url: str, api_secret: str, *, force_update: bool = True
    ) -> None:
        """Register (or move, with `force_update`) the HTTP URL card clicks of `route_key` go to,
        signed with `api_secret`."""
        payload = {
            "callbackRouteKey": route_key,
            "callbackUrl": url,
            "apiSecret": api_secret,
            "forceUpdate": force_update,
        }
        body = await self._api_call("POST", "/v1.0/card/callbacks/register", payload, idempotent=True)
        if body.get("success") is not True:
            raise DingTalkError(LOCAL, "callback registration did not answer success")

    # ---- robot messages

    async def robot_batch_send(
        self, user_ids: Iterable[str], msg_key: str, msg_param: Mapping[str, Any]
    ) -> BatchSendResult:
        """A robot message (e.g. msg_key "sampleText", msg_param {"content": ...}) to people's chats
        with the robot, 20 users a call. If a later chunk fails, the earlier ones were sent."""
        users = list(dict.fromkeys(u for u in user_ids if u))
        if not users:
            return BatchSendResult(())
        encoded = json.dumps(dict(msg_param), ensure_ascii=False)
        keys: list[str] = []
        invalid: list[str] = []
        limited: list[str] = []
        for chunk in _chunks(users, BATCH_USERS):
            payload = {"robotCode": self.robot_code, "userIds": chunk, "msgKey": msg_key, "msgParam": encoded}
            body = await self._api_call(
                "POST", "/v1.0/robot/oToMessages/batchSend", payload, idempotent=False
            )
            keys.append(str(body.get("processQueryKey", "")))
            invalid += [str(u) for u in body.get("invalidStaffIdList") or []]
            limited += [str(u) for u in body.get("flowControlledStaffIdList") or []]
        return BatchSendResult(tuple(keys), tuple(invalid), tuple(limited))

    async def send_session_webhook(self, url: str, text: str, at_user_ids: Sequence[str] = ()) -> None:
        """Reply with text through a robot message's sessionWebhook (no token). The URL must be on
        the oapi host (it comes from an inbound message); SessionWebhookExpired after ~90 minutes."""
        if _origin(url) != _origin(self._oapi):
            raise DingTalkError(
                LOCAL, "the session webhook is not on DingTalk's oapi host", "refused to post there"
            )
        payload: dict[str, Any] = {"msgtype": "text", "text": {"content": text}}
        if at_user_ids:
            payload["at"] = {"atUserIds": list(at_user_ids), "isAtAll": False}
        label = urlsplit(url).path or "/"
        answer = await self._with_retries("oapi", "POST", url, label, idempotent=False, payload=payload)
        self._raise(answer)

    # ---- work notifications (old API)

    async def send_oa(self, agent_id: int, user_ids: Iterable[str], oa: Mapping[str, Any]) -> tuple[int, ...]:
        """An `oa` work notification (message_url, head, body, status_bar...) to people, 100 a call;
        the task ids (one per call) for later status-bar updates."""
        users = list(dict.fromkeys(u for u in user_ids if u))
        tasks: list[int] = []
        for chunk in _chunks(users, OA_USERS):
            payload = {
                "agent_id": agent_id,
                "userid_list": ",".join(chunk),
                "msg": {"msgtype": "oa", "oa": dict(oa)},
            }
            body = await self._oapi_call(
                "/topapi/message/corpconversation/asyncsend_v2", payload, idempotent=False
            )
            try:
                tasks.append(int(body["task_id"]))
            except (KeyError, TypeError, ValueError):
                raise Unavailable("asyncsend_v2 answered without a task_id") from None
        return tuple(tasks)

    async def update_oa_status_bar(
        self, agent_id: int, task_id: int, status_value: str, status_bg: str | None = None
    ) -> None:
        """Change the status bar of an `oa` work notification (e.g. "已同意")."""
        payload: dict[str, Any] = {"agent_id": agent_id, "task_id": task_id, "status_value": status_value}
        if status_bg:
            payload["status_bg"] = status_bg
        await self._oapi_call("/topapi/message/corpconversation/status_bar/update", payload, idempotent=True)

    # ---- contacts (old API)

    async def get_department(self, dept_id: int) -> dict[str, Any]:
        body = await self._oapi_call("/topapi/v2/department/get", {"dept_id": dept_id}, idempotent=True)
        result = body.get("result")
        return dict(result) if isinstance(result, dict) else {}

    async def list_departments(self, dept_id: int = 1) -> list[dict[str, Any]]:
        """Every department below `dept_id` (not itself), breadth first, one listsub call per department."""
        found: list[dict[str, Any]] = []
        seen = {dept_id}
        queue = [dept_id]
        while queue:
            parent = queue.pop(0)
            body = await self._oapi_call(
                "/topapi/v2/department/listsub", {"dept_id": parent}, idempotent=True
            )
            for dept in body.get("result") or []:
                if not isinstance(dept, dict):
                    continue
                try:
                    child = int(dept["dept_id"])
                except (KeyError, TypeError, ValueError):
                    continue
                if child not in seen:
                    seen.add(child)
                    found.append(dict(dept))
                    queue.append(child)
        return found

    async def list_users(self, dept_id: int) -> list[dict[str, Any]]:
        """The members of one department (not of its sub-departments), page by page."""
        users: list[dict[str, Any]] = []
        cursor = 0
        while True:
            payload = {"dept_id": dept_id, "cursor": cursor, "size": PAGE_SIZE}
            body = await self._oapi_call("/topapi/v2/user/list", payload, idempotent=True)
            result = body.get("result")
            result = result if isinstance(result, dict) else {}
            users += [dict(u) for u in result.get("list") or [] if isinstance(u, dict)]
            if not result.get("has_more"):
                return users
            try:
                next_cursor = int(result["next_cursor"])
            except (KeyError, TypeError, ValueError):
                raise Unavailable("user/list said has_more without a next_cursor") from None
            if next_cursor <= cursor:
                raise Unavailable("user/list did not move its cursor forward")
            cursor = next_cursor


def _origin(url: str) -> tuple[str, str]:
    """(scheme, host) of `url`; ("", "") for a string that does not parse as a URL (an inbound
    message's sessionWebhook may be anything, e.g. "http://[::1" makes urlsplit raise)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "", ""
    return parts.scheme.lower(), parts.netloc.lower()
