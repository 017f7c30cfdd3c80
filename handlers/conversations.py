"""Conversation API for the console (`/admin/set/...`): the agent's work on its conversations
(reply, claim, transfer, close, blacklist, read receipts, typing, the visitor card). A
logged-in agent, `_xsrf` on POST.

URLs and parameter names are the WoLive document's ("对话平台Api"); who may touch which
visitor is `realtime.chat.conversations.Conversations._queue_for`'s rule (a `service` agent its own
conversations, a manager its business's, nobody another business's).
"""
from __future__ import annotations

import functools
from typing import Any

from realtime.chat.handover import MAX_TRANSFER_NOTE
from realtime.chat.ratings import Ratings
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


# ---- the visitor card (`/admin/set/visitor`) -----------------------------------------------
# What the workbench's right column shows of a visitor, and the name / phone / note an agent
# keeps about it (`store.visitors`).


@functools.lru_cache(maxsize=1)
def _geoip() -> Any:
    from geoip2fast import GeoIP2Fast  # its country data ships inside the package
    return GeoIP2Fast(verbose=False)


@functools.lru_cache(maxsize=4096)
def place_of(ip: str) -> str:
    """The country of an IP address, e.g. "China (CN)"; "Localhost" / "Private Network ..."
    for local addresses; "" when unknown or not an address (geoip2fast's bundled data)."""
    if not ip:
        return ""
    try:
        found = _geoip().lookup(ip)
    except Exception:  # a malformed address is simply unknown
        return ""
    if getattr(found, "is_private", False):
        return str(found.country_name)
    code = str(getattr(found, "country_code", "") or "")
    if not code or code == "--":
        return ""
    return f"{found.country_name} ({code})"


@functools.lru_cache(maxsize=2048)
def parse_user_agent(ua: str) -> dict[str, Any]:
    """`{browser, os, device, mobile}` from a User-Agent (ua-parser); empty strings when
    unknown."""
    if not ua:
        return {"browser": "", "os": "", "device": "", "mobile": False}
    from ua_parser import parse

    r = parse(ua)

    def name(part: Any) -> str:
        if part is None:
            return ""
        return " ".join(str(x) for x in (part.family, part.major) if x and x != "Other")

    device = ""
    if r.device is not None and r.device.family not in ("Other", ""):
        device = r.device.family
    low = ua.lower()
    mobile = any(w in low for w in ("mobile", "iphone", "android", "ipad"))
    return {"browser": name(r.user_agent), "os": name(r.os), "device": device,
            "mobile": mobile}


class VisitorInfoHandler(AgentApiHandler):
    """GET `visiter_id` (or `channel`): the visitor's card. POST also `name`, `tel`, `note`
    (only those sent change)."""

    async def card(self, visiter_id: str) -> dict[str, Any]:
        visitor = await self.store.get_visiter(visiter_id, self.agent.business_id)
        info = await self.store.visitor_info(visiter_id, self.agent.business_id) or {}
        ua = info.get("user_agent", "") or ""
        return {
            "visiter_id": visiter_id, "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "channel": visitor["channel"],
            "online": visitor["state"] == "online", "ip": visitor["ip"],
            "place": place_of(visitor["ip"]),
            "from_url": visitor["from_url"], "referrer": info.get("referrer", "") or "",
            "user_agent": ua, "device": parse_user_agent(ua),
            "first_visit": int(info.get("first_visit") or 0),
            "last_visit": int(info.get("last_visit") or 0),
            "visits": int(info.get("visits") or 0),
            "name": info.get("name", "") or "", "tel": info.get("tel", "") or "",
            "note": info.get("note", "") or "",
            # The newest rating this agent may see, or None.
            "rating": await Ratings(self.chat).latest_for_agent(
                self.agent.service_id, self.agent.level, visiter_id, self.agent.business_id),
        }

    async def visiter(self, write: bool) -> str:
        vid = await self.chat.resolve_visiter(
            self.agent, self.arg("visiter_id", max_len=200), self.arg("channel", max_len=255))
        await self.chat._queue_for(self.agent, vid, write=write)
        return vid

    async def get(self) -> None:
        self.answer(0, "", await self.card(await self.visiter(write=False)))

    async def post(self) -> None:
        vid = await self.visiter(write=True)
        values = {k: self.arg(k, max_len=n).strip() for k, n in EDITABLE.items()
                  if k in self.body_args()}
        if values:
            await self.store.set_visitor_info(vid, self.agent.business_id, **values)
        self.answer(0, "success", await self.card(vid))


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
