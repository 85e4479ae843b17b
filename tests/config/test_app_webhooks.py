"""apps.yaml: webhook_url / webhook_secret of API apps (work_order_change webhooks), the
TICKETBOT_APP_<NAME>_WEBHOOK_SECRET override, and the secrets and URLs that are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.apps import load_apps, webhook_secret_env_var, webhook_url_ok
from config.errors import ConfigError

SECRET = "k7Hq2-webhook-signing-key-0001"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "apps.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def app_yaml(**keys: str) -> str:
    extra = "".join(f"\n    {k}: {v}" for k, v in keys.items())
    return f"apps:\n  - name: crm-sync\n    token: crm-api-token\n    workflows: [3]{extra}\n"


def errors(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_apps(write(tmp_path, text), env=env or {})
    return "\n".join(exc.value.errors)


def test_webhook_url_and_secret(tmp_path: Path) -> None:
    text = app_yaml(webhook_url="https://crm.example.com/hooks?x=1", webhook_secret='"${CRM_WH}"')
    (app,) = load_apps(write(tmp_path, text), env={"CRM_WH": SECRET})
    assert (app.webhook_url, app.webhook_secret) == ("https://crm.example.com/hooks?x=1", SECRET)
    assert SECRET not in repr(app)


def test_no_webhook_by_default(tmp_path: Path) -> None:
    (app,) = load_apps(write(tmp_path, app_yaml()), env={webhook_secret_env_var("crm-sync"): SECRET})
    assert (app.webhook_url, app.webhook_secret) == (None, None)  # a stray env secret subscribes nothing


def test_the_env_overrides_the_files_secret(tmp_path: Path) -> None:
    assert webhook_secret_env_var("crm-sync") == "TICKETBOT_APP_CRM_SYNC_WEBHOOK_SECRET"
    env = {"TICKETBOT_APP_CRM_SYNC_WEBHOOK_SECRET": "from-the-environment-0001"}
    text = app_yaml(webhook_url="http://10.0.0.5:8000/wh", webhook_secret=SECRET)
    (app,) = load_apps(write(tmp_path, text), env=env)
    assert app.webhook_secret == "from-the-environment-0001"
    (alone,) = load_apps(write(tmp_path, app_yaml(webhook_url="http://10.0.0.5:8000/wh")), env=env)
    assert alone.webhook_secret == "from-the-environment-0001"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"webhook_url": "https://crm.example.com/h"},
            "webhook_secret: required with webhook_url (or set TICKETBOT_APP_CRM_SYNC_WEBHOOK_SECRET)",
        ),
        ({"webhook_secret": SECRET}, "webhook_secret: goes with webhook_url"),
        (
            {"webhook_url": "ftp://crm.example.com/h", "webhook_secret": SECRET},
            "webhook_url: expected an http:// or https:// URL",
        ),
        ({"webhook_url": "https:///nohost", "webhook_secret": SECRET}, "webhook_url: expected an http"),
        (
            {"webhook_url": '"https://crm.example.com/a b"', "webhook_secret": SECRET},
            "webhook_url: expected an http",
        ),
        (
            {"webhook_url": "https://crm.example.com/h", "webhook_secret": "short-secret"},
            "too short: at least 16 characters",
        ),
        (
            {"webhook_url": "https://crm.example.com/h", "webhook_secret": "change-me-change-me-0"},
            "looks like a placeholder",
        ),
        (
            {"webhook_url": "https://crm.example.com/h", "webhook_secret": "demo-webhook-secret-01"},
            "looks like a placeholder",
        ),
        (
            {"webhook_url": "https://crm.example.com/h", "webhook_secret": '"<your webhook secret>"'},
            "looks like a placeholder",
        ),
        (
            {"webhook_url": "https://crm.example.com/h", "webhook_secret": "xxxxxxxxxxxxxxxxxxxxxxxx"},
            "looks like a placeholder",
        ),
        (
            {"webhook_url": "https://crm.example.com/h", "webhook_secret": '"${UNSET_WH_SECRET}"'},
            "environment variable UNSET_WH_SECRET is not set",
        ),
    ],
)
def test_bad_webhooks_are_refused_by_name(tmp_path: Path, keys: dict[str, str], message: str) -> None:
    text = errors(tmp_path, app_yaml(**keys))
    assert "apps.yaml" in text and "apps[0]." in text and message in text
    assert SECRET not in text


def test_the_secret_must_not_be_the_token(tmp_path: Path) -> None:
    text = app_yaml(webhook_url="https://crm.example.com/h", webhook_secret="crm-api-token-long-enough")
    text = text.replace("token: crm-api-token\n", "token: crm-api-token-long-enough\n")
    found = errors(tmp_path, text)
    assert "must not be the app's token" in found and "crm-api-token-long-enough" not in found


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://crm.example.com/h", True),
        ("http://127.0.0.1:8000/", True),
        ("https://u:p@crm.example.com/h?k=v", True),
        ("crm.example.com/h", False),
        ("https://", False),
        ("javascript:alert(1)", False),
        ("https://crm.example.com/\nx", False),
        ("https://crm.example.com/" + "a" * 2000, False),
    ],
)
def test_webhook_urls(url: str, ok: bool) -> None:
    assert webhook_url_ok(url) is ok
