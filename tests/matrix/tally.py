"""The count of matrix cells asserted, printed in pytest's terminal summary (tests/matrix/conftest.py)."""

from __future__ import annotations

from collections import Counter

# (module, backend, surface, "allowed" | "refused") -> cells asserted
TALLY: Counter[tuple[str, str, str, str]] = Counter()


def tally(module: str, backend: str, surface: str, allowed: bool) -> None:
    """One (surface, action, role) cell of `module` asserted on `backend`."""
    TALLY[(module.rsplit(".", 1)[-1], backend, surface, "allowed" if allowed else "refused")] += 1


def backend_of(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "sqlite"


def summary_lines() -> list[str]:
    lines: list[str] = []
    for module, backend, surface in sorted({(m, b, s) for m, b, s, _ in TALLY}):
        yes = TALLY[(module, backend, surface, "allowed")]
        no = TALLY[(module, backend, surface, "refused")]
        lines.append(f"{module} [{backend}] {surface}: {yes + no} cells ({yes} allowed, {no} refused)")
    for module in sorted({m for m, _, _, _ in TALLY}):
        total = sum(n for (m, _, _, _), n in TALLY.items() if m == module)
        lines.append(f"{module}: {total} cells in all")
    return lines
