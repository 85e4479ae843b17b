"""Per-recipient message limits of the chat platforms, applied before a message is sent.

WeCom silently drops app messages to one member beyond 30 a minute and 1000 an hour
(shared/docs/platforms.md), so the notifier counts what it sent to each (platform, address) in
sliding windows and DEFERS a delivery that would exceed them: it is sent when the window allows,
and the wait is not counted as a failed attempt. DingTalk documents no per-person message limit
(only 20 QPS and monthly quotas per organisation, which its API client handles), so it has none
here.

The windows are kept in the process: with several workers each counts its own sends, and the WeCom
API client's own limiter (which also counts chat replies) refuses what slips through, which the
notifier defers the same way (`SendFailed.rate_limited`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` messages to one person in any window of `per`."""

    count: int
    per: timedelta


RECIPIENT_LIMITS: Mapping[str, tuple[Limit, ...]] = {
    "wecom": (Limit(30, timedelta(minutes=1)), Limit(1000, timedelta(hours=1))),
}


class RecipientLimiter:
    """Sliding windows of sent messages per (platform, address)."""

    def __init__(self, limits: Mapping[str, Sequence[Limit]] = RECIPIENT_LIMITS) -> None:
        for platform, rules in limits.items():
            for rule in rules:
                if rule.count < 1 or rule.per <= timedelta(0):
                    raise ValueError(f"{platform}: a limit needs a positive count and window, got {rule}")
        self._limits = {p: tuple(rules) for p, rules in limits.items() if rules}
        self._sent: dict[tuple[str, str], deque[datetime]] = {}

    def _window(self, platform: str, address: str, now: datetime) -> deque[datetime] | None:
        rules = self._limits.get(platform)
        key = (platform, address)
        times = self._sent.get(key)
        if rules is None or times is None:
            return None
        longest = max(rule.per for rule in rules)
        while times and now - times[0] >= longest:
            times.popleft()
        if not times:
            del self._sent[key]
            return None
        return times

    def wait(self, platform: str, address: str, now: datetime) -> float:
        """Seconds until one more message to `address` on `platform` is allowed (0: now)."""
        times = self._window(platform, address, now)
        if times is None:
            return 0.0
        wait = timedelta(0)
        for rule in self._limits[platform]:
            recent = [t for t in times if now - t < rule.per]
            if len(recent) >= rule.count:
                wait = max(wait, recent[-rule.count] + rule.per - now)
        return wait.total_seconds()

    def record(self, platform: str, address: str, now: datetime) -> None:
        """A message to `address` on `platform` went out at `now`."""
        if platform in self._limits:
            self._window(platform, address, now)
            self._sent.setdefault((platform, address), deque()).append(now)
