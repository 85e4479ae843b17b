"""The permission matrix's fixtures and its terminal summary.

`database_url` is the suite's fixture (tests/conftest.py) at module scope: one freshly migrated
database per backend ("sqlite", "postgres") per test module, so that each module builds its app
once per backend and runs every cell against it (a refused cell changes nothing; an allowed one
acts on a ticket of its own). The PostgreSQL run FAILS, never skips, when the server is unusable.

Every cell a test has asserted is tallied (tests/matrix/tally.py); the terminal summary prints, per module,
backend and surface, how many (surface, action, role) cells were asserted, allowed and refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import fresh_database_url
from tests.matrix.tally import summary_lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = summary_lines()
    if lines:
        terminalreporter.write_sep("-", "permission matrix: (surface, action, role) cells asserted")
        for line in lines:
            terminalreporter.write_line(line)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with fresh_database_url(request.param, tmp_path_factory.mktemp("matrix")) as url:
        yield url
