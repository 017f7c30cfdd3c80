"""Chat use cases: assign a visitor, carry messages both ways, say who may listen where.

Rules come from the WoLive document (`/admin/event/notice` codes 0-3, the channels and
events it lists) and WOLIVE-NOTES ("Assigning a visitor", "Messages", the flaws to fix).
Every write is committed by the store before its event is pushed.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from store import Conflict, NotFound, Store

from .hub import Hub, Session
from .signing import same, visitor_channel

#: Longest message text (characters); a chat line, not a document. Configurable.
MAX_MESSAGE_CHARS = 5000
#: Longest visitor id, name and avatar URL: the document's column sizes.
MAX_VISITER_ID = 200
MAX_NAME = 255
MAX_AVATAR = 1024
VISITER_ID_RE = re.compile(r"^[A-Za-z0-9_\-.:@]{1,200}$")
BUSINESS_ID_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,100}$")
DEFAULT_VISITOR_AVATAR = "/assets/images/index/avatar-visitor.png"


class ChatError(Exception):
    """A use case refused: `code` / `msg` are the answer, `status` the HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class Agent:
    """The logged-in agent, as the use cases see it."""

    service_id: int
    business_id: str
    level: str
    nick_name: str = ""
    avatar: str = ""


@dataclass
class NoticeAnswer:
    code: int
    msg: str
    data: dict[str, Any] = field(default_factory=dict)


def public_agent(row: dict[str, Any]) -> dict[str, Any]:
    """What a visitor may see of an agent (never the password hash, phone or email)."""
    return {"service_id": row["service_id"], "nick_name": row["nick_name"],
            "avatar": row["avatar"], "state": row["state"], "business_id": row["business_id"]}


class Chat:
    """The chat use cases of one server. `secret` derives visitor channels."""

    def __init__(self, store: Store, hub: Hub, secret: str,
                 max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        self.store = store
        self.hub = hub
        self.secret = secret
        self.max_message_chars = max_message_chars

    # ---- identity -----------------------------------------------------------------------

    def channel_for(self, business_id: str, visiter_id: str) -> str:
        return visitor_channel(self.secret, business_id, visiter_id)

    def check_visitor(self, business_id: str, visiter_id: str, channel: str) -> None:
        """The visitor proves who it is with its channel. Raises `ChatError` (403)."""
        if not channel or not same(channel, self.channel_for(business_id, visiter_id)):
            raise ChatError(3, "visitor not recognised: channel does not match visiter_id",
                            403)

    @staticmethod
    def check_ids(visiter_id: str, business_id: str) -> None:
        if not VISITER_ID_RE.match(visiter_id or ""):
            raise ChatError(1, "visiter_id must be 1-200 letters, digits or _-.:@", 400)
        if not BUSINESS_ID_RE.match(business_id or ""):
            raise ChatError(1, "business_id must be 1-100 letters, digits or _-.", 400)

    def check_content(self, content: str) -> str:
        content = (content or "").strip()
        if not content:
            raise ChatError(1, "content is empty", 400)
        if len(content) > self.max_message_chars:
            raise ChatError(1, f"content is over {self.max_message_chars} characters", 413)
        return content

    def policy(self, session: Session, channel: str) -> Optional[str]:
        """Who may subscribe to WoLive's public-looking channels (closes the original's
        "every channel public" flaw): `kefu{id}` and `ud{id}` only that agent's console,
        `all{business_id}` only that business's agents. Visitor channels are unguessable."""
        m = re.match(r"^(kefu|ud)(\d+)$", channel)
        if m:
            if session.caller.service_id != int(m.group(2)):
                return "only that agent's console may subscribe"
            return None
        if channel.startswith("all"):
            if session.caller.business_id is None or \
                    channel != f"all{session.caller.business_id}":
                return "only the business's agents may subscribe"
        return None

    # ---- visitor side -------------------------------------------------------------------

    async def visit(self, visiter_id: str, business_id: str, visiter_name: str,
                    avatar: str, ip: str, from_url: str) -> dict[str, Any]:
        """Record a visitor opening the chat window; returns the visitor row.

        Raises `ChatError` (404) for an unknown business."""
        self.check_ids(visiter_id, business_id)
        try:
            await self.store.get_business(business_id)
        except NotFound:
            raise ChatError(1, f"unknown business_id {business_id!r}", 404) from None
        name = (visiter_name or "").strip()[:MAX_NAME] or f"访客{visiter_id[-6:]}"
        return await self.store.upsert_visiter(
            visiter_id, business_id, name, self.channel_for(business_id, visiter_id),
            (avatar or DEFAULT_VISITOR_AVATAR)[:MAX_AVATAR], ip[:255], from_url or "")

    async def notice(self, visiter_id: str, business_id: str, channel: str,
                     visiter_name: str = "", avatar: str = "", record: str = "",
                     ip: str = "", special: Optional[int] = None) -> NoticeAnswer:
        """`/admin/event/notice`: assign the visitor (WoLive document, "访客分配接口").

        Codes: 0 assigned (data: the agent and its greeting), 1 business closed,
        2 waiting to be claimed (data: place in the queue), 3 nobody online, 4 blacklisted.
        """
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        try:
            business = await self.store.get_business(business_id)
        except NotFound:
            raise ChatError(1, f"unknown business_id {business_id!r}", 404) from None
        if business["state"] == "close":
            return NoticeAnswer(1, "该网站已经停止客服咨询！")
        visitor = await self.visit(visiter_id, business_id, visiter_name, avatar, ip, record)
        queue = await self.store.get_queue(visiter_id, business_id)
        if queue and queue["state"] == "in_black_list":
            return NoticeAnswer(4, "you are blocked by this site / 您已被禁止咨询")
        online = await self.store.online_services_with_load(business_id)
        if not online:
            return NoticeAnswer(3, "请留言")
        chosen: Optional[int] = None
        online_ids = {r["service_id"] for r in online}
        if special and special in online_ids:
            chosen = special
        elif business["distribution_rule"] == "claim":
            if not (queue and queue["state"] == "normal" and queue["service_id"] in online_ids):
                await self.store.put_queue(visiter_id, business_id, 0)
                place = await self.store.waiting_position(visiter_id, business_id)
                self.hub.trigger(f"all{business_id}", "on_notice", {
                    "visiter_id": visiter_id, "visiter_name": visitor["visiter_name"],
                    "avatar": visitor["avatar"], "channel": visitor["channel"],
                    "business_id": business_id, "from_url": visitor["from_url"]})
                return NoticeAnswer(2, "等待认领", {"position": place})
            chosen = queue["service_id"]
        elif queue and queue["service_id"] in online_ids:
            chosen = queue["service_id"]  # a returning visitor goes back to its agent
        else:
            chosen = min(online, key=lambda r: (r["load"], r["service_id"]))["service_id"]
        try:
            await self.store.put_queue(visiter_id, business_id, chosen)
        except Conflict:
            return NoticeAnswer(4, "you are blocked by this site / 您已被禁止咨询")
        agent = await self.store.get_service(chosen)
        greeting = await self.store.active_greeting(chosen)
        data = public_agent(agent)
        data["greeting"] = greeting
        self.hub.trigger(f"ud{chosen}", "on_notice", {
            "visiter_id": visiter_id, "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "channel": visitor["channel"],
            "business_id": business_id, "from_url": visitor["from_url"],
            "state": visitor["state"]})
        self.hub.trigger(f"cu{visitor['channel']}", "cu_notice", data)
        return NoticeAnswer(0, "", data)

    async def visitor_send(self, visiter_id: str, business_id: str, channel: str,
                           content: str, msg_type: str = "text") -> dict[str, Any]:
        """`/admin/event/chats`: store a visitor's message, then push `kefu{id}` `cu-event`.

        The agent is the one the visitor is assigned to (the `service_id` a client sends is
        not trusted). Raises `ChatError`: 3 when the visitor is unknown, not assigned or
        blacklisted (the document's failure code for this URL)."""
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        content = self.check_content(content) if msg_type == "text" else content
        try:
            visitor = await self.store.get_visiter(visiter_id, business_id)
        except NotFound:
            raise ChatError(3, "unknown visitor: open the chat window first", 404) from None
        queue = await self.store.get_queue(visiter_id, business_id)
        if queue is None:
            raise ChatError(3, "not assigned to an agent yet: call /admin/event/notice", 409)
        if queue["state"] == "in_black_list":
            raise ChatError(4, "you are blocked by this site / 您已被禁止咨询", 403)
        row = await self.store.add_chat(visiter_id, queue["service_id"], business_id,
                                        content, "to_service", msg_type=msg_type)
        message = {
            "cid": row["cid"], "visiter_id": visiter_id, "visiter_name":
            visitor["visiter_name"], "avatar": visitor["avatar"], "channel": visitor["channel"],
            "business_id": business_id, "service_id": queue["service_id"],
            "content": content, "msg_type": msg_type, "timestamp": row["timestamp"],
            "direction": "to_service"}
        target = f"kefu{queue['service_id']}" if queue["service_id"] else f"all{business_id}"
        self.hub.trigger(target, "cu-event", {"message": message})
        return message

    async def history_for_visitor(self, visiter_id: str, business_id: str, channel: str,
                                  before_cid: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        rows = await self.store.chats_of(visiter_id, business_id, before_cid, min(limit, 100))
        await self.store.mark_read(visiter_id, business_id, "to_visiter")
        return rows

    # ---- agent side ---------------------------------------------------------------------

    async def _conversation_for(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """The visitor row, if `agent` may talk to it. Raises `ChatError`."""
        try:
            visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        except NotFound:
            raise ChatError(1, "no such visitor in your business", 404) from None
        queue = await self.store.get_queue(visiter_id, agent.business_id)
        if queue is None:
            raise ChatError(1, "no conversation with this visitor", 404)
        if queue["service_id"] != agent.service_id and agent.level == "service":
            raise ChatError(1, "this visitor is talking to another agent", 403)
        return visitor

    async def agent_send(self, agent: Agent, visiter_id: str, content: str,
                         msg_type: str = "text") -> dict[str, Any]:
        """`/admin/set/chats`: store the agent's reply, then push `cu{channel}` `my-event`.

        `msg_type` "image" / "file": `content` is an upload's URL path (see store.add_chat)."""
        content = self.check_content(content) if msg_type == "text" else content
        visitor = await self._conversation_for(agent, visiter_id)
        row = await self.store.add_chat(visiter_id, agent.service_id, agent.business_id,
                                        content, "to_visiter", msg_type=msg_type)
        message = {
            "cid": row["cid"], "visiter_id": visiter_id, "service_id": agent.service_id,
            "nick_name": agent.nick_name, "avatar": agent.avatar,
            "business_id": agent.business_id, "content": content, "msg_type": msg_type,
            "timestamp": row["timestamp"], "direction": "to_visiter"}
        self.hub.trigger(f"cu{visitor['channel']}", "my-event", {"message": message})
        return message

    async def conversations(self, agent: Agent) -> list[dict[str, Any]]:
        return [c.as_dict() for c in await self.store.conversations(agent.service_id)]

    async def history_for_agent(self, agent: Agent, visiter_id: str, before_cid: int = 0,
                                limit: int = 50) -> list[dict[str, Any]]:
        await self._conversation_for(agent, visiter_id)
        return await self.store.chats_of(visiter_id, agent.business_id, before_cid,
                                         min(limit, 100))

    async def mark_read_by_agent(self, agent: Agent, visiter_id: str) -> int:
        await self._conversation_for(agent, visiter_id)
        return await self.store.mark_read(visiter_id, agent.business_id, "to_service")


def now_s() -> int:
    return int(time.time())


def may_join(agent: Optional[Agent], channel: str) -> Optional[dict[str, Any]]:
    """Who may join which private/presence channel through wolive's own `/pusher/auth`.

    A logged-in agent may join `private-agent-{its service_id}`,
    `private-encrypted-agent-{its service_id}` (answer `{}`: no channel_data) and
    `presence-business-{its business_id}` (answer the member: `{"user_id":
    str(service_id), "user_info": {"nick_name", "avatar"}}`). Everyone else, and every other
    channel, gets None (refused). Apps that sign their own channels with an official server
    library do not go through here."""
    if agent is None:
        return None
    if channel in (f"private-agent-{agent.service_id}",
                   f"private-encrypted-agent-{agent.service_id}"):
        return {}
    if channel == f"presence-business-{agent.business_id}":
        return {"user_id": str(agent.service_id),
                "user_info": {"nick_name": agent.nick_name, "avatar": agent.avatar}}
    return None
