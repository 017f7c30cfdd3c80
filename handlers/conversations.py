"""Conversation API for the console (`/admin/set/...`): the agent's work on its conversations
(reply, claim, transfer, close, blacklist, read receipts, typing, the visitor card). A
logged-in agent, `_xsrf` on POST.

URLs and parameter names are the WoLive document's ("对话平台Api"); who may touch which
visitor is `realtime.chat.conversations.Conversations._queue_for`'s rule (a `service` agent its own
conversations, a manager its business's, nobody another business's).
"""
from __future__ import annotations

from realtime.chat.handover import MAX_TRANSFER_NOTE
from store.visitors import EDITABLE

from .base import QUIET_RATE_LIMIT, AgentApiHandler, flag


class ConversationApiHandler(AgentApiHandler):
    """A console call about one visitor, named by `visiter_id` or by its `channel`."""

    async def visiter_arg(self) -> str:
        """The visitor meant: `visiter_id`, else the one whose `channel` this is (in the
        agent's business). `ChatError` 400 when neither is given, 404 when unknown."""
        return await self.chat.resolve_visiter(
            self.agent, self.arg("visiter_id", max_len=200), self.arg("channel", max_len=255))


class AgentChatsHandler(AgentApiHandler):
    """`/admin/set/chats`: the agent's reply. Params `visiter_id`, `content` (document)."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        content = self.arg("content", required=True, max_len=self.chat.max_content_arg)
        message = await self.chat.agent_send(self.agent, visiter_id, content)
        self.answer(0, "success", message)


class GetChatsHandler(AgentApiHandler):
    """`/admin/set/getchats`: the agent's current conversations (from `wolive_queue`)."""

    async def get(self) -> None:
        self.answer(0, "", await self.chat.conversations(self.agent))

    post = get


class GetWaitHandler(AgentApiHandler):
    """`/admin/set/getwait`: the business's visitors waiting to be claimed, oldest first."""

    async def get(self) -> None:
        self.answer(0, "", await self.chat.waiting_list(self.agent))

    post = get


class ClaimHandler(ConversationApiHandler):
    """`/admin/set/get`: claim a waiting visitor (`visiter_id`); exactly one agent wins,
    the others get code 2."""

    async def post(self) -> None:
        self.answer(0, "success", await self.chat.claim(self.agent, await self.visiter_arg()))


class GetChatNowHandler(ConversationApiHandler):
    """`/admin/set/getchatnow`: restore a conversation removed from the list (the
    `wolive_queue` row's `visiter_id`); answers its conversation-list entry."""

    async def post(self) -> None:
        self.answer(0, "", await self.chat.restore(self.agent, await self.visiter_arg()))


class GetBlackDataHandler(AgentApiHandler):
    """`/admin/set/getblackdata`: blacklisted visitors."""

    async def get(self) -> None:
        self.answer(0, "", await self.chat.blacklist_of(self.agent))

    post = get


class GetMessageHandler(ConversationApiHandler):
    """`/admin/set/getmessage`: the visitor's unread message count (`channel` or
    `visiter_id`)."""

    async def get(self) -> None:
        visiter_id = await self.visiter_arg()
        count = await self.chat.unread_for_agent(self.agent, visiter_id)
        self.answer(0, "", {"visiter_id": visiter_id, "count": count})

    post = get


class ConversationHistoryHandler(AgentApiHandler):
    """`/admin/set/history`: one conversation's messages, oldest first; `before` = a cid,
    or `after` = a cid (what came after it: a reconnecting console's missed messages)."""

    async def get(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        rows = await self.chat.history_for_agent(self.agent, visiter_id,
                                                 self.int_arg("before", 0, lo=0),
                                                 self.int_arg("limit", 50, lo=1),
                                                 after_cid=self.int_arg("after", -1, lo=0))
        self.answer(0, "", rows)


class WatchHandler(ConversationApiHandler):
    """`/admin/set/getwatch`: mark the visitor's messages read (`channel` or `visiter_id`)."""

    async def post(self) -> None:
        visiter_id = await self.visiter_arg()
        count = await self.chat.mark_read_by_agent(self.agent, visiter_id)
        # read receipt: cu{channel} `read` (realtime/chat/signals.py)
        await self.signals.agent_read(self.agent, visiter_id, count)
        self.answer(0, "success", {"marked": count})


class BlacklistHandler(ConversationApiHandler):
    """`/admin/set/blacklist`: blacklist the visitor (`channel` or `visiter_id`)."""

    async def post(self) -> None:
        self.answer(0, "success", await self.chat.blacklist(self.agent,
                                                            await self.visiter_arg()))


class UnblackHandler(ConversationApiHandler):
    """`/admin/set/unblack`: take the visitor off the blacklist (`channel` or
    `visiter_id`)."""

    async def post(self) -> None:
        self.answer(0, "success", await self.chat.unblack(self.agent, await self.visiter_arg()))


class TransferHandler(ConversationApiHandler):
    """`/admin/set/transfer` (also `/admin/set/getswitch`): give the conversation
    (`visiter_id`) to another online agent of the business (`service_id`), with an optional
    `note` for that agent only (at most `MAX_TRANSFER_NOTE` characters)."""

    async def post(self) -> None:
        visiter_id = await self.visiter_arg()
        to = self.int_arg("service_id", 0)
        if to <= 0:
            self.answer(1, "missing parameter: service_id", status=400)
            return
        note = self.arg("note", "", max_len=MAX_TRANSFER_NOTE)
        self.answer(0, "success", await self.chat.transfer(self.agent, visiter_id, to, note))


class CloseHandler(ConversationApiHandler):
    """`/admin/set/close`: end the conversation (`wolive_queue.state = complete`)."""

    async def post(self) -> None:
        self.answer(0, "success", await self.chat.close(self.agent, await self.visiter_arg()))


class AgentTypingHandler(AgentApiHandler):
    """`POST /admin/set/typing`: `visiter_id` (or `channel`), `typing` 1/0."""

    quiet_statuses = QUIET_RATE_LIMIT

    async def post(self) -> None:
        visiter_id = await self.chat.resolve_visiter(
            self.agent, self.arg("visiter_id", max_len=200), self.arg("channel", max_len=255))
        self.answer(0, "success", await self.signals.agent_typing(
            self.agent, visiter_id, flag(self)))


class VisitorInfoHandler(AgentApiHandler):
    """GET `visiter_id` (or `channel`): the visitor's card. POST also `name`, `tel`, `note`
    (only those sent change). The card and who may see or edit it: `VisitorCards`."""

    async def visiter(self) -> str:
        return await self.chat.resolve_visiter(
            self.agent, self.arg("visiter_id", max_len=200), self.arg("channel", max_len=255))

    async def get(self) -> None:
        self.answer(0, "", await self.visitor_cards.card(self.agent, await self.visiter()))

    async def post(self) -> None:
        vid = await self.visiter()
        values = {k: self.arg(k, max_len=n).strip() for k, n in EDITABLE.items()
                  if k in self.body_args()}
        self.answer(0, "success", await self.visitor_cards.edit(self.agent, vid, values))


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/set/chats", AgentChatsHandler),
        (r"/admin/set/getchats", GetChatsHandler),
        (r"/admin/set/getwait", GetWaitHandler),
        (r"/admin/set/get", ClaimHandler),
        (r"/admin/set/getchatnow", GetChatNowHandler),
        (r"/admin/set/getblackdata", GetBlackDataHandler),
        (r"/admin/set/getmessage", GetMessageHandler),
        (r"/admin/set/history", ConversationHistoryHandler),
        (r"/admin/set/getwatch", WatchHandler),
        (r"/admin/set/blacklist", BlacklistHandler),
        (r"/admin/set/unblack", UnblackHandler),
        (r"/admin/set/transfer", TransferHandler),
        (r"/admin/set/getswitch", TransferHandler),
        (r"/admin/set/close", CloseHandler),
        (r"/admin/set/typing", AgentTypingHandler),
        (r"/admin/set/visitor", VisitorInfoHandler),
    ]
