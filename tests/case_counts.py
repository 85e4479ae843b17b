"""How many cases a generated run covered, printed in pytest's terminal summary (the issue asks
the number of cases run to be in the test output, not only with -s).

`case_counts(request, name, title)` registers (once per run) a plugin under `name` whose lines are
printed under `title`; a test appends its lines to `.lines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(eq=False)  # hashable: pytest keeps its plugins in sets
class CaseCounts:
    """A pytest plugin registered at run time: case counts in the terminal summary."""

    title: str
    lines: list[str] = field(default_factory=list)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.write_sep("-", self.title)
            for line in self.lines:
                terminalreporter.write_line(line)


def case_counts(request: pytest.FixtureRequest, name: str, title: str) -> CaseCounts:
    manager = request.config.pluginmanager
    found = manager.get_plugin(name)
    if not isinstance(found, CaseCounts):
        found = CaseCounts(title)
        manager.register(found, name)
    return found
