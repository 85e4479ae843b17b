"""Settings from TICKETBOT_* environment variables."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import config.settings as settings_module
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


def test_wecom_customer_sync_is_off_by_default_and_takes_minutes_up_to_a_week() -> None:
    assert load_settings({}).wecom_customer_sync_minutes == 0
    s = load_settings({**WECOM_ENV, "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES": " 120 "})
    assert s.wecom_customer_sync_minutes == 120 and "wecom_customer_sync_minutes=120" in repr(s)
    assert s.wecom_org_sync_minutes == 0
    week = load_settings({**WECOM_ENV, "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES": "10080"})
    assert week.wecom_customer_sync_minutes == 10080
    for raw in ("-5", "10081", "1.5", "hourly"):
        with pytest.raises(SettingsError) as info:
            load_settings({**WECOM_ENV, "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES": raw})
        assert info.value.errors == [
            f"TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES: '{raw}' is not a number of minutes "
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
    ],
)
def test_wecom_customer_sync_needs_the_corp_id_and_secret(env: dict[str, str], lacking: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**env, "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES": "30"})
    (error,) = info.value.errors
    assert error.startswith(
        f"TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES is 30 but {lacking}: the scheduled customer sync"
    )
    assert error.endswith("(set them, or set TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES=0)")
    assert "s3cret-app-secret" not in error


def test_wecom_customer_sync_is_documented() -> None:
    name = "TICKETBOT_WECOM_CUSTOMER_SYNC_MINUTES"
    doc = next(d for d in describe() if d.name == name)
    assert doc.default == "0" and "10080" in doc.meaning and "0 is off" in doc.meaning
    assert "customers sync" in doc.meaning
    assert name in format_help()
    assert name in (settings_module.__doc__ or "")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert name in readme and "ticketbot customers sync" in readme


DINGTALK_ENV = {
    "TICKETBOT_DINGTALK_APP_KEY": "dingappkey123",
    "TICKETBOT_DINGTALK_APP_SECRET": "ding-s3cret-app-secret",
}
DINGTALK_EVENTS_ENV = {
    **DINGTALK_ENV,
    "TICKETBOT_DINGTALK_TOKEN": "ding-tok-en-456",
    "TICKETBOT_DINGTALK_AES_KEY": AES_KEY,
}
DINGTALK_SECRETS = ("ding-s3cret-app-secret", "ding-tok-en-456", AES_KEY)


def test_dingtalk_is_off_by_default() -> None:
    s = load_settings({})
    assert not s.dingtalk_enabled and not s.dingtalk_events_enabled
    assert (
        s.dingtalk_app_key,
        s.dingtalk_app_secret,
        s.dingtalk_robot_code,
        s.dingtalk_token,
        s.dingtalk_aes_key,
        s.dingtalk_owner_key,
        s.dingtalk_card_template_id,
    ) == ("", "", "", "", "", "", "")
    assert s.dingtalk_agent_id is None
    assert s.dingtalk_card_callback_key == "ticketbot"
    assert s.dingtalk_api_base == "https://api.dingtalk.com"
    assert s.dingtalk_oapi_base == "https://oapi.dingtalk.com"
    assert s.dingtalk_org_sync_minutes == 0
    assert s.org_person_key == "mobile"


def test_dingtalk_app_credentials_turn_it_on() -> None:
    s = load_settings(DINGTALK_ENV)
    assert s.dingtalk_enabled and not s.dingtalk_events_enabled
    assert s.dingtalk_app_key == "dingappkey123" and s.dingtalk_app_secret == "ding-s3cret-app-secret"
    assert s.dingtalk_owner_key == "dingappkey123"  # the owner key defaults to the app key
    assert not s.wecom_enabled


def test_dingtalk_from_env() -> None:
    s = load_settings(
        {
            **DINGTALK_EVENTS_ENV,
            "TICKETBOT_DINGTALK_ROBOT_CODE": " dingrobot789 ",
            "TICKETBOT_DINGTALK_OWNER_KEY": "dingcorp42",
            "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID": "tpl-1.schema",
            "TICKETBOT_DINGTALK_CARD_CALLBACK_KEY": "ticketbot-prod",
            "TICKETBOT_DINGTALK_AGENT_ID": "3001234",
            "TICKETBOT_DINGTALK_API_BASE": "http://127.0.0.1:9002/",
            "TICKETBOT_DINGTALK_OAPI_BASE": "http://127.0.0.1:9002/oapi//",
            "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES": "120",
            "TICKETBOT_ORG_PERSON_KEY": "email",
        }
    )
    assert s.dingtalk_enabled and s.dingtalk_events_enabled
    assert s.dingtalk_token == "ding-tok-en-456" and s.dingtalk_aes_key == AES_KEY
    assert s.dingtalk_robot_code == "dingrobot789"
    assert s.dingtalk_owner_key == "dingcorp42"
    assert s.dingtalk_card_template_id == "tpl-1.schema"
    assert s.dingtalk_card_callback_key == "ticketbot-prod"
    assert s.dingtalk_agent_id == 3001234
    assert s.dingtalk_api_base == "http://127.0.0.1:9002"
    assert s.dingtalk_oapi_base == "http://127.0.0.1:9002/oapi"
    assert s.dingtalk_org_sync_minutes == 120
    assert s.org_person_key == "email"


def test_dingtalk_overrides_and_direct_construction_resolve_the_owner_key(tmp_path: Path) -> None:
    s = load_settings({}, dingtalk_app_key="k1", dingtalk_app_secret="s1", dingtalk_agent_id=7)
    assert s.dingtalk_enabled and s.dingtalk_owner_key == "k1" and s.dingtalk_agent_id == 7
    direct = Settings(database_url="sqlite+aiosqlite://", config_dir=tmp_path, dingtalk_app_key="k2")
    assert direct.dingtalk_owner_key == "k2"
    assert Settings(database_url="x://", config_dir=tmp_path).dingtalk_owner_key == ""


def test_wecom_and_dingtalk_together() -> None:
    s = load_settings({**WECOM_ENV, **DINGTALK_EVENTS_ENV})
    assert s.wecom_enabled and s.dingtalk_enabled and s.dingtalk_events_enabled


def test_dingtalk_secrets_never_in_repr() -> None:
    text = repr(load_settings({**DINGTALK_EVENTS_ENV, "TICKETBOT_DINGTALK_ROBOT_CODE": "dingrobot789"}))
    for secret in DINGTALK_SECRETS:
        assert secret not in text
    for hidden in ("dingtalk_app_secret", "dingtalk_token", "dingtalk_aes_key"):
        assert f"{hidden}='***'" in text
    assert "dingtalk_app_key='dingappkey123'" in text and "dingtalk_owner_key='dingappkey123'" in text
    assert "dingtalk_robot_code='dingrobot789'" in text
    assert "dingtalk_app_secret=''" in repr(load_settings({}))


def test_repr_names_every_field() -> None:
    text = repr(load_settings(DINGTALK_ENV))
    for f in dataclasses.fields(Settings):
        assert f" {f.name}=" in text or text.startswith(f"Settings({f.name}=")


@pytest.mark.parametrize(
    ("env", "present", "missing"),
    [
        ({"TICKETBOT_DINGTALK_APP_KEY": "dingappkey123"}, "APP_KEY", "APP_SECRET"),
        ({"TICKETBOT_DINGTALK_APP_SECRET": "ding-s3cret-app-secret"}, "APP_SECRET", "APP_KEY"),
        (
            {
                "TICKETBOT_DINGTALK_APP_KEY": "dingappkey123",
                "TICKETBOT_DINGTALK_TOKEN": "t",
                "TICKETBOT_DINGTALK_AES_KEY": AES_KEY,
            },
            "APP_KEY",
            "APP_SECRET",
        ),
    ],
)
def test_dingtalk_partial_credentials_are_refused(env: dict[str, str], present: str, missing: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    (error,) = info.value.errors  # the settings needing the credentials are not reported again
    assert error == (
        f"DingTalk is partly configured: TICKETBOT_DINGTALK_{present} set but TICKETBOT_DINGTALK_{missing} "
        "missing (set both, or neither)"
    )


@pytest.mark.parametrize(
    ("env", "present", "missing"),
    [
        ({"TICKETBOT_DINGTALK_TOKEN": "ding-tok-en-456"}, "TOKEN", "AES_KEY"),
        ({"TICKETBOT_DINGTALK_AES_KEY": AES_KEY}, "AES_KEY", "TOKEN"),
    ],
)
def test_dingtalk_token_and_aes_key_go_together(env: dict[str, str], present: str, missing: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**DINGTALK_ENV, **env})
    (error,) = info.value.errors
    assert error == (
        f"The DingTalk event subscription is partly configured: TICKETBOT_DINGTALK_{present} set but "
        f"TICKETBOT_DINGTALK_{missing} missing (set both, or neither: together they serve the HTTP event "
        "subscription at /dingtalk/events)"
    )
    assert all(secret not in error for secret in DINGTALK_SECRETS)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"TICKETBOT_DINGTALK_TOKEN": "ding-tok-en-456", "TICKETBOT_DINGTALK_AES_KEY": AES_KEY},
            "TICKETBOT_DINGTALK_TOKEN, TICKETBOT_DINGTALK_AES_KEY are set",
        ),
        ({"TICKETBOT_DINGTALK_ROBOT_CODE": "dingrobot789"}, "TICKETBOT_DINGTALK_ROBOT_CODE is set"),
        ({"TICKETBOT_DINGTALK_CARD_TEMPLATE_ID": "tpl-1"}, "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID is set"),
    ],
)
def test_dingtalk_settings_without_the_app_credentials_are_refused(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    (error,) = info.value.errors
    assert error.startswith(
        f"{named} but TICKETBOT_DINGTALK_APP_KEY and TICKETBOT_DINGTALK_APP_SECRET are not: "
        "DingTalk needs the app's credentials"
    )
    assert all(secret not in error for secret in DINGTALK_SECRETS)


def test_dingtalk_token_alone_without_credentials_reports_both_problems() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"TICKETBOT_DINGTALK_TOKEN": "ding-tok-en-456"})
    assert len(info.value.errors) == 2
    assert info.value.errors[0].startswith("The DingTalk event subscription is partly configured")
    assert info.value.errors[1].startswith("TICKETBOT_DINGTALK_TOKEN is set but TICKETBOT_DINGTALK_APP_KEY")
    assert all("ding-tok-en-456" not in e for e in info.value.errors)


def test_dingtalk_optional_settings_alone_do_not_enable_it() -> None:
    s = load_settings(
        {
            "TICKETBOT_DINGTALK_AGENT_ID": "5",
            "TICKETBOT_DINGTALK_OWNER_KEY": "dingcorp42",
            "TICKETBOT_DINGTALK_CARD_CALLBACK_KEY": "cb",
            "TICKETBOT_DINGTALK_API_BASE": "http://127.0.0.1:9002",
        }
    )
    assert not s.dingtalk_enabled and s.dingtalk_owner_key == "dingcorp42"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            AES_KEY[:-1],
            "TICKETBOT_DINGTALK_AES_KEY: 42 characters long; expected the platform's EncodingAESKey",
        ),
        (AES_KEY[:-1] + "!", "TICKETBOT_DINGTALK_AES_KEY: not base64; expected"),
    ],
)
def test_dingtalk_aes_key_is_validated(key: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**DINGTALK_EVENTS_ENV, "TICKETBOT_DINGTALK_AES_KEY": key})
    assert [e for e in info.value.errors if e.startswith(expected)], info.value.errors
    assert all(key not in e for e in info.value.errors)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"TICKETBOT_DINGTALK_AGENT_ID": "app"},
            "TICKETBOT_DINGTALK_AGENT_ID: 'app' is not an agent id (a non-negative integer)",
        ),
        (
            {"TICKETBOT_DINGTALK_AGENT_ID": "-1"},
            "TICKETBOT_DINGTALK_AGENT_ID: '-1' is not an agent id (a non-negative integer)",
        ),
        (
            {"TICKETBOT_DINGTALK_API_BASE": "api.dingtalk.com"},
            "TICKETBOT_DINGTALK_API_BASE: 'api.dingtalk.com' is not an http(s) URL (e.g. https://api.dingtalk.com)",
        ),
        (
            {"TICKETBOT_DINGTALK_OAPI_BASE": "ftp://oapi.dingtalk.com/"},
            "TICKETBOT_DINGTALK_OAPI_BASE: 'ftp://oapi.dingtalk.com' is not an http(s) URL "
            "(e.g. https://oapi.dingtalk.com)",
        ),
        (
            {"TICKETBOT_ORG_PERSON_KEY": "phone"},
            "TICKETBOT_ORG_PERSON_KEY: 'phone' is not a person key (one of mobile, email)",
        ),
        (
            {"TICKETBOT_ORG_PERSON_KEY": "userid"},
            "TICKETBOT_ORG_PERSON_KEY: 'userid' is not a person key (one of mobile, email)",
        ),
    ],
)
def test_dingtalk_bad_values(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**DINGTALK_ENV, **env})
    assert info.value.errors == [expected]


def test_org_person_key_ignores_case_and_space() -> None:
    assert load_settings({"TICKETBOT_ORG_PERSON_KEY": " Email "}).org_person_key == "email"
    assert load_settings({"TICKETBOT_ORG_PERSON_KEY": "MOBILE"}).org_person_key == "mobile"


def test_dingtalk_org_sync_takes_minutes() -> None:
    assert (
        load_settings({**DINGTALK_ENV, "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES": "0"}).dingtalk_org_sync_minutes
        == 0
    )
    week = load_settings({**DINGTALK_ENV, "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES": "10080"})
    assert week.dingtalk_org_sync_minutes == 10080 and "dingtalk_org_sync_minutes=10080" in repr(week)


@pytest.mark.parametrize("raw", ["-5", "10081", "1.5", "hourly"])
def test_dingtalk_org_sync_minutes_out_of_range_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({**DINGTALK_ENV, "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES": raw})
    assert info.value.errors == [
        f"TICKETBOT_DINGTALK_ORG_SYNC_MINUTES: '{raw}' is not a number of minutes "
        "(0 to 10080, i.e. at most a week; 0 = off)"
    ]


def test_dingtalk_org_sync_needs_the_app_credentials() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"TICKETBOT_DINGTALK_ORG_SYNC_MINUTES": "30"})
    assert info.value.errors == [
        "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES is 30 but TICKETBOT_DINGTALK_APP_KEY, "
        "TICKETBOT_DINGTALK_APP_SECRET are not set: the scheduled directory sync needs the DingTalk app key "
        "and app secret (set them, or set TICKETBOT_DINGTALK_ORG_SYNC_MINUTES=0)"
    ]
    with pytest.raises(SettingsError) as partly:  # one credential: the partly-configured error says it
        load_settings({"TICKETBOT_DINGTALK_APP_KEY": "k", "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES": "30"})
    (error,) = partly.value.errors
    assert error.startswith("DingTalk is partly configured")


def test_every_error_is_collected_across_platforms() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            {
                "TICKETBOT_WECOM_CORP_ID": "wwcorp123",
                "TICKETBOT_DINGTALK_APP_KEY": "k",
                "TICKETBOT_DINGTALK_API_BASE": "nope",
                "TICKETBOT_DINGTALK_AGENT_ID": "x",
                "TICKETBOT_ORG_PERSON_KEY": "phone",
            }
        )
    assert len(info.value.errors) == 5, info.value.errors


def test_describe_documents_dingtalk() -> None:
    docs = {d.name: d for d in describe()}
    names = {
        "TICKETBOT_DINGTALK_APP_KEY",
        "TICKETBOT_DINGTALK_APP_SECRET",
        "TICKETBOT_DINGTALK_ROBOT_CODE",
        "TICKETBOT_DINGTALK_TOKEN",
        "TICKETBOT_DINGTALK_AES_KEY",
        "TICKETBOT_DINGTALK_OWNER_KEY",
        "TICKETBOT_DINGTALK_CARD_TEMPLATE_ID",
        "TICKETBOT_DINGTALK_CARD_CALLBACK_KEY",
        "TICKETBOT_DINGTALK_AGENT_ID",
        "TICKETBOT_DINGTALK_API_BASE",
        "TICKETBOT_DINGTALK_OAPI_BASE",
        "TICKETBOT_DINGTALK_ORG_SYNC_MINUTES",
        "TICKETBOT_ORG_PERSON_KEY",
    }
    assert names <= set(docs)
    assert docs["TICKETBOT_DINGTALK_API_BASE"].default == "https://api.dingtalk.com"
    assert docs["TICKETBOT_DINGTALK_OAPI_BASE"].default == "https://oapi.dingtalk.com"
    assert docs["TICKETBOT_DINGTALK_CARD_CALLBACK_KEY"].default == "ticketbot"
    assert docs["TICKETBOT_ORG_PERSON_KEY"].default == "mobile"
    assert "email" in docs["TICKETBOT_ORG_PERSON_KEY"].meaning
    help_text = format_help()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert name in help_text
        assert name in readme, name


def test_dingtalk_corp_id_is_optional_and_kept() -> None:
    from config.settings import load_settings

    base = {"TICKETBOT_DINGTALK_APP_KEY": "k", "TICKETBOT_DINGTALK_APP_SECRET": "s"}
    assert load_settings(env=base).dingtalk_corp_id == ""
    got = load_settings(env={**base, "TICKETBOT_DINGTALK_CORP_ID": "ding123"})
    assert got.dingtalk_corp_id == "ding123"
