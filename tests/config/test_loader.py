"""load_config / check_config over a whole directory: errors of every file together."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import check_config, load_config
from config.settings import PACKAGE_DIR


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the shipped config to break."""
    target = tmp_path / "cfg"
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.md"))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_copy_is_valid(demo: Path) -> None:
    cfg = load_config(demo, env={})
    assert len(cfg.workflows) == 3


def test_errors_of_all_files_together(demo: Path) -> None:
    edit(demo / "org.yaml", "departments: [6]", "departments: [60]")
    edit(demo / "workflows" / "leave.yaml", "to: 105\n    attribute: agree", "to: 99\n    attribute: agree")
    edit(
        demo / "workflows" / "it_access.yaml",
        "{type: people, value: [lina, zhaolei]}",
        "{type: people, value: [lina, zhaoleii]}",
    )
    edit(demo / "apps.yaml", "workflows: all", "workflows: [1, 4]")
    with pytest.raises(ConfigError) as info:
        load_config(demo, env={})
    assert info.value.errors == [
        "org.yaml: users[13].departments[0]: unknown department 60 (known: 1, 2, 3, 4, 5, 6)",
        "it_access.yaml: states[2].participant.value[1]: unknown user 'zhaoleii' (did you mean 'zhaolei'?)",
        "leave.yaml: transitions[5].to: unknown state id 99 (known: 101, 102, 103, 104, 105)",
        "apps.yaml: apps[0].workflows[1]: unknown workflow id 4 (known: 1, 2, 3)",
    ]


def test_workflow_names_an_unknown_app(demo: Path) -> None:
    edit(demo / "workflows" / "cs_workorder.yaml", "api_apps: [demo]", "api_apps: [demo, dmeo2]")
    with pytest.raises(ConfigError) as info:
        load_config(demo, env={})
    assert info.value.errors == [
        "cs_workorder.yaml: permissions.api_apps: unknown API app 'dmeo2' (did you mean 'demo'?) "
        "(apps.yaml has: demo)"
    ]


def test_state_ids_unique_across_workflows(demo: Path) -> None:
    edit(
        demo / "workflows" / "cs_workorder.yaml", "  - id: 305\n    name: 结束", "  - id: 105\n    name: 结束"
    )
    edit(demo / "workflows" / "cs_workorder.yaml", "to: 305\n", "to: 105\n")
    with pytest.raises(ConfigError) as info:
        load_config(demo, env={})
    assert info.value.errors == [
        "leave.yaml: states[4].id: state id 105 is already used by cs_workorder.yaml (states[4]); "
        "state ids must be unique across all workflows"
    ]


def test_broken_org_file_does_not_flood_workflow_errors(demo: Path) -> None:
    (demo / "org.yaml").write_text("users: [\n", encoding="utf-8")
    ok, text = check_config(demo, env={})
    assert not ok
    lines = text.splitlines()
    assert lines[0] == f"config in {demo} has 1 error:"
    assert lines[1].startswith("  org.yaml: line 2, column 1: YAML syntax error:")


def test_check_config_error_text(demo: Path) -> None:
    edit(demo / "workflows" / "leave.yaml", "distribute: accept_first", "distribute: acept_first")
    edit(demo / "workflows" / "leave.yaml", "timer: 7d", "timer: 7 days")
    ok, text = check_config(demo, env={})
    assert not ok
    assert text == (
        f"config in {demo} has 2 errors:\n"
        "  leave.yaml: states[3].distribute: unknown distribute type 'acept_first' (did you mean 'accept_first'?); "
        "known: accept_first, direct, random, all\n"
        "  leave.yaml: transitions[6].timer: expected seconds or a duration like '30m', '2h', '1d', "
        "got string '7 days'"
    )


def test_env_override_reaches_apps(demo: Path) -> None:
    cfg = load_config(demo, env={"TICKETBOT_APP_DEMO_TOKEN": "prod-token"})
    app = cfg.app("demo")
    assert app is not None and app.token == "prod-token"


def test_missing_directory(tmp_path: Path) -> None:
    ok, text = check_config(tmp_path / "nope")
    assert not ok and "config directory not found" in text
