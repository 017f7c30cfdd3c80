"""Conversation API for the console (`/admin/set/...`): a logged-in agent, `_xsrf` on POST."""
from __future__ import annotations

from realtime.chat import MAX_MESSAGE_CHARS

from .base import AgentApiHandler


class AgentChatsHandler(AgentApiHandler):
    """`/admin/set/chats`: the agent's reply. Params `visiter_id`, `content` (document)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        content = self.arg("content", required=True, max_len=MAX_MESSAGE_CHARS * 4)
        message = await self.chat.agent_send(self.agent, visiter_id, content)
        self.answer(0, "success", message)


class GetChatsHandler(AgentApiHandler):
    """`/admin/set/getchats`: the agent's current conversations (from `wolive_queue`)."""

    async def get(self) -> None:
        self.answer(0, "", await self.chat.conversations(self.agent))

    post = get


class HistoryHandler(AgentApiHandler):
    """`/admin/set/history`: one conversation's messages, oldest first; `before` = a cid."""

    async def get(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        rows = await self.chat.history_for_agent(self.agent, visiter_id,
                                                 self.int_arg("before", 0),
                                                 self.int_arg("limit", 50))
        self.answer(0, "", rows)


class WatchHandler(AgentApiHandler):
    """`/admin/set/getwatch`: mark the visitor's messages read (`visiter_id`)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        count = await self.chat.mark_read_by_agent(self.agent, visiter_id)
        self.answer(0, "success", {"marked": count})


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/set/chats", AgentChatsHandler),
        (r"/admin/set/getchats", GetChatsHandler),
        (r"/admin/set/history", HistoryHandler),
        (r"/admin/set/getwatch", WatchHandler),
    ]
