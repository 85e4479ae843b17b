"""API apps (integrators calling the loonflow / open API) from ``<config_dir>/apps.yaml``.

Schema (the file is optional: no file, no apps)::

    apps:                          # or the list itself at the top level
      - name: demo                 # the loonflow `appname` header; letters, digits, '_', '.', '-'
        token: demo-token          # literal, or "${ENV_NAME}" / "${ENV_NAME:-default}" read at load time
        workflows: all             # "all", or a list of workflow ids this app may use
        sn_prefix: demo            # optional: SN prefix of tickets it creates [TICKETBOT_SN_PREFIX]
        strong_auth: false         # optional: refuse the replayable md5 signature, require the HMAC scheme
        hmac_secret: ...           # optional: key of the HMAC scheme (literal or ${ENV}); default: the token
        webhook_url: https://...   # optional: where its work_order_change webhooks are POSTed (http/https)
        webhook_secret: ...        # with webhook_url: the key that signs them (literal or ${ENV}; >= 16 chars)

The environment variable ``TICKETBOT_APP_<NAME>_TOKEN`` (NAME upper-cased, every other character
than A-Z and 0-9 turned into ``_``) overrides an app's token from the file; then the file's token
may be left out. ``TICKETBOT_APP_<NAME>_WEBHOOK_SECRET`` does the same for the webhook secret.

Webhooks (docs/webhooks.md): an app with a ``webhook_url`` receives a signed ``work_order_change``
POST for every change (create, switch, close, reopen, reply) of a work order of a workflow it may
use (its ``workflows`` grant, or the workflow's ``permissions.api_apps``). A webhook secret is
refused when it is shorter than 16 characters, looks like a placeholder ("change-me",
"demo-...", "<secret>", "xxxxxx", ...) or equals the app's token; a webhook_url without a secret
(in the file or the environment) is refused too: unsigned webhooks could be forged.

The shipped app ``demo`` with token ``demo-token`` exists for the local demo only: change or remove
it (or override its token through TICKETBOT_APP_DEMO_TOKEN) before exposing the service.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from config._schema import Node, Problems, join, kind, read_yaml, resolve_env
from config.errors import ConfigError
from config.placeholders import looks_like_placeholder
from config.settings import SN_PREFIX_RE
from core.workflow import Workflow

APPS_FILE = "apps.yaml"
APP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_APP_KEYS = (
    "name",
    "token",
    "workflows",
    "sn_prefix",
    "strong_auth",
    "hmac_secret",
    "webhook_url",
    "webhook_secret",
)
WEBHOOK_SECRET_MIN = 16
WEBHOOK_URL_MAX = 2000


@dataclass(frozen=True, slots=True)
class ApiApp:
    name: str
    token: str = field(repr=False)
    workflow_ids: frozenset[int] | None = None  # None: every workflow
    sn_prefix: str | None = None  # None: the service default (Settings.sn_prefix)
    strong_auth: bool = False
    hmac_secret: str | None = field(default=None, repr=False)
    webhook_url: str | None = None  # None: no work_order_change webhooks
    webhook_secret: str | None = field(default=None, repr=False)  # set whenever webhook_url is

    def allows(self, workflow: Workflow) -> bool:
        """Whether this app may use `workflow`: listed in apps.yaml, or granted by the workflow's
        ``permissions.api_apps``."""
        return (
            self.workflow_ids is None
            or workflow.id in self.workflow_ids
            or self.name in workflow.permissions.api_apps
        )


def token_env_var(app_name: str) -> str:
    """The environment variable that overrides the token of `app_name`."""
    return "TICKETBOT_APP_" + re.sub(r"[^A-Z0-9]", "_", app_name.upper()) + "_TOKEN"


def webhook_secret_env_var(app_name: str) -> str:
    """The environment variable that overrides the webhook secret of `app_name`."""
    return "TICKETBOT_APP_" + re.sub(r"[^A-Z0-9]", "_", app_name.upper()) + "_WEBHOOK_SECRET"


def load_apps(config_dir: Path, *, env: Mapping[str, str] | None = None) -> tuple[ApiApp, ...]:
    """The apps of ``<config_dir>/apps.yaml`` (none when the file does not exist)."""
    apps, errors = read_apps(config_dir / APPS_FILE, env=env)
    if errors:
        raise ConfigError(errors)
    return apps


def read_apps(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    workflow_ids: frozenset[int] | None = None,
) -> tuple[tuple[ApiApp, ...], list[str]]:
    """(apps, errors) without raising. `workflow_ids`, when given, are the ids apps may name."""
    environ = os.environ if env is None else env
    problems = Problems(path.name)
    if not path.exists():
        return (), []
    doc = read_yaml(path, problems)
    if doc is None:
        return (), problems.errors
    data = doc.data
    prefix = ""
    if isinstance(data, dict):
        root = Node(problems, "", data, ("apps",))
        items = root.seq("apps")
        prefix = "apps"
    elif isinstance(data, list):
        items = data
    elif data is None:
        items = []
    else:
        problems.add("", f"expected a mapping with 'apps' or a list of apps, got {kind(data)}")
        return (), problems.errors

    apps: list[ApiApp] = []
    names: dict[str, int] = {}
    env_names: dict[str, str] = {}
    for i, item in enumerate(items):
        path_i = join(prefix, i) if prefix else f"[{i}]"
        node = Node.of(problems, path_i, item, _APP_KEYS, required=("name",))
        if node is None:
            continue
        app = _app(node, environ, workflow_ids)
        if not app.name:
            continue
        if app.name in names:
            node.error("name", f"duplicate app name '{app.name}' (also {join(prefix, names[app.name])})")
            continue
        var = token_env_var(app.name)
        if var in env_names:
            node.error(
                "name", f"app names '{env_names[var]}' and '{app.name}' share the token variable {var}"
            )
        names[app.name] = i
        env_names[var] = app.name
        apps.append(app)
    if problems:
        return (), problems.errors
    return tuple(apps), []


def _app(node: Node, env: Mapping[str, str], workflow_ids: frozenset[int] | None) -> ApiApp:
    name = node.string("name", nonempty=True)
    if name and not APP_NAME_RE.match(name):
        node.error("name", f"'{name}' is not a valid app name (letters, digits, '_', '.', '-'; at most 64)")
    override = env.get(token_env_var(name), "").strip() if name else ""
    token = override
    if not token:
        raw = node.string("token", nonempty=True)
        if not raw:
            node.error("token", f"required (or set {token_env_var(name or 'NAME')})")
        else:
            token = resolve_env(raw, env, node.problems, node.at("token")) or ""
    secret: str | None = None
    if node.has("hmac_secret"):
        raw_secret = node.string("hmac_secret", nonempty=True)
        secret = resolve_env(raw_secret, env, node.problems, node.at("hmac_secret")) if raw_secret else None
    sn_prefix: str | None = None
    if node.has("sn_prefix"):
        sn_prefix = node.string("sn_prefix")
        if not SN_PREFIX_RE.match(sn_prefix):
            node.error(
                "sn_prefix",
                f"'{sn_prefix}' is not a valid prefix (a letter, then up to 31 letters, digits, '_' or '-')",
            )
    webhook_url, webhook_secret = _webhook(node, env, name, token)
    return ApiApp(
        name=name,
        token=token,
        workflow_ids=_workflows(node, workflow_ids),
        sn_prefix=sn_prefix,
        strong_auth=node.boolean("strong_auth"),
        hmac_secret=secret,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )


def _webhook(node: Node, env: Mapping[str, str], name: str, token: str) -> tuple[str | None, str | None]:
    """(webhook_url, webhook_secret), both or neither; errors never quote the secret."""
    var = webhook_secret_env_var(name or "NAME")
    secret = env.get(var, "").strip() if name else ""
    if not secret and node.has("webhook_secret"):
        raw = node.string("webhook_secret", nonempty=True)
        secret = (resolve_env(raw, env, node.problems, node.at("webhook_secret")) or "") if raw else ""
    if not node.has("webhook_url"):
        if node.has("webhook_secret"):
            node.error("webhook_secret", "goes with webhook_url (where the webhooks are sent)")
        return None, None
    url = node.string("webhook_url", nonempty=True).strip()
    if url and not webhook_url_ok(url):
        node.error("webhook_url", "expected an http:// or https:// URL with a host (at most 2000 characters)")
    if not secret:
        if not node.has("webhook_secret"):
            node.error("webhook_secret", f"required with webhook_url (or set {var})")
        return None, None
    if len(secret) < WEBHOOK_SECRET_MIN:
        node.error("webhook_secret", f"too short: at least {WEBHOOK_SECRET_MIN} characters (or set {var})")
    elif looks_like_placeholder(secret):
        node.error("webhook_secret", f"looks like a placeholder; set a real secret (or {var})")
    elif token and secret == token:
        node.error("webhook_secret", "must not be the app's token: give the webhooks a secret of their own")
    return (url or None), secret


def webhook_url_ok(url: str) -> bool:
    """An absolute http(s) URL with a host, no spaces or control characters, at most 2000 long."""
    if len(url) > WEBHOOK_URL_MAX or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _workflows(node: Node, known: frozenset[int] | None) -> frozenset[int] | None:
    raw = node.raw("workflows")
    if raw is None:
        node.error("workflows", "required: 'all' or a list of workflow ids")
        return frozenset()
    if isinstance(raw, str):
        if raw.strip().lower() != "all":
            node.error("workflows", f"expected 'all' or a list of workflow ids, got {kind(raw)}")
        return None
    if not isinstance(raw, list):
        node.error("workflows", f"expected 'all' or a list of workflow ids, got {kind(raw)}")
        return frozenset()
    ids: set[int] = set()
    for j, item in enumerate(raw):
        path = join(node.at("workflows"), j)
        if isinstance(item, bool) or not isinstance(item, int):
            node.problems.add(path, f"expected a workflow id (integer), got {kind(item)}")
        elif known is not None and item not in known:
            node.problems.add(
                path, f"unknown workflow id {item} (known: {', '.join(map(str, sorted(known)))})"
            )
        else:
            ids.add(item)
    return frozenset(ids)
