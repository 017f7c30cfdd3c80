"""Typing indicators and read receipts, both ways (the agent workbench).

- The agent types: `/admin/set/typing` → `cu{channel}` `typing` `{service_id, nick_name,
  typing}`.
- The visitor types: `/admin/event/typing` → `kefu{service_id}` `typing` `{visiter_id,
  typing}` (nothing is pushed while the visitor waits unclaimed).
- The agent reads (`/admin/set/getwatch`) → `cu{channel}` `read` `{cid}`: the visitor's
  messages up to `cid` are read.
- The visitor reads (`/admin/event/read` with `cid`, or `/admin/event/history`) →
  `kefu{service_id}` `read` `{visiter_id, cid}`: the agent's messages up to `cid` are read.

Typing pushes are limited to `TYPING_LIMIT` per sender in any `TYPING_WINDOW_S` seconds (a
client sends "1" at most every few seconds while keys are pressed, and "0" when it stops, at
least 0.7 s apart); over it the call answers 429 and pushes nothing. Two seconds, not one:
calls a page spaces out can reach the server bunched together (network and event-loop delay),
and the count over the longer window still holds them at two a second on average.
"""
from __future__ import annotations

from typing import Any

from store import NotFound

from . import channels
from .errors import ChatError
from .facade import Chat
from .values import Agent
from ..rate_limit import RateLimiter

#: Typing pushes one sender may cause in any `TYPING_WINDOW_S` seconds.
TYPING_LIMIT = 4
TYPING_WINDOW_S = 2.0
#: Senders remembered by the rate limiter before the oldest are forgotten.
MAX_TRACKED_SENDERS = 20_000


class Signals:
    """Typing and read pushes for one server (uses the chat use cases' access rules)."""

    def __init__(self, chat: Chat, limit: int = TYPING_LIMIT,
                 window_s: float = TYPING_WINDOW_S) -> None:
        self.chat = chat
        self.store = chat.store
        self.hub = chat.hub
        #: Replaced by a cluster-wide limiter with several nodes (wolive.make_app).
        self.limit: RateLimiter | Any = RateLimiter(limit, window_s, MAX_TRACKED_SENDERS)

    async def _check_rate(self, key: str) -> None:
        if not await self.limit.allow(key):
            raise ChatError(1, f"too many typing signals (at most {self.limit.limit} in "
                               f"{self.limit.window_s:g} s)", 429)

    # ---- typing -------------------------------------------------------------------------

    async def agent_typing(self, agent: Agent, visiter_id: str, typing: bool) -> dict[str, Any]:
        """Tell the visitor the agent is (or stopped) typing. Raises `ChatError` 403/404 as
        `/admin/set/chats`, 429 over the rate."""
        await self._check_rate(f"a{agent.service_id}")  # before any database read
        visitor, _queue = await self.chat._queue_for(agent, visiter_id)
        self.hub.trigger(channels.visitor(visitor["channel"]), "typing", {
            "service_id": agent.service_id, "nick_name": agent.nick_name, "typing": typing})
        return {"visiter_id": visiter_id, "typing": typing}

    async def visitor_typing(self, visiter_id: str, business_id: str, channel: str,
                             typing: bool) -> dict[str, Any]:
        """Tell the visitor's agent it is (or stopped) typing. Raises `ChatError` 400/403
        (wrong channel, code 3), 404 unknown visitor, 429 over the rate."""
        self.chat.check_ids(visiter_id, business_id)
        self.chat.check_visitor(business_id, visiter_id, channel)
        await self._check_rate(f"v{business_id}/{visiter_id}")
        queue = await self.store.get_queue(visiter_id, business_id)
        pushed = bool(queue and queue["state"] == "normal" and queue["service_id"])
        if queue and pushed:
            self.hub.trigger(channels.agent(queue["service_id"]), "typing",
                             {"visiter_id": visiter_id, "typing": typing})
        return {"visiter_id": visiter_id, "typing": typing, "pushed": pushed}

    # ---- read ---------------------------------------------------------------------------

    async def agent_read(self, agent: Agent, visiter_id: str, marked: int) -> int:
        """After `/admin/set/getwatch` marked `marked` messages read: push `cu{channel}`
        `read` `{cid}` (the newest visitor message, now read) when any were, and
        `kefu{service_id}` `agent_read` `{visiter_id, cid}` so the agent's other console
        tabs drop their unread count. Returns the cid (0: nothing pushed)."""
        if not marked:
            return 0
        visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        cid = await self.store.last_cid(visiter_id, agent.business_id, "to_service")
        if cid:
            self.hub.trigger(channels.visitor(visitor["channel"]), "read", {"cid": cid})
            self.hub.trigger(channels.agent(agent.service_id), "agent_read",
                             {"visiter_id": visiter_id, "cid": cid})
        return cid

    async def visitor_read(self, visiter_id: str, business_id: str, channel: str,
                           cid: int = 0) -> dict[str, Any]:
        """The visitor window showed the agent's messages up to `cid` (0: all): mark them
        read and push `kefu{service_id}` `read` `{visiter_id, cid}` to its agent. Raises
        `ChatError` 400/403 as the other visitor calls."""
        self.chat.check_ids(visiter_id, business_id)
        self.chat.check_visitor(business_id, visiter_id, channel)
        newest = await self.store.last_cid(visiter_id, business_id, "to_visiter")
        upto = min(cid, newest) if cid > 0 else newest
        marked = 0
        if upto:
            marked = await self.store.mark_read_upto(visiter_id, business_id, "to_visiter",
                                                     upto)
            self.push_visitor_read(visiter_id, business_id, upto,
                                   await self.store.get_queue(visiter_id, business_id))
        return {"visiter_id": visiter_id, "cid": upto, "marked": marked}

    async def visitor_saw_history(self, visiter_id: str, business_id: str) -> int:
        """After `/admin/event/history` (which marks every agent message read): push
        `kefu{service_id}` `read` with the newest agent message. Returns its cid."""
        try:
            cid = await self.store.last_cid(visiter_id, business_id, "to_visiter")
        except NotFound:
            return 0
        if cid:
            self.push_visitor_read(visiter_id, business_id, cid,
                                   await self.store.get_queue(visiter_id, business_id))
        return cid

    def push_visitor_read(self, visiter_id: str, business_id: str, cid: int,
                          queue: dict[str, Any] | None) -> None:
        if queue and queue["service_id"]:
            self.hub.trigger(channels.agent(queue["service_id"]), "read",
                             {"visiter_id": visiter_id, "cid": cid})
