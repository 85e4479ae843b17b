"""Test doubles that are honest stand-ins: a fake clock you move by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.core.builders import NOW


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **kw: float) -> None:
        self.current += timedelta(**kw)
