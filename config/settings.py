"""Process settings from environment variables (prefix ``TICKETBOT_``).

- ``TICKETBOT_DATABASE_URL``: SQLAlchemy async URL; default ``sqlite+aiosqlite:///<cwd>/var/ticketbot.db``
- ``TICKETBOT_CONFIG_DIR``: org.yaml, apps.yaml, workflows/; default: this package (the demo config)
- ``TICKETBOT_HOST`` / ``TICKETBOT_PORT``: where the HTTP server listens; default 127.0.0.1:8080
- ``TICKETBOT_LOG_LEVEL``: DEBUG, INFO (default), WARNING, ERROR, CRITICAL
- ``TICKETBOT_PUBLIC_URL``: the URL platforms and people reach us under; default http://127.0.0.1:8080
- ``TICKETBOT_SN_PREFIX``: default ticket SN prefix; default ``loonflow``
- ``TICKETBOT_WECOM_CORP_ID`` / ``_AGENT_ID`` / ``_SECRET`` / ``_TOKEN`` / ``_AES_KEY`` / ``_API_BASE`` /
  ``_REPLAY_WINDOW``: the WeCom self-built app; WeCom is on when corp id, token and AES key are all set
- ``TICKETBOT_WECOM_ORG_SYNC_MINUTES``: sync the directory from WeCom every N minutes while serving
  (0, the default, is off; at most 10080 = a week); needs the corp id and the secret
- ``TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES``: reconcile every customer (WeCom external contact) with
  WeCom every N minutes while serving, as ``ticketbot customers sync`` does (0, the default, is off;
  at most 10080); needs the corp id and the secret
- ``TICKETBOT_DINGTALK_APP_KEY`` / ``_APP_SECRET``: the DingTalk internal app; DingTalk is on when both
  are set (one alone is refused); the token, AES key, robot code, card template and org sync need them
- ``TICKETBOT_DINGTALK_TOKEN`` / ``_AES_KEY``: both or neither; they serve the HTTP event subscription
  at /dingtalk/events. ``_OWNER_KEY``: the ``$key`` in the decrypted plaintext; default the app key
- ``TICKETBOT_DINGTALK_ROBOT_CODE`` / ``_CARD_TEMPLATE_ID`` / ``_CARD_CALLBACK_KEY`` (default
  ``ticketbot``) / ``_AGENT_ID``: the app's robot, its interactive card template, the callbackRouteKey
  of its card callback, its AgentId (work notifications, the fallback channel)
- ``TICKETBOT_DINGTALK_API_BASE`` / ``_OAPI_BASE``: https://api.dingtalk.com, https://oapi.dingtalk.com
- ``TICKETBOT_DINGTALK_ORG_SYNC_MINUTES``: as WeCom's, from DingTalk; needs the app key and secret
- ``TICKETBOT_ORG_PERSON_KEY``: ``mobile`` (default) or ``email``, the key that merges one person's
  WeCom and DingTalk identities when both directories are imported
- ``TICKETBOT_ALLOW_PLACEHOLDER_SECRETS``: 1 lets ``serve`` start with the demo's published secrets
  or placeholder API tokens (config/secret_check.py; a warning names each); by default it refuses
- ``TICKETBOT_LINK_SECRET``: the key that signs ticket-page links (at least 16 characters); unset, a
  random key is made at start (with a warning) and links stop working when ticketbot restarts
- ``TICKETBOT_LINK_TTL_HOURS``: how long a ticket-page link works (1 to 720 hours; default 24)
- ``TICKETBOT_WECOM_OAUTH_BASE``: where WeCom's OAuth page is (default https://open.weixin.qq.com),
  used to identify a person who opens the ticket page without a valid link
- ``TICKETBOT_FRAME_ANCESTORS``: space-separated origins allowed to show the ticket page in a frame
  (besides ticketbot itself), e.g. the emulator's chat page ``http://127.0.0.1:8081``; default none
- ``TICKETBOT_DUE_WORK_SECONDS``: how often (seconds, 1 to 3600; default 15) due work is done: timer
  transitions, SLA reminders, urges and escalations (0 turns it off in this process)
- ``TICKETBOT_CHAT_ARCHIVE_URL`` / ``_TOKEN`` / ``_SECONDS``: pull the chat archive (会话存档) from a
  getchatdata-like HTTP source into chat records every N seconds (default 60); off without the URL
- ``TICKETBOT_WECOM_JSSDK_URLS``: the WeCom JS-SDK scripts the work-order sidebar page loads

`describe()` returns the same list as data (name, default, meaning) for the README and ``--help``.
The default database is an absolute path computed from the working directory when the settings
are loaded, so a later ``chdir`` does not move the database. Empty variables count as unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config.errors import SettingsError
from config.platform_settings import (
    DINGTALK_API_BASE,
    DINGTALK_OAPI_BASE,
    ORG_SYNC_MAX_MINUTES,
    WECOM_API_BASE,
    WECOM_OAUTH_BASE,
    check_dingtalk,
    check_wecom,
    http_url,
)
from config.platform_settings import aes_key_problem as aes_key_problem  # re-exported
from config.workorder_settings import (
    CHAT_ARCHIVE_MAX_SECONDS,
    CHAT_ARCHIVE_SECONDS,
    WECOM_JSSDK_URLS,
    archive_url,
    check_archive,
    script_urls,
)

PREFIX = "TICKETBOT_"
DUE_WORK_SECONDS = 15
DUE_WORK_MAX_SECONDS = 3600
PACKAGE_DIR = Path(__file__).resolve().parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SN_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\Z")
_URL_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
WECOM_REQUIRED = ("wecom_corp_id", "wecom_token", "wecom_aes_key")
DINGTALK_CARD_CALLBACK_KEY = "ticketbot"
ORG_PERSON_KEYS = ("mobile", "email")
LINK_SECRET_MIN = 16
LINK_TTL_MAX_HOURS = 720  # 30 days: a link is a credential, it should not live for ever
_ORIGIN_RE = re.compile(
    r"https?://(\*\.)?([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?\Z|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?\Z"
)
SECRET_FIELDS = frozenset(
    (
        "wecom_secret",
        "wecom_token",
        "wecom_aes_key",
        "dingtalk_app_secret",
        "dingtalk_token",
        "dingtalk_aes_key",
        "link_secret",
        "chat_archive_token",
    )
)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    config_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    public_url: str = "http://127.0.0.1:8080"
    sn_prefix: str = "loonflow"
    api_strict_status: bool = False
    allow_placeholder_secrets: bool = False  # `serve` refuses demo/placeholder secrets unless this is set
    wecom_corp_id: str = ""
    wecom_agent_id: int | None = None
    wecom_secret: str = ""
    wecom_token: str = ""
    wecom_aes_key: str = ""
    wecom_api_base: str = WECOM_API_BASE
    wecom_replay_window: int = 0
    wecom_org_sync_minutes: int = 0
    wecom_customer_sync_minutes: int = 0
    dingtalk_app_key: str = ""
    dingtalk_app_secret: str = ""
    dingtalk_robot_code: str = ""
    dingtalk_token: str = ""
    dingtalk_aes_key: str = ""
    dingtalk_owner_key: str = ""  # "" becomes the app key
    dingtalk_card_template_id: str = ""
    dingtalk_card_callback_key: str = DINGTALK_CARD_CALLBACK_KEY
    dingtalk_corp_id: str = ""
    dingtalk_agent_id: int | None = None
    dingtalk_api_base: str = DINGTALK_API_BASE
    dingtalk_oapi_base: str = DINGTALK_OAPI_BASE
    dingtalk_org_sync_minutes: int = 0
    org_person_key: str = "mobile"
    link_secret: str = ""  # "" : a random key per process (links die with it)
    link_ttl_hours: int = 24
    wecom_oauth_base: str = WECOM_OAUTH_BASE
    frame_ancestors: tuple[str, ...] = ()
    due_work_seconds: int = 15
    chat_archive_url: str = ""  # "" : the chat archive is not pulled
    chat_archive_token: str = ""
    chat_archive_seconds: int = CHAT_ARCHIVE_SECONDS
    wecom_jssdk_urls: tuple[str, ...] = WECOM_JSSDK_URLS

    def __post_init__(self) -> None:
        if not self.dingtalk_owner_key and self.dingtalk_app_key:
            object.__setattr__(self, "dingtalk_owner_key", self.dingtalk_app_key)

    @property
    def wecom_enabled(self) -> bool:
        """WeCom callbacks are served: corp id, token and AES key are all set (load_settings refuses a
        partial set)."""
        return bool(self.wecom_corp_id and self.wecom_token and self.wecom_aes_key)

    @property
    def dingtalk_enabled(self) -> bool:
        """DingTalk is on: the app key and secret are both set (load_settings refuses one alone)."""
        return bool(self.dingtalk_app_key and self.dingtalk_app_secret)

    @property
    def dingtalk_events_enabled(self) -> bool:
        """The HTTP event subscription (/dingtalk/events) is served: DingTalk is on and the token and
        AES key are set."""
        return bool(self.dingtalk_enabled and self.dingtalk_token and self.dingtalk_aes_key)

    def __repr__(self) -> str:  # the database URL may carry a password; platform secrets never shown
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = "***" if value else ""
            elif f.name == "database_url":
                value = redact_url(value)
            elif f.name == "config_dir":
                value = str(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


@dataclass(frozen=True, slots=True)
class SettingDoc:
    name: str
    default: str
    meaning: str


def default_database_url(cwd: Path | None = None) -> str:
    path = ((cwd or Path.cwd()) / "var" / "ticketbot.db").resolve()
    return f"sqlite+aiosqlite:///{path.as_posix()}"


def describe() -> tuple[SettingDoc, ...]:
    """The documented environment variables: name, default, meaning."""
    return (
        SettingDoc(
            f"{PREFIX}DATABASE_URL",
            "sqlite+aiosqlite:///<cwd>/var/ticketbot.db",
            "SQLAlchemy async database URL; SQLite (aiosqlite) embedded, or postgresql+asyncpg://... "
            "to run several worker processes",
        ),
        SettingDoc(
            f"{PREFIX}CONFIG_DIR",
            "<the config package> (the shipped demo config)",
            "directory holding org.yaml, apps.yaml and workflows/*.yaml",
        ),
        SettingDoc(f"{PREFIX}HOST", "127.0.0.1", "address the HTTP server listens on"),
        SettingDoc(f"{PREFIX}PORT", "8080", "port the HTTP server listens on (1-65535)"),
        SettingDoc(f"{PREFIX}LOG_LEVEL", "INFO", f"log level: {', '.join(LOG_LEVELS)}"),
        SettingDoc(
            f"{PREFIX}PUBLIC_URL",
            "http://127.0.0.1:8080",
            "base URL under which chat platforms and people reach this service (callbacks, card links)",
        ),
        SettingDoc(
            f"{PREFIX}SN_PREFIX",
            "loonflow",
            "default ticket serial-number prefix ({prefix}_{YYYYMMDD}{NNNN}); an API app may set its own",
        ),
        SettingDoc(
            f"{PREFIX}API_STRICT_STATUS",
            "0",
            "1: API failures carry 4xx HTTP statuses; 0: always HTTP 200 with code -1, as loonflow does",
        ),
        SettingDoc(
            f"{PREFIX}ALLOW_PLACEHOLDER_SECRETS",
            "0",
            "1: let `serve` start with the demo's published secrets or placeholder tokens (local trials "
            "and benchmarks only; a warning names each one); 0: `serve` refuses to start with them",
        ),
        SettingDoc(
            f"{PREFIX}WECOM_CORP_ID",
            "(unset: WeCom off)",
            "WeCom CorpID; WeCom callbacks are served when CORP_ID, TOKEN and AES_KEY are all set",
        ),
        SettingDoc(f"{PREFIX}WECOM_AGENT_ID", "(unset)", "AgentId of the WeCom self-built app (an integer)"),
        SettingDoc(f"{PREFIX}WECOM_SECRET", "(unset)", "Secret of the WeCom self-built app (API calls)"),
        SettingDoc(f"{PREFIX}WECOM_TOKEN", "(unset)", "the callback Token set in the WeCom admin console"),
        SettingDoc(
            f"{PREFIX}WECOM_AES_KEY",
            "(unset)",
            "the callback EncodingAESKey (43 base64 characters that decode to 32 bytes)",
        ),
        SettingDoc(f"{PREFIX}WECOM_API_BASE", WECOM_API_BASE, "base URL of the WeCom server API"),
        SettingDoc(
            f"{PREFIX}WECOM_REPLAY_WINDOW",
            "0",
            "seconds a callback's timestamp may be off from our clock; 0 switches the check off",
        ),
        SettingDoc(
            f"{PREFIX}WECOM_ORG_SYNC_MINUTES",
            "0",
            "while serving, sync the directory from WeCom every N minutes (as `ticketbot org sync --from "
            f"wecom` does; first run shortly after start); 0 is off, at most {ORG_SYNC_MAX_MINUTES} (a week); "
            "needs WECOM_CORP_ID and WECOM_SECRET",
        ),
        SettingDoc(
            f"{PREFIX}WECOM_CUSTOMER_SYNC_MINUTES",
            "0",
            "while serving, reconcile every customer (WeCom external contact) with WeCom every N minutes, "
            "as `ticketbot customers sync` does: corrects what a missed change_external_contact callback "
            f"left; 0 is off, at most {ORG_SYNC_MAX_MINUTES} (a week); needs WECOM_CORP_ID and WECOM_SECRET",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_APP_KEY",
            "(unset: DingTalk off)",
            "AppKey (Client ID) of the DingTalk internal app; DingTalk is on when APP_KEY and APP_SECRET are "
            "both set (one alone is refused); TOKEN, AES_KEY, ROBOT_CODE, CARD_TEMPLATE_ID and "
            "ORG_SYNC_MINUTES need them",
        ),
        SettingDoc(f"{PREFIX}DINGTALK_APP_SECRET", "(unset)", "AppSecret of the DingTalk internal app"),
        SettingDoc(
            f"{PREFIX}DINGTALK_ROBOT_CODE", "(unset)", "robotCode of the app's robot (robot messages, cards)"
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_TOKEN",
            "(unset)",
            "the event subscription Token; with AES_KEY (both or neither) events are served at "
            "/dingtalk/events",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_AES_KEY",
            "(unset)",
            "the event subscription aes_key (43 base64 characters that decode to 32 bytes)",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_OWNER_KEY",
            "(the app key)",
            "the $key that ends a decrypted event: the AppKey for a subscription set in the developer "
            "console, the CorpId for one registered by API",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_CARD_TEMPLATE_ID", "(unset)", "cardTemplateId of the interactive card template"
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_CORP_ID",
            "(unset: not checked)",
            "the org's CorpId; when set, robot messages (chatbotCorpId / senderCorpId), card clicks and "
            "events naming another corp are refused",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_CARD_CALLBACK_KEY",
            DINGTALK_CARD_CALLBACK_KEY,
            "the callbackRouteKey under which the card click callback is registered",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_AGENT_ID",
            "(unset)",
            "AgentId of the DingTalk app (an integer); needed only for work notifications, the fallback channel",
        ),
        SettingDoc(f"{PREFIX}DINGTALK_API_BASE", DINGTALK_API_BASE, "base URL of the DingTalk API (v1.0)"),
        SettingDoc(
            f"{PREFIX}DINGTALK_OAPI_BASE",
            DINGTALK_OAPI_BASE,
            "base URL of the older DingTalk endpoints (oapi) still needed",
        ),
        SettingDoc(
            f"{PREFIX}DINGTALK_ORG_SYNC_MINUTES",
            "0",
            "while serving, sync the directory from DingTalk every N minutes; 0 is off, at most "
            f"{ORG_SYNC_MAX_MINUTES} (a week); needs DINGTALK_APP_KEY and DINGTALK_APP_SECRET",
        ),
        SettingDoc(
            f"{PREFIX}ORG_PERSON_KEY",
            "mobile",
            "mobile or email: the attribute that identifies one person across the WeCom and DingTalk "
            "directories, to merge their two identities when both are imported",
        ),
        SettingDoc(
            f"{PREFIX}LINK_SECRET",
            "(unset: a random key per process)",
            f"the key that signs ticket-page links (at least {LINK_SECRET_MIN} characters); unset, links stop "
            "working when ticketbot restarts (a warning says so at start)",
        ),
        SettingDoc(
            f"{PREFIX}LINK_TTL_HOURS",
            "24",
            f"how long a ticket-page link (in cards and chat replies) works, in hours (1 to {LINK_TTL_MAX_HOURS})",
        ),
        SettingDoc(
            f"{PREFIX}WECOM_OAUTH_BASE",
            WECOM_OAUTH_BASE,
            "base URL of WeCom's OAuth page (connect/oauth2/authorize): with WeCom on (and its SECRET and "
            "AGENT_ID), a person who opens the ticket page without a valid link is identified there",
        ),
        SettingDoc(
            f"{PREFIX}FRAME_ANCESTORS",
            "(none)",
            "space-separated origins (e.g. http://127.0.0.1:8081) that may show the ticket page in a frame, "
            "besides ticketbot itself",
        ),
        SettingDoc(
            f"{PREFIX}DUE_WORK_SECONDS",
            "15",
            "how often (seconds, 1-3600) due timer transitions, SLA reminders, urges and escalations are "
            "done; 0: not in this process",
        ),
        SettingDoc(
            f"{PREFIX}CHAT_ARCHIVE_URL",
            "(unset: not pulled)",
            "where the chat archive (会话存档) is read: an HTTP source answering GET <url>?seq=&limit= with "
            "WeCom getchatdata's decrypted messages (a sidecar around Tencent's native SDK; the demo: the "
            "emulator's /_emulator/archive); its 1:1 messages show in the work-order sidebar",
        ),
        SettingDoc(
            f"{PREFIX}CHAT_ARCHIVE_TOKEN",
            "(unset)",
            "a bearer token sent to CHAT_ARCHIVE_URL (Authorization: Bearer ...); needs CHAT_ARCHIVE_URL",
        ),
        SettingDoc(
            f"{PREFIX}CHAT_ARCHIVE_SECONDS",
            str(CHAT_ARCHIVE_SECONDS),
            f"how often (seconds, 1-{CHAT_ARCHIVE_MAX_SECONDS}) new archive messages are pulled into chat "
            "records (the sidebar also pulls when it opens)",
        ),
        SettingDoc(
            f"{PREFIX}WECOM_JSSDK_URLS",
            " ".join(WECOM_JSSDK_URLS),
            "space-separated URLs of the WeCom JS-SDK scripts (wx.agentConfig, wx.invoke) the work-order "
            "sidebar page (/sidebar/workorder, in the chat toolbar) loads, in order; the demo: the emulator's",
        ),
        SettingDoc(
            f"{PREFIX}APP_<NAME>_TOKEN",
            "(the token in apps.yaml)",
            "overrides the token of API app <NAME> (upper-cased, non-alphanumerics as _)",
        ),
    )


def format_help() -> str:
    """`describe()` as an aligned text table."""
    docs = describe()
    width = max(len(d.name) for d in docs)
    lines = []
    for d in docs:
        lines.append(f"  {d.name.ljust(width)}  {d.meaning}")
        lines.append(f"  {' ' * width}  default: {d.default}")
    return "\n".join(lines)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


_NAMES = tuple(f.name for f in fields(Settings))


def _origins(got: tuple[str, Any] | None, errors: list[str]) -> tuple[str, ...]:
    """TICKETBOT_FRAME_ANCESTORS: space-separated http(s) origins (an override may be a list)."""
    if got is None:
        return ()
    where, raw = got
    if isinstance(raw, list | tuple):
        raw = " ".join(str(x) for x in raw)
    if not isinstance(raw, str):
        errors.append(f"{where}: expected space-separated origins, got {type(raw).__name__}")
        return ()
    out: list[str] = []
    for item in raw.split():
        origin = item.rstrip("/")
        if not _ORIGIN_RE.match(origin):
            errors.append(
                f"{where}: '{item[:80]}' is not an origin (expected e.g. http://127.0.0.1:8081 or "
                "https://chat.example.com; separate several with spaces)"
            )
            continue
        out.append(origin)
    return tuple(dict.fromkeys(out))


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from `env` (default: os.environ); keyword overrides (field names) win over the environment.

    Raises SettingsError listing every bad value.
    """
    source = os.environ if env is None else env
    errors: list[str] = []
    unknown = sorted(set(overrides) - set(_NAMES))
    for name in unknown:
        errors.append(f"unknown setting '{name}' (known: {', '.join(_NAMES)})")

    def value(name: str) -> tuple[str, Any] | None:
        """(where it came from, raw value) or None when not given."""
        if name in overrides and overrides[name] is not None:
            return (f"{name} (override)", overrides[name])
        var = PREFIX + name.upper()
        raw = source.get(var)
        if raw is None or raw.strip() == "":
            return None
        return (var, raw.strip())

    def text(name: str, default: str) -> str:
        got = value(name)
        if got is None:
            return default
        where, raw = got
        if not isinstance(raw, str):
            errors.append(f"{where}: expected a string, got {type(raw).__name__}")
            return default
        return raw.strip()

    def integer(
        name: str, default: int | None, *, minimum: int, what: str, maximum: int | None = None
    ) -> int | None:
        got = value(name)
        if got is None:
            return default
        where, raw = got
        parsed: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            parsed = raw
        elif isinstance(raw, str) and raw.isdigit():
            parsed = int(raw)
        if parsed is None or parsed < minimum or (maximum is not None and parsed > maximum):
            errors.append(f"{where}: '{raw}' is not {what}")
            return default
        return parsed

    def base_url(name: str, default: str) -> str:
        return http_url(name, text(name, default), default, errors)

    database_url = text("database_url", "") or default_database_url()
    if not _URL_SCHEME_RE.match(database_url):
        errors.append(
            f"{PREFIX}DATABASE_URL: '{redact_url(database_url)}' is not a database URL "
            "(expected e.g. sqlite+aiosqlite:///var/ticketbot.db or postgresql+asyncpg://user:pw@host/db)"
        )

    config_dir = PACKAGE_DIR
    got_dir = value("config_dir")
    if got_dir is not None:
        where, raw = got_dir
        if not isinstance(raw, str | os.PathLike):
            errors.append(f"{where}: expected a path, got {type(raw).__name__}")
        else:
            config_dir = Path(raw).expanduser().resolve()
            if not config_dir.is_dir():
                errors.append(f"{where}: '{config_dir}' is not a directory")

    host = text("host", "127.0.0.1")
    if not host or any(c.isspace() for c in host):
        errors.append(f"{PREFIX}HOST: '{host}' is not a host name or address")

    port = 8080
    got_port = value("port")
    if got_port is not None:
        where, raw = got_port
        parsed: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            parsed = raw
        elif isinstance(raw, str) and raw.isdigit():
            parsed = int(raw)
        if parsed is None or not 1 <= parsed <= 65535:
            errors.append(f"{where}: '{raw}' is not a valid port (expected an integer from 1 to 65535)")
        else:
            port = parsed

    log_level = text("log_level", "INFO").upper()
    if log_level not in LOG_LEVELS:
        errors.append(f"{PREFIX}LOG_LEVEL: '{log_level}' is not a log level (one of {', '.join(LOG_LEVELS)})")

    public_url = http_url(
        "public_url", text("public_url", "http://127.0.0.1:8080"), "https://bot.example.com", errors
    )

    sn_prefix = text("sn_prefix", "loonflow")
    if not SN_PREFIX_RE.match(sn_prefix):
        errors.append(
            f"{PREFIX}SN_PREFIX: '{sn_prefix}' is not a valid prefix "
            "(a letter, then up to 31 letters, digits, '_' or '-')"
        )

    def boolean(name: str) -> bool:
        got = value(name)
        if got is None:
            return False
        where, raw = got
        flag = str(raw).strip().lower() if not isinstance(raw, bool) else ("1" if raw else "0")
        if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            errors.append(f"{where}: '{raw}' is not a boolean (use 1 or 0)")
        return flag in ("1", "true", "yes", "on")

    api_strict_status = boolean("api_strict_status")
    allow_placeholder_secrets = boolean("allow_placeholder_secrets")

    sync_what = f"a number of minutes (0 to {ORG_SYNC_MAX_MINUTES}, i.e. at most a week; 0 = off)"
    agent_id_what = "an agent id (a non-negative integer)"

    wecom_corp_id = text("wecom_corp_id", "")
    wecom_secret = text("wecom_secret", "")
    wecom_token = text("wecom_token", "")
    wecom_aes_key = text("wecom_aes_key", "")
    wecom_agent_id = integer("wecom_agent_id", None, minimum=0, what=agent_id_what)
    wecom_replay_window = integer(
        "wecom_replay_window", 0, minimum=0, what="a number of seconds (0 or more; 0 = off)"
    )
    wecom_org_sync_minutes = integer(
        "wecom_org_sync_minutes", 0, minimum=0, maximum=ORG_SYNC_MAX_MINUTES, what=sync_what
    )
    wecom_customer_sync_minutes = integer(
        "wecom_customer_sync_minutes", 0, minimum=0, maximum=ORG_SYNC_MAX_MINUTES, what=sync_what
    )
    check_wecom(
        corp_id=wecom_corp_id,
        secret=wecom_secret,
        token=wecom_token,
        aes_key=wecom_aes_key,
        org_sync_minutes=wecom_org_sync_minutes or 0,
        customer_sync_minutes=wecom_customer_sync_minutes or 0,
        errors=errors,
    )
    wecom_api_base = base_url("wecom_api_base", WECOM_API_BASE)

    dingtalk_app_key = text("dingtalk_app_key", "")
    dingtalk_app_secret = text("dingtalk_app_secret", "")
    dingtalk_robot_code = text("dingtalk_robot_code", "")
    dingtalk_token = text("dingtalk_token", "")
    dingtalk_aes_key = text("dingtalk_aes_key", "")
    dingtalk_card_template_id = text("dingtalk_card_template_id", "")
    dingtalk_owner_key = text("dingtalk_owner_key", "") or dingtalk_app_key
    dingtalk_card_callback_key = text("dingtalk_card_callback_key", DINGTALK_CARD_CALLBACK_KEY)
    dingtalk_corp_id = text("dingtalk_corp_id", "")
    dingtalk_agent_id = integer("dingtalk_agent_id", None, minimum=0, what=agent_id_what)
    dingtalk_org_sync_minutes = integer(
        "dingtalk_org_sync_minutes", 0, minimum=0, maximum=ORG_SYNC_MAX_MINUTES, what=sync_what
    )
    check_dingtalk(
        app_key=dingtalk_app_key,
        app_secret=dingtalk_app_secret,
        token=dingtalk_token,
        aes_key=dingtalk_aes_key,
        robot_code=dingtalk_robot_code,
        card_template_id=dingtalk_card_template_id,
        org_sync_minutes=dingtalk_org_sync_minutes or 0,
        errors=errors,
    )
    dingtalk_api_base = base_url("dingtalk_api_base", DINGTALK_API_BASE)
    dingtalk_oapi_base = base_url("dingtalk_oapi_base", DINGTALK_OAPI_BASE)

    org_person_key = text("org_person_key", "mobile").lower()
    if org_person_key not in ORG_PERSON_KEYS:
        errors.append(
            f"{PREFIX}ORG_PERSON_KEY: '{org_person_key}' is not a person key (one of {', '.join(ORG_PERSON_KEYS)})"
        )

    link_secret = text("link_secret", "")
    if link_secret and len(link_secret) < LINK_SECRET_MIN:
        errors.append(
            f"{PREFIX}LINK_SECRET: too short ({len(link_secret)} characters); use at least {LINK_SECRET_MIN} "
            "random characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    link_ttl_hours = integer(
        "link_ttl_hours",
        24,
        minimum=1,
        maximum=LINK_TTL_MAX_HOURS,
        what=f"a number of hours (1 to {LINK_TTL_MAX_HOURS}, i.e. at most 30 days)",
    )
    wecom_oauth_base = base_url("wecom_oauth_base", WECOM_OAUTH_BASE)
    frame_ancestors = _origins(value("frame_ancestors"), errors)
    due_work_seconds = integer(
        "due_work_seconds",
        DUE_WORK_SECONDS,
        minimum=0,
        maximum=DUE_WORK_MAX_SECONDS,
        what=f"a number of seconds (0 to {DUE_WORK_MAX_SECONDS}; 0 = off)",
    )

    chat_archive_url = archive_url(text("chat_archive_url", ""), errors)
    chat_archive_token = text("chat_archive_token", "")
    check_archive(chat_archive_url, chat_archive_token, errors)
    chat_archive_seconds = integer(
        "chat_archive_seconds",
        CHAT_ARCHIVE_SECONDS,
        minimum=1,
        maximum=CHAT_ARCHIVE_MAX_SECONDS,
        what=f"a number of seconds (1 to {CHAT_ARCHIVE_MAX_SECONDS})",
    )
    wecom_jssdk_urls = script_urls(value("wecom_jssdk_urls"), errors)

    if errors:
        raise SettingsError(errors)
    return Settings(
        chat_archive_url=chat_archive_url,
        chat_archive_token=chat_archive_token,
        chat_archive_seconds=chat_archive_seconds or CHAT_ARCHIVE_SECONDS,
        wecom_jssdk_urls=wecom_jssdk_urls,
        link_secret=link_secret,
        link_ttl_hours=link_ttl_hours or 24,
        wecom_oauth_base=wecom_oauth_base,
        frame_ancestors=frame_ancestors,
        due_work_seconds=DUE_WORK_SECONDS if due_work_seconds is None else due_work_seconds,
        wecom_corp_id=wecom_corp_id,
        wecom_agent_id=wecom_agent_id,
        wecom_secret=wecom_secret,
        wecom_token=wecom_token,
        wecom_aes_key=wecom_aes_key,
        wecom_api_base=wecom_api_base,
        wecom_replay_window=wecom_replay_window if wecom_replay_window is not None else 0,
        wecom_org_sync_minutes=wecom_org_sync_minutes or 0,
        wecom_customer_sync_minutes=wecom_customer_sync_minutes or 0,
        dingtalk_app_key=dingtalk_app_key,
        dingtalk_app_secret=dingtalk_app_secret,
        dingtalk_robot_code=dingtalk_robot_code,
        dingtalk_token=dingtalk_token,
        dingtalk_aes_key=dingtalk_aes_key,
        dingtalk_card_template_id=dingtalk_card_template_id,
        dingtalk_owner_key=dingtalk_owner_key,
        dingtalk_card_callback_key=dingtalk_card_callback_key,
        dingtalk_corp_id=dingtalk_corp_id,
        dingtalk_agent_id=dingtalk_agent_id,
        dingtalk_api_base=dingtalk_api_base,
        dingtalk_oapi_base=dingtalk_oapi_base,
        dingtalk_org_sync_minutes=dingtalk_org_sync_minutes or 0,
        org_person_key=org_person_key,
        api_strict_status=api_strict_status,
        allow_placeholder_secrets=allow_placeholder_secrets,
        database_url=database_url,
        config_dir=config_dir,
        host=host,
        port=port,
        log_level=log_level,
        public_url=public_url,
        sn_prefix=sn_prefix,
    )
