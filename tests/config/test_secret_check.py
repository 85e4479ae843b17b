"""`serve` refuses the demo's published secrets and placeholders (config/secret_check.py)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import _secrets_ok
from config.apps import ApiApp, load_apps
from config.placeholders import DEMO_WECOM_AES_KEY, DEMO_WECOM_SECRET, looks_like_placeholder
from config.secret_check import placeholder_secrets, refusal
from config.settings import load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"
REAL_TOKEN = "Q2hvb3NlIGEgcmVhbCB0b2tlbg-7f3a"
REAL_AES = "k2Vq0bXo1s9r3N7wYcR5tLmE8aJ4hU6iG0pZdFvQx1C"  # 43 characters


def _real_config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config / "apps.yaml").write_text(
        'apps:\n  - name: demo\n    token: "${CRM_TOKEN}"\n    workflows: all\n', encoding="utf-8"
    )
    return config


@pytest.mark.parametrize(
    "value",
    [
        "change-me",
        "CHANGEME",
        "replace_me",
        "placeholder",
        "your-secret",
        "demo-anything",
        "xxxxxxxx",
        "<secret>",
    ],
)
def test_placeholders_are_recognised(value: str) -> None:
    assert looks_like_placeholder(value)


@pytest.mark.parametrize("value", [REAL_TOKEN, REAL_AES, "a-democratic-secret-value", "xxxxx-short-run"])
def test_real_looking_values_are_not_placeholders(value: str) -> None:
    assert not looks_like_placeholder(value)


def test_the_shipped_demo_app_and_the_demo_platform_values_are_named_never_shown() -> None:
    settings = load_settings(
        env={
            "TICKETBOT_WECOM_CORP_ID": "ww1234567890",
            "TICKETBOT_WECOM_SECRET": DEMO_WECOM_SECRET,
            "TICKETBOT_WECOM_TOKEN": "RealToken123",
            "TICKETBOT_WECOM_AES_KEY": DEMO_WECOM_AES_KEY,
            "TICKETBOT_LINK_SECRET": "change-me-please-now",
        },
        config_dir=CONFIG,
    )
    found = placeholder_secrets(settings, load_apps(CONFIG, env={}))
    text = refusal(found)
    assert [str(f).split(" (")[0] for f in found] == [
        "TICKETBOT_WECOM_SECRET",
        "TICKETBOT_WECOM_AES_KEY",
        "TICKETBOT_LINK_SECRET",
        "apps.yaml: the token of app 'demo'",
    ]
    assert "is the demo's published value" in text and "looks like a placeholder" in text
    assert "TICKETBOT_APP_DEMO_TOKEN" in text and "TICKETBOT_ALLOW_PLACEHOLDER_SECRETS=1" in text
    for secret in (DEMO_WECOM_SECRET, DEMO_WECOM_AES_KEY, "change-me-please-now", "demo-token"):
        assert secret not in text


def test_short_api_tokens_and_hmac_secrets_are_refused_real_ones_pass() -> None:
    settings = load_settings(env={}, config_dir=CONFIG)
    apps = [
        ApiApp("short", token="abc123"),
        ApiApp("hmac", token=REAL_TOKEN, hmac_secret="tiny"),
        ApiApp("good", token=REAL_TOKEN, hmac_secret=REAL_TOKEN[::-1]),
    ]
    found = [str(f) for f in placeholder_secrets(settings, apps)]
    assert found == [
        "apps.yaml: the token of app 'short' (TICKETBOT_APP_SHORT_TOKEN) is shorter than 16 characters",
        "apps.yaml: the hmac_secret of app 'hmac' is shorter than 16 characters",
    ]


def test_nothing_is_found_in_a_real_configuration(tmp_path: Path) -> None:
    config = _real_config(tmp_path)
    settings = load_settings(
        env={
            "TICKETBOT_WECOM_CORP_ID": "ww1234567890",
            "TICKETBOT_WECOM_SECRET": REAL_TOKEN,
            "TICKETBOT_WECOM_TOKEN": "RealToken123",
            "TICKETBOT_WECOM_AES_KEY": REAL_AES,
            "TICKETBOT_LINK_SECRET": REAL_TOKEN[::-1],
        },
        config_dir=config,
    )
    assert placeholder_secrets(settings, load_apps(config, env={"CRM_TOKEN": REAL_TOKEN})) == []


def test_allowed_placeholders_start_with_a_warning_naming_each(caplog: pytest.LogCaptureFixture) -> None:
    refused = load_settings(env={}, config_dir=CONFIG)
    allowed = load_settings(env={"TICKETBOT_ALLOW_PLACEHOLDER_SECRETS": "1"}, config_dir=CONFIG)
    with caplog.at_level(logging.WARNING, logger="ticketbot"):
        assert not _secrets_ok(refused)
        assert caplog.records == []
        assert _secrets_ok(allowed)
    assert [r.getMessage() for r in caplog.records] == [
        "serving with a placeholder secret (TICKETBOT_ALLOW_PLACEHOLDER_SECRETS=1): apps.yaml: the token of "
        "app 'demo' (TICKETBOT_APP_DEMO_TOKEN) is the demo's published value"
    ]


def test_the_flag_is_a_boolean() -> None:
    from config.errors import SettingsError

    with pytest.raises(SettingsError, match="TICKETBOT_ALLOW_PLACEHOLDER_SECRETS: 'maybe' is not a boolean"):
        load_settings(env={"TICKETBOT_ALLOW_PLACEHOLDER_SECRETS": "maybe"})


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TICKETBOT_")}
    return subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **env},
        check=False,
    )


def test_serve_refuses_the_shipped_demo_config_before_touching_anything(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/t.db"
    done = _cli("serve", "--config", str(CONFIG), "--database-url", url, env={})
    assert done.returncode == 2
    assert "refusing to serve with demo or placeholder secrets" in done.stderr
    assert "the token of app 'demo' (TICKETBOT_APP_DEMO_TOKEN)" in done.stderr
    assert "demo-token" not in done.stderr
    assert not (tmp_path / "t.db").exists()


def test_check_warns_about_what_serve_will_refuse(tmp_path: Path) -> None:
    done = _cli("check", "--config", str(CONFIG), env={})
    assert done.returncode == 0
    assert "warning: `serve` will refuse this: apps.yaml: the token of app 'demo'" in done.stderr
    clean = _cli("check", "--config", str(_real_config(tmp_path)), env={"CRM_TOKEN": REAL_TOKEN})
    assert clean.returncode == 0, clean.stderr
    assert "warning" not in clean.stderr
