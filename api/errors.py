"""The API layer's error base class."""

from __future__ import annotations


class ApiError(Exception):
    """A refusal to answer in the dialect's envelope. `status` is used only in strict-status mode
    (loonflow itself always answers HTTP 200)."""

    def __init__(self, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status
