"""Structured logging: one line per record, `key=value` pairs after the message, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_KEYS = re.compile(r"(token|secret|aes_key|password|signature|access_token)", re.I)


def redact(key: str, value: object) -> str:
    text = str(value)
    if _SECRET_KEYS.search(key):
        return "***"
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} {record.name}: {record.getMessage()}"
        extras = [
            f"{k}={redact(k, v)!s}"
            for k, v in sorted(record.__dict__.items())
            if k not in _STD and not k.startswith("_")
        ]
        line = " ".join([base, *extras])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # apscheduler: "Running job" / "executed successfully" each run; its misfire and overlap warnings stay
    for noisy in ("aiohttp.access", "alembic.runtime.plugins", "alembic.runtime.migration", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
