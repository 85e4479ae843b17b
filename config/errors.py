"""The config layer's error base class.

Every problem found while reading settings or config files is a located sentence
(`leave.yaml: transitions[1].to: unknown state id 99 (known: 101, 102)`); a `ConfigError` carries
all of them at once so one run of `ticketbot check` shows everything that needs fixing.
"""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(Exception):
    """The configuration is invalid. `errors` holds every located error message found."""

    def __init__(self, errors: Iterable[str] | str) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        super().__init__(self.summary())

    def summary(self) -> str:
        if len(self.errors) == 1:
            return self.errors[0]
        lines = [f"{len(self.errors)} configuration errors:"]
        lines.extend(f"  {e}" for e in self.errors)
        return "\n".join(lines)


class SettingsError(ConfigError):
    """An environment variable (or an override) has a value that cannot be used."""
