"""Typing indicators and read receipts (`realtime.chat.signals`): `/admin/set/typing` (agent),
`/admin/event/typing` and `/admin/event/read` (visitor)."""
from __future__ import annotations

from typing import Any, cast

from realtime.chat.signals import Signals

from .base import AgentApiHandler, ApiError, BaseHandler, VisitorApiHandler
from .visitor import VisitorMixin


def signals(handler: BaseHandler) -> Signals:
    """The server's `Signals` (made by `wolive.make_app`)."""
    return cast(Signals, handler.settings["wolive_signals"])


def flag(handler: BaseHandler, name: str = "typing") -> bool:
    raw = handler.arg(name, "1", max_len=5).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off", ""):
        return False
    raise ApiError(400, 1, f"parameter {name} must be 0 or 1")


#: A typing signal over the rate is an ordinary answer (the pages throttle their own, see
#: static/assets/js/typing.js): logged at INFO, not as a warning per request.
QUIET_RATE_LIMIT = frozenset({429})


class AgentTypingHandler(AgentApiHandler):
    """`POST /admin/set/typing`: `visiter_id` (or `channel`), `typing` 1/0."""

    quiet_statuses = QUIET_RATE_LIMIT

    async def post(self) -> None:
        visiter_id = await self.chat.resolve_visiter(
            self.agent, self.arg("visiter_id", max_len=200), self.arg("channel", max_len=255))
        self.answer(0, "success", await signals(self).agent_typing(
            self.agent, visiter_id, flag(self)))


class VisitorTypingHandler(VisitorApiHandler, VisitorMixin):
    """`POST /admin/event/typing`: `visiter_id`, `business_id`, `channel`, `typing` 1/0."""

    quiet_statuses = QUIET_RATE_LIMIT

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        self.answer(0, "success", await signals(self).visitor_typing(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id),
            flag(self)))


class VisitorReadHandler(VisitorApiHandler, VisitorMixin):
    """`POST /admin/event/read`: `visiter_id`, `business_id`, `channel`, `cid` (the newest
    agent message the window showed; 0 or absent: all)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        data: dict[str, Any] = await signals(self).visitor_read(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id),
            self.int_arg("cid", 0, lo=0))
        self.answer(0, "success", data)


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/set/typing", AgentTypingHandler),
        (r"/admin/event/typing", VisitorTypingHandler),
        (r"/admin/event/read", VisitorReadHandler),
    ]
