"""Settings of the work-order chat side, for `config.settings`: the chat archive pull
(TICKETBOT_CHAT_ARCHIVE_*) and the WeCom JS-SDK scripts the chat-toolbar sidebar loads
(TICKETBOT_WECOM_JSSDK_URLS). Each check appends a sentence to the list of errors being collected;
the archive token never appears in one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from config.platform_settings import var

CHAT_ARCHIVE_SECONDS = 60
CHAT_ARCHIVE_MAX_SECONDS = 3600
# WeCom's own scripts: jweixin (wx.invoke) and jwxwork (wx.agentConfig), loaded in this order
WECOM_JSSDK_URLS = (
    "https://res.wx.qq.com/open/js/jweixin-1.2.0.js",
    "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js",
)
MAX_SCRIPTS = 4


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def archive_url(url: str, errors: list[str]) -> str:
    """TICKETBOT_CHAT_ARCHIVE_URL: "" (off) or an http(s) URL without a query or fragment."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or not _is_http(url) or parts.query or parts.fragment:
        errors.append(
            f"{var('chat_archive_url')}: '{url[:120]}' is not an http(s) URL without query "
            "(e.g. http://127.0.0.1:8081/_emulator/archive)"
        )
    return url


def check_archive(url: str, token: str, errors: list[str]) -> None:
    if token and not url:
        errors.append(
            f"{var('chat_archive_token')} is set but {var('chat_archive_url')} is not: the token is only "
            "sent to the archive (set the URL too, or unset the token)"
        )


def script_urls(got: tuple[str, Any] | None, errors: list[str]) -> tuple[str, ...]:
    """TICKETBOT_WECOM_JSSDK_URLS: 1 to MAX_SCRIPTS space-separated http(s) script URLs."""
    if got is None:
        return WECOM_JSSDK_URLS
    where, raw = got
    if isinstance(raw, list | tuple):
        raw = " ".join(str(x) for x in raw)
    if not isinstance(raw, str):
        errors.append(f"{where}: expected space-separated script URLs, got {type(raw).__name__}")
        return WECOM_JSSDK_URLS
    urls = raw.split()
    bad = [u for u in urls if not _is_http(u) or any(c in u for c in "\"'<>`")]
    if bad or not 1 <= len(urls) <= MAX_SCRIPTS:
        errors.append(
            f"{where}: expected 1 to {MAX_SCRIPTS} space-separated http(s) script URLs"
            + (f"; not one: '{bad[0][:120]}'" if bad else "")
        )
        return WECOM_JSSDK_URLS
    return tuple(dict.fromkeys(urls))
