"""WeCom's web OAuth (网页授权登录, snsapi_base) for the ticket page (bot.page.oauth.PageOAuth).

1. The page sends the browser to
   ``{oauth_base}/connect/oauth2/authorize?appid=<corp id>&redirect_uri=<url>&response_type=code
   &scope=snsapi_base&state=<state>&agentid=<agent id>#wechat_redirect``;
2. WeCom (inside the WeCom app: silently) sends it back to ``redirect_uri?code=...&state=...``;
3. ``GET /cgi-bin/auth/getuserinfo?access_token&code`` (the app's token, through WeComClient's
   token cache and retries) answers the member's ``userid``; 40029 means the code is invalid, used
   or expired (each works once, for 5 minutes);
4. the userid is matched to a directory user the way WeCom messages are (its `wecom_userid`, any
   case), who must be active.
"""

from __future__ import annotations

import logging
import urllib.parse

from bot.page.oauth import Identity
from bot.wecom.client import WeComClient, WeComError
from core.ports import Directory

log = logging.getLogger("ticketbot.wecom.oauth")

INVALID_CODE = 40029
MISSING_CODE = 41008

BAD_CODE = "登录凭证无效或已用过，请重新打开工单链接。"
NOT_A_MEMBER = "只有企业成员可以打开工单页面。"
NOT_IN_DIRECTORY = "你不在本系统的通讯录中，请联系管理员。"
INACTIVE = "你的账号已停用，请联系管理员。"
UNAVAILABLE = "暂时无法向企业微信确认你的身份，请稍后再试。"


class WeComOAuth:
    def __init__(self, client: WeComClient, directory: Directory, *, oauth_base: str) -> None:
        self._client = client
        self._directory = directory
        self._base = oauth_base.rstrip("/")

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        params = {
            "appid": self._client.corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": str(self._client.agent_id),
        }
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        return f"{self._base}/connect/oauth2/authorize?{query}#wechat_redirect"

    async def identify(self, code: str) -> Identity:
        try:
            userid = await self._client.user_id_by_code(code)
        except WeComError as exc:
            if exc.errcode in (INVALID_CODE, MISSING_CODE):
                log.info("wecom oauth code refused", extra={"errcode": exc.errcode})
                return Identity(problem=BAD_CODE, status=403)
            log.warning("wecom oauth failed", extra={"errcode": exc.errcode, "error": str(exc)})
            return Identity(problem=UNAVAILABLE, status=502)
        if not userid:
            return Identity(problem=NOT_A_MEMBER, status=403)
        org = await self._directory.org()
        wanted = userid.casefold()
        user = next(
            (u for u in org.users.values() if u.wecom_userid and u.wecom_userid.casefold() == wanted), None
        )
        if user is None:
            log.info("wecom oauth: userid not in the directory", extra={"userid": userid})
            return Identity(problem=NOT_IN_DIRECTORY, status=403)
        if not user.is_active:
            return Identity(problem=INACTIVE, status=403)
        return Identity(username=user.username)
