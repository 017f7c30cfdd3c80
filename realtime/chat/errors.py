"""How a chat use case refuses: `ChatError`, and the refusal texts several use cases share.

Handlers render a `ChatError` as `{code, msg}` with its HTTP `status` (handlers/base.py).
"""
from __future__ import annotations

#: What a blacklisted visitor is told (notice code 4, a refused message or contact).
BLOCKED_MSG = "you are blocked by this site / 您已被禁止咨询"


class ChatError(Exception):
    """A use case refused: `code` / `msg` are the answer, `status` the HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
