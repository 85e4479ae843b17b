"""`make audit` reads pip-audit's JSON report: vulnerabilities fail, an unreachable service is a
visible skip (never "clean"), and partial coverage is said."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_deps.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_and_is_named() -> None:
    report = {
        "dependencies": [
            {"name": "aiohttp", "version": "3.9.0", "vulns": [{"id": "GHSA-x", "fix_versions": ["3.9.4"]}]},
            {"name": "six", "version": "1.17.0", "vulns": []},
        ]
    }
    code, lines = _module().summary(report)
    assert code == 1
    assert lines[0] == "VULNERABLE aiohttp 3.9.0: GHSA-x (fixed in 3.9.4)"
    assert lines[-1].startswith("1 of 2 locked packages have known vulnerabilities")


def test_an_unreachable_service_is_a_visible_skip_not_a_pass() -> None:
    report = {"dependencies": [{"name": "six", "version": "1.17.0", "skip_reason": "not found"}]}
    code, lines = _module().summary(report)
    assert code == 0 and lines[0].startswith("AUDIT SKIPPED") and "nothing was checked" in lines[0]


def test_clean_and_partly_checked() -> None:
    report = {
        "dependencies": [
            {"name": "six", "version": "1.17.0", "vulns": []},
            {"name": "tzdata", "version": "2026.6", "skip_reason": "not found"},
        ]
    }
    assert _module().summary(report) == (
        0,
        ["no known vulnerabilities in 1 locked packages (1 could not be checked)"],
    )
