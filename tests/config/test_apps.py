"""apps.yaml: API apps, tokens from the file, ${ENV} references and TICKETBOT_APP_<NAME>_TOKEN."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.apps import ApiApp, load_apps, token_env_var
from config.errors import ConfigError
from core.workflow import Permissions, Workflow

APPS = """\
apps:
  - name: demo
    token: demo-token
    workflows: all
  - name: crm-sync
    token: "${CRM_TOKEN}"
    workflows: [1, 3]
    sn_prefix: crm
    strong_auth: true
    hmac_secret: "${CRM_HMAC:-fallback-secret}"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "apps.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_apps_from_file_and_env_refs(tmp_path: Path) -> None:
    demo, crm = load_apps(write(tmp_path, APPS), env={"CRM_TOKEN": "crm-secret"})
    assert demo == ApiApp("demo", "demo-token")
    assert demo.workflow_ids is None and demo.sn_prefix is None and not demo.strong_auth
    assert crm.name == "crm-sync" and crm.token == "crm-secret"
    assert crm.workflow_ids == frozenset({1, 3})
    assert crm.sn_prefix == "crm" and crm.strong_auth and crm.hmac_secret == "fallback-secret"


def test_env_token_overrides_file(tmp_path: Path) -> None:
    env = {"TICKETBOT_APP_DEMO_TOKEN": "from-env", "TICKETBOT_APP_CRM_SYNC_TOKEN": "crm-from-env"}
    demo, crm = load_apps(write(tmp_path, APPS), env=env)
    assert demo.token == "from-env"
    assert crm.token == "crm-from-env"  # CRM_TOKEN is not needed when the override is set


def test_env_token_may_replace_a_missing_file_token(tmp_path: Path) -> None:
    text = "apps:\n  - {name: ops.bot, workflows: [2]}\n"
    (app,) = load_apps(write(tmp_path, text), env={"TICKETBOT_APP_OPS_BOT_TOKEN": "t"})
    assert app.token == "t"


def test_token_env_var_name() -> None:
    assert token_env_var("demo") == "TICKETBOT_APP_DEMO_TOKEN"
    assert token_env_var("crm-sync.v2") == "TICKETBOT_APP_CRM_SYNC_V2_TOKEN"


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    _, crm = load_apps(write(tmp_path, APPS), env={"CRM_TOKEN": "crm-secret"})
    assert "crm-secret" not in repr(crm) and "fallback-secret" not in repr(crm)


def test_allows() -> None:
    wf = Workflow(
        id=5, name="x", states=(), transitions=(), permissions=Permissions(api_apps=frozenset({"b"}))
    )
    assert ApiApp("a", "t").allows(wf)
    assert not ApiApp("a", "t", workflow_ids=frozenset({1})).allows(wf)
    assert ApiApp("a", "t", workflow_ids=frozenset({5})).allows(wf)
    assert ApiApp("b", "t", workflow_ids=frozenset()).allows(wf)


def test_no_file_means_no_apps(tmp_path: Path) -> None:
    assert load_apps(tmp_path, env={}) == ()


def test_bare_list_is_accepted(tmp_path: Path) -> None:
    (app,) = load_apps(write(tmp_path, "- {name: demo, token: x, workflows: all}\n"), env={})
    assert app.name == "demo"


CASES: list[tuple[str, str, str]] = [
    (
        "missing env var",
        APPS,
        "apps.yaml: apps[1].token: environment variable CRM_TOKEN is not set (referenced as '${CRM_TOKEN}')",
    ),
    (
        "no token at all",
        "apps:\n  - {name: demo, workflows: all}\n",
        "apps.yaml: apps[0].token: required (or set TICKETBOT_APP_DEMO_TOKEN)",
    ),
    (
        "duplicate name",
        "apps:\n  - {name: a, token: x, workflows: all}\n  - {name: a, token: y, workflows: all}\n",
        "apps.yaml: apps[1].name: duplicate app name 'a' (also apps[0])",
    ),
    (
        "names sharing a token variable",
        "apps:\n  - {name: a-b, token: x, workflows: all}\n  - {name: a_b, token: y, workflows: all}\n",
        "apps.yaml: apps[1].name: app names 'a-b' and 'a_b' share the token variable TICKETBOT_APP_A_B_TOKEN",
    ),
    (
        "bad workflows",
        "apps:\n  - {name: a, token: x, workflows: some}\n",
        "apps.yaml: apps[0].workflows: expected 'all' or a list of workflow ids, got string 'some'",
    ),
    (
        "workflows missing",
        "apps:\n  - {name: a, token: x}\n",
        "apps.yaml: apps[0].workflows: required: 'all' or a list of workflow ids",
    ),
    (
        "bad workflow id",
        "apps:\n  - {name: a, token: x, workflows: [1, two]}\n",
        "apps.yaml: apps[0].workflows[1]: expected a workflow id (integer), got string 'two'",
    ),
    (
        "unknown key",
        "apps:\n  - {name: a, tokn: x, workflows: all}\n",
        "apps.yaml: apps[0].tokn: unknown key (did you mean 'token'?)",
    ),
    (
        "bad sn prefix",
        "apps:\n  - {name: a, token: x, workflows: all, sn_prefix: 'a b'}\n",
        "apps.yaml: apps[0].sn_prefix: 'a b' is not a valid prefix",
    ),
    (
        "bad strong_auth",
        "apps:\n  - {name: a, token: x, workflows: all, strong_auth: yes please}\n",
        "apps.yaml: apps[0].strong_auth: expected true or false, got string 'yes please'",
    ),
    (
        "bad app name",
        "apps:\n  - {name: 'my app', token: x, workflows: all}\n",
        "apps.yaml: apps[0].name: 'my app' is not a valid app name",
    ),
    (
        "not a list",
        "apps: demo\n",
        "apps.yaml: apps: expected a list, got string 'demo'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_located_error(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_apps(write(tmp_path, text), env={})
    assert any(e.startswith(expected) for e in info.value.errors), "\n".join(info.value.errors)
