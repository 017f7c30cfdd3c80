"""What the chat's use cases share about a conversation: its state (the store, the hub, the
per-conversation order of writes and pushes, the hooks wolive.py wires), what a message may
hold, which agent may act on which conversation, the lines written into a transcript, and
the pushes that tell each side a conversation started, moved or ended.

`Conversations` is the base of the use-case mixins (`assignment`, `handover`, `visitors`,
`workbench`) that `realtime.chat.facade.Chat` composes. Every write is committed by the store
before its event is pushed.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from config import ChatConfig
from store import NotFound, Store

from . import channels
from .errors import ChatError
from .values import Agent
from ..ordering import ConversationOrder
from ..pusher.hub import Hub

#: The configured limits' defaults (`chat.max_message_chars`, `max_conversations_per_agent`).
_DEFAULTS = ChatConfig()
#: The `content` parameter of a message may be this many times `max_message_chars` long
#: before it is stripped and checked (whitespace around a message is not refused as long).
RAW_CONTENT_FACTOR = 4


def public_agent(row: dict[str, Any]) -> dict[str, Any]:
    """What a visitor may see of an agent (never the password hash, phone or email)."""
    return {"service_id": row["service_id"], "nick_name": row["nick_name"],
            "avatar": row["avatar"], "state": row["state"], "business_id": row["business_id"]}


def visitor_event(visitor: dict[str, Any]) -> dict[str, Any]:
    """The `on_notice` payload: who the visitor is (never its IP)."""
    return {"visiter_id": visitor["visiter_id"], "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "channel": visitor["channel"],
            "business_id": visitor["business_id"], "from_url": visitor["from_url"],
            "state": visitor["state"]}


class Conversations:
    """A conversation's shared state and its common steps. `secret` derives visitor
    channels."""

    def __init__(self, store: Store, hub: Hub, secret: str,
                 max_message_chars: int = _DEFAULTS.max_message_chars,
                 max_conversations_per_agent: int = _DEFAULTS.max_conversations_per_agent
                 ) -> None:
        self.store = store
        self.hub = hub
        self.secret = secret
        #: Told of visitors' doings, after the write and the push: hook(kind, data) with
        #: kind "message" (data: the message, as pushed) or "unattended" (data: the
        #: visitor row; nobody was online). Hooks must not block (realtime/chat/wechat.py).
        self.visitor_hooks: list[Callable[[str, dict[str, Any]], None]] = []
        #: Told `cu{channel}` of each visitor the notice puts in the waiting line (after
        #: the commit), so that one whose window never holds that channel (an API call
        #: alone, a window closed at once) can be taken out of it (wolive.py wires the
        #: presence tracker's `expect_back`). Listeners must not block.
        self.waiting_listeners: list[Callable[[str], None]] = []
        self.max_message_chars = max_message_chars
        self.max_conversations_per_agent = max_conversations_per_agent
        # One auto-assignment at a time per business, so two visitors arriving together
        # cannot both take an agent's last free place (the cap): the database's lock
        # (`Store.assignment`) decides across processes; this per-process lock only queues
        # a process's own contenders in front of it (`_lock`). Claims need no lock: they
        # are a conditional UPDATE (see `claim`).
        self._assign_locks: dict[str, asyncio.Lock] = {}
        #: Store-then-push of a conversation's messages, one at a time: pushes follow cids.
        self.order = ConversationOrder(turn=None if hub.adapter.inline else hub.adapter.turn)
        #: agent_settling(service_id): whether the presence tracker has not settled that
        #: agent's state yet (expected back after a start, its change not written yet, or
        #: `agent_left` still running for it); its conversations are not stranded then.
        #: wolive.py wires `PresenceTracker.settling` here.
        self.agent_settling: Callable[[int], bool] = lambda _service_id: False
        #: `notice` answers given, by code (0-4), for `realtime.metrics`.
        self.notice_counts: dict[int, int] = {}

    @property
    def max_content_arg(self) -> int:
        """Longest `content` parameter a handler reads (characters): `max_message_chars`
        times `RAW_CONTENT_FACTOR`; `check_content` then refuses what is over
        `max_message_chars` once stripped."""
        return self.max_message_chars * RAW_CONTENT_FACTOR

    def check_content(self, content: str) -> str:
        content = (content or "").strip()
        if not content:
            raise ChatError(1, "content is empty", 400)
        if len(content) > self.max_message_chars:
            raise ChatError(1, f"content is over {self.max_message_chars} characters", 413)
        return content

    async def _queue_for(self, agent: Agent, visiter_id: str, write: bool = True
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The visitor and its queue row, if `agent` may act on them. The levels rule: a
        `service` agent touches only its own conversations (and, to read or blacklist, the
        business's waiting visitors: `write=False`); a manager or super_manager its
        business's; nobody another business's (rows are looked up in the agent's own
        business only). Raises `ChatError` 404 (no such visitor / never queued), 403."""
        try:
            visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        except NotFound:
            visitor = None
        queue = await self.store.get_queue(visiter_id, agent.business_id) if visitor else None
        self._may_act(agent, visitor, queue, write)
        assert visitor is not None and queue is not None
        return visitor, queue

    @staticmethod
    def _may_act(agent: Agent, visitor: dict[str, Any] | None,
                 queue: dict[str, Any] | None, write: bool = True) -> None:
        """`_queue_for`'s rule on rows already read. Raises `ChatError` 404, 403."""
        if visitor is None:
            raise ChatError(1, "no such visitor in your business", 404)
        if queue is None:
            raise ChatError(1, "no conversation with this visitor", 404)
        if agent.level == "service" and queue["service_id"] != agent.service_id and \
                (write or queue["service_id"] != 0):
            raise ChatError(1, "this visitor is talking to another agent / 不是您的访客", 403)

    async def _conversation_for(self, agent: Agent, visiter_id: str,
                                write: bool = True) -> dict[str, Any]:
        """The visitor row, if `agent` may talk to it (see `_queue_for`). Raises
        `ChatError`."""
        return (await self._queue_for(agent, visiter_id, write))[0]

    async def _entry(self, visiter_id: str, business_id: str) -> dict[str, Any]:
        row = await self.store.conversation(visiter_id, business_id)
        if row is None:
            raise ChatError(1, "no conversation with this visitor", 404)
        return row.as_dict()

    async def _agent_card(self, service_id: int) -> dict[str, Any]:
        """What the visitor is told about its agent: `public_agent` + `greeting` + `status`
        (`available` / `away`, the agent's explicit status) + `agent_channel` (`se{id}`,
        where its window hears the agent's state)."""
        data = public_agent(await self.store.get_service(service_id))
        data["greeting"], data["status"] = await self.store.card_extras(service_id)
        data["agent_channel"] = channels.agent_state(service_id)
        return data

    async def system_line(self, visitor: dict[str, Any], business_id: str, service_id: int,
                          key: str, values: dict[str, Any] | None = None,
                          agents: tuple[int, ...] = (),
                          agents_only: bool = False) -> dict[str, Any]:
        """Write a line into a conversation's transcript (an end, a transfer, ...) and push it
        after the commit: `cu{channel}` `my-event` and `kefu{id}` `cu-event` for `service_id`
        and each of `agents` (0s skipped), as messages are pushed.

        The row: `msg_type` "system", `content` JSON `{"key": key, "vars": values}` (the
        pages render it in their language), direction `to_visiter`, state `readed` (never
        unread). `visitor` is its `wolive_visiter` row. `agents_only`: `msg_type` "note", a
        line the visitor never gets (not pushed to `cu{channel}`, not in its history).
        Returns the message as pushed."""
        content = json.dumps({"key": key, "vars": values or {}}, ensure_ascii=False)
        msg_type = "note" if agents_only else "system"
        async with self.order.hold(business_id, visitor["visiter_id"]):
            row = await self.store.add_chat(visitor["visiter_id"], service_id, business_id,
                                            content, "to_visiter", msg_type=msg_type,
                                            state="readed")
            message = {
                "cid": row["cid"], "visiter_id": visitor["visiter_id"],
                "visiter_name": visitor["visiter_name"], "channel": visitor["channel"],
                "business_id": business_id, "service_id": service_id, "content": content,
                "msg_type": msg_type, "timestamp": row["timestamp"],
                "direction": "to_visiter"}
            if not agents_only:
                self.hub.trigger(channels.visitor(visitor["channel"]), "my-event",
                                 {"message": message})
            for sid in dict.fromkeys((service_id, *agents)):
                if sid:
                    self.hub.trigger(channels.agent(sid), "cu-event", {"message": message})
        return message

    async def _greet(self, visitor: dict[str, Any], business_id: str, service_id: int,
                     card: dict[str, Any]) -> None:
        """A conversation starts with agent `service_id`: its active greeting (`card`'s
        `greeting`, from `wolive_sentence`) is stored as the agent's first message
        (`to_visiter`, text, sent by that agent) and pushed (`cu{channel}` `my-event`);
        `card` gains `greeting_message`, the message as pushed. No greeting: nothing."""
        greeting = str(card.get("greeting") or "").strip()
        if not greeting:
            return
        async with self.order.hold(business_id, visitor["visiter_id"]):
            row = await self.store.add_chat(visitor["visiter_id"], service_id, business_id,
                                            greeting, "to_visiter")
            message = {
                "cid": row["cid"], "visiter_id": visitor["visiter_id"],
                "service_id": service_id, "nick_name": card["nick_name"],
                "avatar": card["avatar"], "business_id": business_id, "content": greeting,
                "msg_type": "text", "timestamp": row["timestamp"], "direction": "to_visiter"}
            self.hub.trigger(channels.visitor(visitor["channel"]), "my-event", {"message": message})
        card["greeting_message"] = message

    async def _announce(self, visitor: dict[str, Any], business_id: str, chosen: int,
                        previous: int | None, card: dict[str, Any], reason: str) -> None:
        """Tell everyone a visitor now talks to `chosen` (after the write committed):
        `ud{chosen}` `on_notice` (the visitor), `cu{channel}` `cu_notice` (`card`); the
        previous agent's `kefu{id}` `getswitch`, or `all{business_id}` `claimed` when the
        visitor was waiting (`previous` 0)."""
        vid = visitor["visiter_id"]
        self.hub.trigger(channels.agent_notices(chosen), "on_notice", visitor_event(visitor))
        self.hub.trigger(channels.visitor(visitor["channel"]), "cu_notice", card)
        moved = {"visiter_id": vid, "service_id": chosen, "nick_name": card["nick_name"],
                 "reason": reason}
        if previous == 0:
            self.hub.trigger(channels.business(business_id), "claimed", moved)
        elif previous and previous != chosen:
            self.hub.trigger(channels.agent(previous), "getswitch", moved)

    def _gone(self, business_id: str, visiter_id: str, service_id: int, event: str) -> None:
        """A conversation left an agent's list (`kefu{id}` `event`), or a visitor left the
        waiting list (`all{business_id}` `claimed`, with `reason` = `event`)."""
        if service_id:
            self.hub.trigger(channels.agent(service_id), event, {"visiter_id": visiter_id})
        else:
            self.hub.trigger(channels.business(business_id), "claimed", {
                "visiter_id": visiter_id, "service_id": 0, "nick_name": "", "reason": event})
