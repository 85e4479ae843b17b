"""Fixtures shared by tests/bot: `demo`, the whole demo app on the suite's databases."""

from tests.bot.demo_harness import demo

__all__ = ["demo"]
