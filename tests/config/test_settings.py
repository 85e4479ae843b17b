"""Settings from TICKETBOT_* environment variables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.errors import ConfigError, SettingsError
from config.settings import PACKAGE_DIR, Settings, describe, format_help, load_settings, redact_url


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'var' / 'ticketbot.db').resolve().as_posix()}"
    assert s.database_url.startswith("sqlite+aiosqlite:////")  # an absolute path
    assert s.config_dir == PACKAGE_DIR
    assert (s.config_dir / "org.yaml").exists()
    assert (s.host, s.port, s.log_level) == ("127.0.0.1", 8080, "INFO")
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.sn_prefix == "loonflow"


def test_from_env(tmp_path: Path) -> None:
    env = {
        "TICKETBOT_DATABASE_URL": "postgresql+asyncpg://bot:pw@db/ticketbot",
        "TICKETBOT_CONFIG_DIR": str(tmp_path),
        "TICKETBOT_HOST": "10.0.0.5",
        "TICKETBOT_PORT": "9000",
        "TICKETBOT_LOG_LEVEL": "debug",
        "TICKETBOT_PUBLIC_URL": "https://bot.example.com/",
        "TICKETBOT_SN_PREFIX": "itsm",
        "UNRELATED": "x",
    }
    s = load_settings(env)
    assert s == Settings(
        database_url="postgresql+asyncpg://bot:pw@db/ticketbot",
        config_dir=tmp_path.resolve(),
        host="10.0.0.5",
        port=9000,
        log_level="DEBUG",
        public_url="https://bot.example.com",
        sn_prefix="itsm",
    )
    assert "pw" not in repr(s)


def test_overrides_win(tmp_path: Path) -> None:
    s = load_settings({"TICKETBOT_PORT": "9000"}, port=9100, config_dir=tmp_path)
    assert s.port == 9100 and s.config_dir == tmp_path.resolve()


def test_empty_values_mean_default() -> None:
    assert load_settings({"TICKETBOT_PORT": "", "TICKETBOT_HOST": "  "}).port == 8080


def test_frozen() -> None:
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"TICKETBOT_PORT": "http"},
            "TICKETBOT_PORT: 'http' is not a valid port (expected an integer from 1 to 65535)",
        ),
        (
            {"TICKETBOT_PORT": "70000"},
            "TICKETBOT_PORT: '70000' is not a valid port (expected an integer from 1 to 65535)",
        ),
        (
            {"TICKETBOT_PORT": "0"},
            "TICKETBOT_PORT: '0' is not a valid port (expected an integer from 1 to 65535)",
        ),
        ({"TICKETBOT_LOG_LEVEL": "loud"}, "TICKETBOT_LOG_LEVEL: 'LOUD' is not a log level"),
        (
            {"TICKETBOT_PUBLIC_URL": "bot.example.com"},
            "TICKETBOT_PUBLIC_URL: 'bot.example.com' is not an http(s) URL",
        ),
        ({"TICKETBOT_SN_PREFIX": "my prefix"}, "TICKETBOT_SN_PREFIX: 'my prefix' is not a valid prefix"),
        (
            {"TICKETBOT_DATABASE_URL": "ticketbot.db"},
            "TICKETBOT_DATABASE_URL: 'ticketbot.db' is not a database URL",
        ),
        (
            {"TICKETBOT_CONFIG_DIR": "/nonexistent/ticketbot"},
            "TICKETBOT_CONFIG_DIR: '/nonexistent/ticketbot' is not a",
        ),
    ],
)
def test_bad_values(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert isinstance(info.value, ConfigError)
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors


def test_all_bad_values_are_reported() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"TICKETBOT_PORT": "x", "TICKETBOT_LOG_LEVEL": "y"})
    assert len(info.value.errors) == 2


def test_bad_override() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({}, prot=1, port=-1)
    assert info.value.errors[0].startswith("unknown setting 'prot'")
    assert (
        info.value.errors[1]
        == "port (override): '-1' is not a valid port (expected an integer from 1 to 65535)"
    )


def test_redact_url() -> None:
    assert (
        redact_url("postgresql+asyncpg://bot:hunter2@db:5432/x") == "postgresql+asyncpg://bot:***@db:5432/x"
    )
    assert redact_url("sqlite+aiosqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"


def test_describe_documents_every_setting() -> None:
    docs = describe()
    names = {d.name for d in docs}
    for f in dataclasses.fields(Settings):
        assert f"TICKETBOT_{f.name.upper()}" in names
    assert "TICKETBOT_APP_<NAME>_TOKEN" in names
    assert all(d.default and d.meaning for d in docs)
    port = next(d for d in docs if d.name == "TICKETBOT_PORT")
    assert port.default == "8080"
    assert "TICKETBOT_DATABASE_URL" in format_help()


AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # WeCom's sample EncodingAESKey (43 chars)
WECOM_ENV = {
    "TICKETBOT_WECOM_CORP_ID": "wwcorp123",
    "TICKETBOT_WECOM_AGENT_ID": "1000002",
    "TICKETBOT_WECOM_SECRET": "s3cret-app-secret",
    "TICKETBOT_WECOM_TOKEN": "tok-en-123",
    "TICKETBOT_WECOM_AES_KEY": AES_KEY,
}


def test_wecom_is_off_by_default() -> None:
    s = load_settings({})
    assert not s.wecom_enabled
    assert (s.wecom_corp_id, s.wecom_agent_id, s.wecom_secret, s.wecom_token, s.wecom_aes_key) == (
        "",
        None,
        "",
        "",
        "",
    )
    assert s.wecom_api_base == "https://qyapi.weixin.qq.com"
    assert s.wecom_replay_window == 0


def test_wecom_from_env() -> None:
    s = load_settings(
        {
            **WECOM_ENV,
            "TICKETBOT_WECOM_API_BASE": "http://127.0.0.1:9001/",
            "TICKETBOT_WECOM_REPLAY_WINDOW": "300",
        }
    )
    assert s.wecom_enabled
    assert s.wecom_corp_id == "wwcorp123" and s.wecom_agent_id == 1000002
    assert s.wecom_secret == "s3cret-app-secret" and s.wecom_token == "tok-en-123"
    assert s.wecom_aes_key == AES_KEY
    assert s.wecom_api_base == "http://127.0.0.1:9001"
    assert s.wecom_replay_window == 300


def test_wecom_secrets_never_in_repr() -> None:
    text = repr(load_settings(WECOM_ENV))
    for secret in ("s3cret-app-secret", "tok-en-123", AES_KEY):
        assert secret not in text
    assert "wwcorp123" in text and "wecom_secret='***'" in text


def test_wecom_partial_set_names_the_missing_ones() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"TICKETBOT_WECOM_CORP_ID": "wwcorp123", "TICKETBOT_WECOM_AES_KEY": AES_KEY})
    (error,) = info.value.errors
    assert "TICKETBOT_WECOM_TOKEN missing" in error
    assert "TICKETBOT_WECOM_CORP_ID, TICKETBOT_WECOM_AES_KEY set" in error


def test_wecom_secret_and_agent_id_alone_do_not_enable_it() -> None:
    s = load_settings({"TICKETBOT_WECOM_SECRET": "x", "TICKETBOT_WECOM_AGENT_ID": "5"})
    assert not s.wecom_enabled


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (AES_KEY[:-1], "TICKETBOT_WECOM_AES_KEY: 42 characters long; expected the platform's EncodingAESKey"),
        (AES_KEY[:-1] + "!", "TICKETBOT_WECOM_AES_KEY: not base64; expected"),
        ("=" * 43, "TICKETBOT_WECOM_AES_KEY: not base64; expected"),
    ],
)
def test_wecom_aes_key_is_validated(key: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**WECOM_ENV, "TICKETBOT_WECOM_AES_KEY": key})
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors
    assert all(key not in e for e in info.value.errors)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TICKETBOT_WECOM_AGENT_ID": "app"}, "TICKETBOT_WECOM_AGENT_ID: 'app' is not an agent id"),
        ({"TICKETBOT_WECOM_REPLAY_WINDOW": "-5"}, "TICKETBOT_WECOM_REPLAY_WINDOW: '-5' is not a number"),
        ({"TICKETBOT_WECOM_API_BASE": "qyapi.weixin.qq.com"}, "TICKETBOT_WECOM_API_BASE: 'qyapi"),
    ],
)
def test_wecom_bad_values(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**WECOM_ENV, **env})
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors


def test_describe_documents_wecom() -> None:
    names = {d.name for d in describe()}
    assert {
        "TICKETBOT_WECOM_CORP_ID",
        "TICKETBOT_WECOM_AGENT_ID",
        "TICKETBOT_WECOM_SECRET",
        "TICKETBOT_WECOM_TOKEN",
        "TICKETBOT_WECOM_AES_KEY",
        "TICKETBOT_WECOM_API_BASE",
        "TICKETBOT_WECOM_REPLAY_WINDOW",
    } <= names


def test_wecom_org_sync_is_off_by_default_and_takes_minutes() -> None:
    assert load_settings({}).wecom_org_sync_minutes == 0
    assert load_settings({**WECOM_ENV, "TICKETBOT_WECOM_ORG_SYNC_MINUTES": "0"}).wecom_org_sync_minutes == 0
    s = load_settings({**WECOM_ENV, "TICKETBOT_WECOM_ORG_SYNC_MINUTES": " 60 "})
    assert s.wecom_org_sync_minutes == 60 and "wecom_org_sync_minutes=60" in repr(s)
    week = load_settings({**WECOM_ENV, "TICKETBOT_WECOM_ORG_SYNC_MINUTES": "10080"})
    assert week.wecom_org_sync_minutes == 10080
    assert load_settings({}, wecom_org_sync_minutes=0).wecom_org_sync_minutes == 0


@pytest.mark.parametrize(
    "raw",
    ["-5", "10081", "99999999", "1.5", "hourly", "0x10"],
)
def test_wecom_org_sync_minutes_out_of_range_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**WECOM_ENV, "TICKETBOT_WECOM_ORG_SYNC_MINUTES": raw})
    assert info.value.errors == [
        f"TICKETBOT_WECOM_ORG_SYNC_MINUTES: '{raw}' is not a number of minutes "
        "(0 to 10080, i.e. at most a week; 0 = off)"
    ]


@pytest.mark.parametrize(
    ("env", "lacking"),
    [
        ({}, "TICKETBOT_WECOM_CORP_ID, TICKETBOT_WECOM_SECRET are not set"),
        (
            {k: v for k, v in WECOM_ENV.items() if k != "TICKETBOT_WECOM_SECRET"},
            "TICKETBOT_WECOM_SECRET is not set",
        ),
        ({"TICKETBOT_WECOM_SECRET": "s3cret-app-secret"}, "TICKETBOT_WECOM_CORP_ID is not set"),
    ],
)
def test_wecom_org_sync_needs_the_corp_id_and_secret(env: dict[str, str], lacking: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**env, "TICKETBOT_WECOM_ORG_SYNC_MINUTES": "30"})
    (error,) = info.value.errors
    assert error.startswith(f"TICKETBOT_WECOM_ORG_SYNC_MINUTES is 30 but {lacking}")
    assert "s3cret-app-secret" not in error


def test_wecom_org_sync_is_documented() -> None:
    doc = next(d for d in describe() if d.name == "TICKETBOT_WECOM_ORG_SYNC_MINUTES")
    assert doc.default == "0" and "10080" in doc.meaning and "0 is off" in doc.meaning
    assert "TICKETBOT_WECOM_ORG_SYNC_MINUTES" in format_help()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "TICKETBOT_WECOM_ORG_SYNC_MINUTES" in readme
