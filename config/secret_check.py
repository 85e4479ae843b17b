"""Secrets that must not reach production: the demo's published values and placeholders.

`ticketbot serve` refuses to start while any secret it would use is one of the demo's fixed values
(config/placeholders.py), looks like a placeholder ("change-me", "demo-...", "<secret>",
"xxxxxx", ...), or, for an API app's token or HMAC secret, is shorter than 16 characters. The
refusal names each offending setting and why, never its value. ``TICKETBOT_ALLOW_PLACEHOLDER_SECRETS=1``
lets it start anyway (a local trial, a benchmark), with a warning naming each. `ticketbot demo`
runs on those values by design and is not checked.

Checked: the WeCom app secret, callback token and AES key; the DingTalk app secret, event token
and AES key; the ticket-page link secret; the chat-archive token; every API app's token and HMAC
secret (webhook secrets are refused when apps.yaml is loaded, config/apps.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from config.apps import ApiApp, token_env_var
from config.placeholders import DEMO_VALUES, looks_like_placeholder
from config.settings import PREFIX, Settings

API_SECRET_MIN = 16
ALLOW_VAR = f"{PREFIX}ALLOW_PLACEHOLDER_SECRETS"
_SETTINGS = (
    ("wecom_secret", "the WeCom app secret"),
    ("wecom_token", "the WeCom callback token"),
    ("wecom_aes_key", "the WeCom callback AES key"),
    ("dingtalk_app_secret", "the DingTalk app secret"),
    ("dingtalk_token", "the DingTalk event token"),
    ("dingtalk_aes_key", "the DingTalk event AES key"),
    ("link_secret", "the ticket-page link secret"),
    ("chat_archive_token", "the chat-archive token"),
)


@dataclass(frozen=True, slots=True)
class PlaceholderSecret:
    where: str  # the environment variable or apps.yaml entry, never the value
    why: str

    def __str__(self) -> str:
        return f"{self.where} {self.why}"


def _why(value: str, *, minimum: int = 0) -> str | None:
    if value in DEMO_VALUES:
        return "is the demo's published value"
    if looks_like_placeholder(value):
        return "looks like a placeholder"
    if len(value) < minimum:
        return f"is shorter than {minimum} characters"
    return None


def placeholder_secrets(settings: Settings, apps: Iterable[ApiApp]) -> list[PlaceholderSecret]:
    """Every secret `serve` would use that is a demo value or a placeholder (empty: none)."""
    found: list[PlaceholderSecret] = []
    for name, what in _SETTINGS:
        value: str = getattr(settings, name)
        why = _why(value) if value else None
        if why:
            found.append(PlaceholderSecret(f"{PREFIX}{name.upper()} ({what})", why))
    for app in apps:
        why = _why(app.token, minimum=API_SECRET_MIN)
        if why:
            found.append(
                PlaceholderSecret(
                    f"apps.yaml: the token of app '{app.name}' ({token_env_var(app.name)})", why
                )
            )
        secret = app.hmac_secret
        why = _why(secret, minimum=API_SECRET_MIN) if secret else None
        if why:
            found.append(PlaceholderSecret(f"apps.yaml: the hmac_secret of app '{app.name}'", why))
    return found


def refusal(found: list[PlaceholderSecret]) -> str:
    """Why `serve` does not start, and what to do."""
    lines = [f"  - {item}" for item in found]
    return (
        "refusing to serve with demo or placeholder secrets:\n"
        + "\n".join(lines)
        + '\nSet real values (the environment variable named, or apps.yaml with "${ENV_NAME}"), remove the '
        f"demo app from apps.yaml, or set {ALLOW_VAR}=1 for a local trial. `ticketbot demo` needs none of this."
    )
