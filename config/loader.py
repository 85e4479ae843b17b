"""Load a whole config directory (org.yaml, workflows/*.yaml, apps.yaml, calendar.yaml) in one go.

Every file is read even when an earlier one has errors, and the errors of all files are raised
together in one ConfigError. Cross-file references are checked here: workflow permissions name
API apps that exist, apps name workflows that exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from config._schema import suggest
from config.apps import APPS_FILE, ApiApp, read_apps
from config.calendar import read_calendar
from config.errors import ConfigError
from config.org import ORG_FILE, read_org
from config.workflows import read_workflows
from core.calendar import BusinessCalendar
from core.org import Org
from core.workflow import Workflow


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    org: Org
    workflows: tuple[Workflow, ...]
    apps: tuple[ApiApp, ...]
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)  # calendar.yaml (SLA hours)

    def workflow(self, workflow_id: int) -> Workflow | None:
        return next((w for w in self.workflows if w.id == workflow_id), None)

    def app(self, name: str) -> ApiApp | None:
        return next((a for a in self.apps if a.name == name), None)


def load_config(config_dir: Path, *, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read and validate the config directory; raise ConfigError with every located error."""
    if not config_dir.is_dir():
        raise ConfigError(f"{config_dir}: config directory not found")
    org, errors, org_usable = read_org(config_dir / ORG_FILE)
    found = read_workflows(config_dir, org if org_usable else None, env=env)
    errors.extend(found.errors)
    apps, app_errors = read_apps(config_dir / APPS_FILE, env=env, workflow_ids=found.declared_ids)
    errors.extend(app_errors)
    calendar, calendar_errors = read_calendar(config_dir)
    errors.extend(calendar_errors)
    if not app_errors:
        names = {a.name for a in apps}
        for wf in found.workflows:
            for app_name in sorted(wf.permissions.api_apps - names):
                errors.append(
                    f"{found.files.get(wf.id, wf.id)}: permissions.api_apps: unknown API app '{app_name}'"
                    f"{suggest(app_name, names)} (apps.yaml has: {', '.join(sorted(names)) or 'none'})"
                )
    if errors:
        raise ConfigError(errors)
    return LoadedConfig(org=org, workflows=found.workflows, apps=apps, calendar=calendar)


def check_config(config_dir: Path, *, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(True, a one-line summary) when the config is valid, else (False, every error, one per line)."""
    try:
        cfg = load_config(config_dir, env=env)
    except ConfigError as exc:
        n = len(exc.errors)
        head = f"config in {config_dir} has {n} error{'s' if n != 1 else ''}:"
        return False, "\n".join([head, *(f"  {e}" for e in exc.errors)])
    return True, summary(cfg)


def summary(cfg: LoadedConfig) -> str:
    flows = "; ".join(
        f"{w.name}: {_count(len(w.states), 'state')}, {_count(len(w.transitions), 'transition')}"
        for w in cfg.workflows
    )
    parts = [
        _count(len(cfg.workflows), "workflow") + (f" ({flows})" if flows else ""),
        _count(len(cfg.org.users), "user"),
        _count(len(cfg.org.departments), "department"),
        _count(len(cfg.org.roles), "role"),
        _count(len(cfg.apps), "API app"),
    ]
    return "config OK: " + ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
