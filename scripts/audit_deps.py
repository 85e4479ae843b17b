"""`make audit`: known vulnerabilities of the locked dependency versions (requirements.lock).

Runs pip-audit (its PyPI vulnerability service) over requirements.lock, without resolving again.
- any known vulnerability: lists them and exits 1;
- the service could not be reached for any package (a machine without internet besides a package
  mirror): says so in a visible note and exits 0, because nothing could be checked, rather than
  calling the dependencies clean;
- otherwise: "no known vulnerabilities" and the number of packages checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def main() -> int:
    cmd = [
        sys.executable,
        "-m",
        "pip_audit",
        "-r",
        str(LOCK),
        "--no-deps",
        "--progress-spinner",
        "off",
        "-f",
        "json",
    ]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        print(
            "AUDIT SKIPPED: pip-audit did not finish within 10 minutes (vulnerability service unreachable?)"
        )
        return 0
    try:
        report = json.loads(run.stdout or "{}")
    except json.JSONDecodeError:
        print("AUDIT SKIPPED: pip-audit gave no report; its output:", (run.stderr or run.stdout)[-2000:])
        return 0
    code, lines = summary(report)
    print("\n".join(lines))
    return code


def summary(report: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit code and the lines to print for pip-audit's JSON report."""
    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    checked = [d for d in deps if "skip_reason" not in d]
    lines = []
    for d in vulnerable:
        for v in d["vulns"]:
            fixed = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
            lines.append(f"VULNERABLE {d['name']} {d['version']}: {v.get('id')} (fixed in {fixed})")
    if vulnerable:
        lines.append(
            f"{len(vulnerable)} of {len(deps)} locked packages have known vulnerabilities; see README: Development"
        )
        return 1, lines
    if not checked:
        return 0, [
            f"AUDIT SKIPPED: the vulnerability service could not be reached for any of the {len(deps)} "
            "locked packages (no internet here but the package mirror); nothing was checked"
        ]
    skipped = len(deps) - len(checked)
    note = f" ({skipped} could not be checked)" if skipped else ""
    return 0, [f"no known vulnerabilities in {len(checked)} locked packages{note}"]


if __name__ == "__main__":
    sys.exit(main())
