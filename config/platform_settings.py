"""Cross-field checks of the chat-platform settings (WeCom, DingTalk), for `config.settings`.

`load_settings` parses each variable on its own; the functions here take the parsed values and the
list of errors being collected, and append a sentence naming the variables for every rule broken.
They never put a secret (app secret, token, AES key) into a message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import urlsplit

PREFIX = "TICKETBOT_"
WECOM_API_BASE = "https://qyapi.weixin.qq.com"
WECOM_OAUTH_BASE = "https://open.weixin.qq.com"
DINGTALK_API_BASE = "https://api.dingtalk.com"
DINGTALK_OAPI_BASE = "https://oapi.dingtalk.com"
ORG_SYNC_MAX_MINUTES = 7 * 24 * 60  # a week; a longer period is a typo, not a schedule


def var(name: str) -> str:
    """The environment variable of setting `name` (wecom_corp_id -> TICKETBOT_WECOM_CORP_ID)."""
    return PREFIX + name.upper()


def aes_key_problem(encoding_aes_key: str) -> str:
    """Why `encoding_aes_key` is not a usable WeCom/DingTalk EncodingAESKey, or "" if it is."""
    expected = "expected the platform's EncodingAESKey: 43 base64 characters that decode to 32 bytes"
    if len(encoding_aes_key) != 43:
        return f"{len(encoding_aes_key)} characters long; {expected}"
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        return f"not base64; {expected}"
    if len(key) != 32:
        return f"decodes to {len(key)} bytes; {expected}"
    return ""


def http_url(name: str, url: str, example: str, errors: list[str]) -> str:
    """`url` without trailing slashes; an error unless it is an http(s) URL with a host."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(f"{var(name)}: '{url}' is not an http(s) URL (e.g. {example})")
    return url


def check_aes_key(name: str, aes_key: str, errors: list[str]) -> None:
    problem = aes_key_problem(aes_key) if aes_key else ""
    if problem:
        errors.append(f"{var(name)}: {problem}")


def check_all_or_none(what: str, given: Mapping[str, str], errors: list[str], why: str = "") -> bool:
    """An error when some but not all of `given` (setting name -> value) are set; False then."""
    present = [var(name) for name, value in given.items() if value]
    missing = [var(name) for name, value in given.items() if not value]
    if not present or not missing:
        return True
    every = "both, or neither" if len(given) == 2 else f"all of {', '.join(var(n) for n in given)}, or none"
    errors.append(
        f"{what} is partly configured: {', '.join(present)} set but {', '.join(missing)} missing "
        f"(set {every}{why})"
    )
    return False


def check_org_sync(
    name: str,
    minutes: int,
    needed: Mapping[str, str],
    what: str,
    errors: list[str],
    job: str = "directory sync",
) -> None:
    """The scheduled `job` (`minutes` > 0) needs every setting of `needed` (name -> value)."""
    lacking = [var(n) for n, value in needed.items() if not value]
    if minutes and lacking:
        errors.append(
            f"{var(name)} is {minutes} but {', '.join(lacking)} "
            f"{'is' if len(lacking) == 1 else 'are'} not set: the scheduled {job} needs {what} "
            f"(set them, or set {var(name)}=0)"
        )


def check_wecom(
    *,
    corp_id: str,
    secret: str,
    token: str,
    aes_key: str,
    org_sync_minutes: int,
    errors: list[str],
    customer_sync_minutes: int = 0,
) -> None:
    """WeCom is on with corp id, token and AES key all set; a partial set is an error."""
    check_aes_key("wecom_aes_key", aes_key, errors)
    check_all_or_none(
        "WeCom", {"wecom_corp_id": corp_id, "wecom_token": token, "wecom_aes_key": aes_key}, errors
    )
    check_org_sync(
        "wecom_org_sync_minutes",
        org_sync_minutes,
        {"wecom_corp_id": corp_id, "wecom_secret": secret},
        "the WeCom corp id and the app secret",
        errors,
    )
    check_org_sync(
        "wecom_customer_sync_minutes",
        customer_sync_minutes,
        {"wecom_corp_id": corp_id, "wecom_secret": secret},
        "the WeCom corp id and the app secret (one that may use 客户联系)",
        errors,
        job="customer sync",
    )


def check_dingtalk(
    *,
    app_key: str,
    app_secret: str,
    token: str,
    aes_key: str,
    robot_code: str,
    card_template_id: str,
    org_sync_minutes: int,
    errors: list[str],
) -> None:
    """DingTalk is on with the app key and secret; token and AES key (the event subscription) go
    together; everything else DingTalk needs the app credentials.

    When exactly one credential is set, the "partly configured" error alone says so: the settings
    that depend on the credentials are not reported again for it.
    """
    check_aes_key("dingtalk_aes_key", aes_key, errors)
    credentials = {"dingtalk_app_key": app_key, "dingtalk_app_secret": app_secret}
    check_all_or_none("DingTalk", credentials, errors)
    check_all_or_none(
        "The DingTalk event subscription",
        {"dingtalk_token": token, "dingtalk_aes_key": aes_key},
        errors,
        ": together they serve the HTTP event subscription at /dingtalk/events",
    )
    if app_key or app_secret:
        return
    dependent = {
        "dingtalk_token": token,
        "dingtalk_aes_key": aes_key,
        "dingtalk_robot_code": robot_code,
        "dingtalk_card_template_id": card_template_id,
    }
    given = [var(name) for name, value in dependent.items() if value]
    if given:
        errors.append(
            f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} set but "
            f"{var('dingtalk_app_key')} and {var('dingtalk_app_secret')} are not: DingTalk needs the "
            f"app's credentials for {'it' if len(given) == 1 else 'them'} (set both, or unset {', '.join(given)})"
        )
    check_org_sync(
        "dingtalk_org_sync_minutes",
        org_sync_minutes,
        credentials,
        "the DingTalk app key and app secret",
        errors,
    )
