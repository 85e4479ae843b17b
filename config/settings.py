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

`describe()` returns the same list as data (name, default, meaning) for the README and ``--help``.
The default database is an absolute path computed from the working directory when the settings
are loaded, so a later ``chdir`` does not move the database. Empty variables count as unset.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config.errors import SettingsError

PREFIX = "TICKETBOT_"
PACKAGE_DIR = Path(__file__).resolve().parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SN_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\Z")
_URL_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
WECOM_API_BASE = "https://qyapi.weixin.qq.com"
WECOM_REQUIRED = ("wecom_corp_id", "wecom_token", "wecom_aes_key")
ORG_SYNC_MAX_MINUTES = 7 * 24 * 60  # a week; a longer period is a typo, not a schedule


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
    wecom_corp_id: str = ""
    wecom_agent_id: int | None = None
    wecom_secret: str = ""
    wecom_token: str = ""
    wecom_aes_key: str = ""
    wecom_api_base: str = WECOM_API_BASE
    wecom_replay_window: int = 0
    wecom_org_sync_minutes: int = 0

    @property
    def wecom_enabled(self) -> bool:
        """WeCom callbacks are served: corp id, token and AES key are all set (load_settings refuses a
        partial set)."""
        return bool(self.wecom_corp_id and self.wecom_token and self.wecom_aes_key)

    def __repr__(self) -> str:  # the database URL may carry a password; WeCom secrets never shown
        def hidden(value: str) -> str:
            return "'***'" if value else "''"

        return (
            f"Settings(database_url={redact_url(self.database_url)!r}, config_dir={str(self.config_dir)!r}, "
            f"host={self.host!r}, port={self.port}, log_level={self.log_level!r}, "
            f"public_url={self.public_url!r}, sn_prefix={self.sn_prefix!r}, "
            f"api_strict_status={self.api_strict_status}, wecom_corp_id={self.wecom_corp_id!r}, "
            f"wecom_agent_id={self.wecom_agent_id!r}, wecom_secret={hidden(self.wecom_secret)}, "
            f"wecom_token={hidden(self.wecom_token)}, wecom_aes_key={hidden(self.wecom_aes_key)}, "
            f"wecom_api_base={self.wecom_api_base!r}, wecom_replay_window={self.wecom_replay_window}, "
            f"wecom_org_sync_minutes={self.wecom_org_sync_minutes})"
        )


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

    public_url = text("public_url", "http://127.0.0.1:8080").rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(
            f"{PREFIX}PUBLIC_URL: '{public_url}' is not an http(s) URL (e.g. https://bot.example.com)"
        )

    sn_prefix = text("sn_prefix", "loonflow")
    if not SN_PREFIX_RE.match(sn_prefix):
        errors.append(
            f"{PREFIX}SN_PREFIX: '{sn_prefix}' is not a valid prefix "
            "(a letter, then up to 31 letters, digits, '_' or '-')"
        )

    api_strict_status = False
    got_strict = value("api_strict_status")
    if got_strict is not None:
        where, raw = got_strict
        flag = str(raw).strip().lower() if not isinstance(raw, bool) else ("1" if raw else "0")
        if flag in ("1", "true", "yes", "on"):
            api_strict_status = True
        elif flag not in ("0", "false", "no", "off"):
            errors.append(f"{where}: '{raw}' is not a boolean (use 1 or 0)")

    wecom_corp_id = text("wecom_corp_id", "")
    wecom_secret = text("wecom_secret", "")
    wecom_token = text("wecom_token", "")
    wecom_aes_key = text("wecom_aes_key", "")
    if wecom_aes_key:
        problem = aes_key_problem(wecom_aes_key)
        if problem:
            errors.append(f"{PREFIX}WECOM_AES_KEY: {problem}")
    given = {"wecom_corp_id": wecom_corp_id, "wecom_token": wecom_token, "wecom_aes_key": wecom_aes_key}
    missing = [PREFIX + name.upper() for name in WECOM_REQUIRED if not given[name]]
    if 0 < len(missing) < len(WECOM_REQUIRED):
        present = [PREFIX + name.upper() for name in WECOM_REQUIRED if given[name]]
        errors.append(
            f"WeCom is partly configured: {', '.join(present)} set but {', '.join(missing)} missing "
            f"(set all of {', '.join(PREFIX + n.upper() for n in WECOM_REQUIRED)}, or none)"
        )

    wecom_agent_id = integer("wecom_agent_id", None, minimum=0, what="an agent id (a non-negative integer)")
    wecom_replay_window = integer(
        "wecom_replay_window", 0, minimum=0, what="a number of seconds (0 or more; 0 = off)"
    )
    wecom_org_sync_minutes = integer(
        "wecom_org_sync_minutes",
        0,
        minimum=0,
        maximum=ORG_SYNC_MAX_MINUTES,
        what=f"a number of minutes (0 to {ORG_SYNC_MAX_MINUTES}, i.e. at most a week; 0 = off)",
    )
    if wecom_org_sync_minutes:
        lacking = [
            PREFIX + name.upper()
            for name, got in (("wecom_corp_id", wecom_corp_id), ("wecom_secret", wecom_secret))
            if not got
        ]
        if lacking:
            errors.append(
                f"{PREFIX}WECOM_ORG_SYNC_MINUTES is {wecom_org_sync_minutes} but {', '.join(lacking)} "
                f"{'is' if len(lacking) == 1 else 'are'} not set: the scheduled directory sync needs the WeCom corp id and the app secret "
                "(set them, or set TICKETBOT_WECOM_ORG_SYNC_MINUTES=0)"
            )
    wecom_api_base = text("wecom_api_base", WECOM_API_BASE).rstrip("/")
    api_parts = urlsplit(wecom_api_base)
    if api_parts.scheme not in ("http", "https") or not api_parts.netloc:
        errors.append(
            f"{PREFIX}WECOM_API_BASE: '{wecom_api_base}' is not an http(s) URL (e.g. {WECOM_API_BASE})"
        )

    if errors:
        raise SettingsError(errors)
    return Settings(
        wecom_corp_id=wecom_corp_id,
        wecom_agent_id=wecom_agent_id,
        wecom_secret=wecom_secret,
        wecom_token=wecom_token,
        wecom_aes_key=wecom_aes_key,
        wecom_api_base=wecom_api_base,
        wecom_replay_window=wecom_replay_window if wecom_replay_window is not None else 0,
        wecom_org_sync_minutes=wecom_org_sync_minutes or 0,
        api_strict_status=api_strict_status,
        database_url=database_url,
        config_dir=config_dir,
        host=host,
        port=port,
        log_level=log_level,
        public_url=public_url,
        sn_prefix=sn_prefix,
    )
