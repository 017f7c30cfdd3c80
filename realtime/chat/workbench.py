"""What an agent does on its conversations (the workbench): its lists (open, waiting,
blacklisted), a visitor's history and unread count, replying, closing, blacklisting and
restoring a conversation. Who may act on which conversation is `Conversations._queue_for`.
"""
from __future__ import annotations

from typing import Any

from . import channels
from .errors import ChatError
from .handover import Handover
from .values import Agent


class Workbench(Handover):
    """The agent side of the chat."""

    async def resolve_visiter(self, agent: Agent, visiter_id: str = "",
                              channel: str = "") -> str:
        """The `visiter_id` a console call means: given, or found by the visitor's
        `channel` (the document's parameter for getmessage/getwatch/blacklist; a leading
        `cu` is allowed). Only visitors of the agent's business exist for it: else
        `ChatError` 404; neither given: 400."""
        if visiter_id:
            return visiter_id
        channel = channel.strip()
        if not channel:
            raise ChatError(1, "missing parameter: visiter_id or channel", 400)
        row = await self.store.find_visiter_by_channel(channel)
        if row is None and (bare := channels.visitor_part(channel)) is not None:
            row = await self.store.find_visiter_by_channel(bare)
        if row is None or row["business_id"] != agent.business_id:
            raise ChatError(1, "no such visitor in your business", 404)
        return str(row["visiter_id"])

    async def conversations(self, agent: Agent) -> list[dict[str, Any]]:
        """`/admin/set/getchats`: the agent's open conversations (`wolive_queue` rows
        `normal` with its `service_id`), newest activity first."""
        return [c.as_dict() for c in await self.store.conversations(agent.service_id)]

    async def waiting_list(self, agent: Agent) -> list[dict[str, Any]]:
        """`/admin/set/getwait`: the agent's business's visitors waiting to be claimed,
        oldest first, each with its 1-based `position`."""
        rows = [c.as_dict() for c in await self.store.waiting(agent.business_id)]
        for n, row in enumerate(rows, 1):
            row["position"] = n
        return rows

    async def blacklist_of(self, agent: Agent) -> list[dict[str, Any]]:
        """`/admin/set/getblackdata`: blacklisted visitors, latest first: the business's for
        a manager, the agent's own for a `service` agent."""
        only = agent.service_id if agent.level == "service" else None
        return [c.as_dict() for c in await self.store.blacklisted(agent.business_id, only)]

    async def history_for_agent(self, agent: Agent, visiter_id: str, before_cid: int = 0,
                                limit: int = 50, after_cid: int = -1) -> list[dict[str, Any]]:
        await self._conversation_for(agent, visiter_id, write=False)
        return await self.store.chats_of(visiter_id, agent.business_id, before_cid,
                                         min(limit, 100), after_cid=after_cid)

    async def mark_read_by_agent(self, agent: Agent, visiter_id: str) -> int:
        """`/admin/set/getwatch`: mark the visitor's messages read; returns how many."""
        await self._conversation_for(agent, visiter_id, write=False)
        return await self.store.mark_read(visiter_id, agent.business_id, "to_service")

    async def unread_for_agent(self, agent: Agent, visiter_id: str) -> int:
        """`/admin/set/getmessage`: the visitor's unread messages to the agents."""
        await self._conversation_for(agent, visiter_id, write=False)
        return await self.store.unread_count(visiter_id, agent.business_id)

    async def agent_send(self, agent: Agent, visiter_id: str, content: str,
                         msg_type: str = "text") -> dict[str, Any]:
        """`/admin/set/chats`: store the agent's reply, then push `cu{channel}` `my-event`
        and, for the agent's other consoles, `kefu{id}` `my-event` (in cid order with the
        conversation's other messages: `self.order`). A manager writing in a colleague's
        conversation: the conversation's agent (`wolive_queue.service_id`) gets the same
        `kefu{owner}` `my-event`, so its console shows the reply live.

        `msg_type` "image" / "file": `content` is an upload's URL path (see store.add_chat).
        A blacklisted visitor gets nothing (`ChatError` 4)."""
        content = self.check_content(content) if msg_type == "text" else content

        def decide(visitor: dict[str, Any] | None, queue: dict[str, Any] | None) -> int:
            self._may_act(agent, visitor, queue)
            assert queue is not None
            if queue["state"] == "in_black_list":
                raise ChatError(4, "this visitor is blacklisted / 该访客已被拉黑", 409)
            return agent.service_id

        async with self.order.hold(agent.business_id, visiter_id):
            # One transaction: who may write, the message, the agent's activity (for
            # `pick_agent`'s idle order); pushed once committed.
            found, queue, row = await self.store.add_message(
                visiter_id, agent.business_id, content, "to_visiter", decide,
                msg_type=msg_type, active_service_id=agent.service_id)
            assert found is not None and queue is not None and row is not None  # else raised
            visitor: dict[str, Any] = found
            message = {
                "cid": row["cid"], "visiter_id": visiter_id, "service_id": agent.service_id,
                "nick_name": agent.nick_name, "avatar": agent.avatar,
                "business_id": agent.business_id, "content": content, "msg_type": msg_type,
                "timestamp": row["timestamp"], "direction": "to_visiter"}
            self.hub.trigger(channels.visitor(visitor["channel"]), "my-event", {"message": message})
            # The agent's other consoles (tabs) show its reply too, and so does the
            # conversation's own agent when a manager wrote in it.
            for sid in dict.fromkeys((agent.service_id, int(queue["service_id"] or 0))):
                if sid:
                    self.hub.trigger(channels.agent(sid), "my-event", {"message": message})
        return message

    async def restore(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/getchatnow`: bring back a conversation the agent removed from its
        list (the document: "不小心删除对话表中的通话对象"): its closed (`complete`) queue
        row with this agent opens again. Returns the conversation entry. Raises
        `ChatError` 4 (409) blacklisted, 403/404 as `_queue_for`."""
        _, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] == "in_black_list":
            raise ChatError(4, "this visitor is blacklisted: unblack it first / 该访客已被拉黑",
                            409)
        if queue["state"] == "complete" and queue["service_id"] == agent.service_id:
            await self.store.change_queue(visiter_id, agent.business_id, agent.service_id,
                                          "complete", state="normal")
        return await self._entry(visiter_id, agent.business_id)

    async def close(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/close`: the conversation is over (`wolive_queue.state = complete`);
        it leaves the agent's list and load. Writes the `ended` system line (vars `{name}`: the
        closing agent's nick name; pushed to the visitor, the conversation's agent and the
        closer), whose cid a rating names (realtime/chat/ratings.py). Pushes `kefu{agent}` `closed`
        `{visiter_id}`
        (`all{business_id}` `claimed` for a waiting visitor), then under `auto` gives the
        freed place to the oldest waiting visitor. Already closed: code 0 again.

        Raises `ChatError`: 1 (409) blacklisted, 2 (409) changed meanwhile; 403/404 as
        `_queue_for`."""
        visitor, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] == "complete":
            return {"visiter_id": visiter_id, "state": "complete"}
        if queue["state"] == "in_black_list":
            raise ChatError(1, "this visitor is blacklisted, not in a conversation", 409)
        # The state and its line together: with the cluster out of reach, neither (a 503 to
        # send again), never a closed conversation without its "ended" line.
        async with self.order.hold(agent.business_id, visiter_id):
            if not await self.store.change_queue(visiter_id, agent.business_id,
                                                 queue["service_id"], "normal",
                                                 state="complete"):
                raise ChatError(2, "the conversation changed meanwhile; reload", 409)
            # The closing line (the visitor's window then asks for a rating).
            await self.system_line(visitor, agent.business_id, queue["service_id"], "ended",
                                   {"name": agent.nick_name}, agents=(agent.service_id,))
        self._gone(agent.business_id, visiter_id, queue["service_id"], "closed")
        await self.assign_waiting(agent.business_id)
        return {"visiter_id": visiter_id, "state": "complete"}

    async def blacklist(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/blacklist`: `wolive_queue.state = in_black_list`; the visitor's
        messages and notices are refused (code 4) from now on. A waiting visitor may be
        blacklisted by any agent of the business (it becomes that agent's). Pushes
        `kefu{agent}` `blacklisted` `{visiter_id}` (`all{business_id}` `claimed` when it was
        waiting). Already blacklisted: code 0 again. Raises `ChatError` 2 (409) changed
        meanwhile; 403/404 as `_queue_for`."""
        _, queue = await self._queue_for(agent, visiter_id, write=False)
        if queue["state"] == "in_black_list":
            return {"visiter_id": visiter_id, "state": "in_black_list"}
        owner = queue["service_id"] or agent.service_id
        if not await self.store.change_queue(visiter_id, agent.business_id,
                                             queue["service_id"], queue["state"],
                                             service_id=owner, state="in_black_list"):
            raise ChatError(2, "the conversation changed meanwhile; reload", 409)
        if queue["state"] == "normal":
            self._gone(agent.business_id, visiter_id, queue["service_id"], "blacklisted")
            await self.assign_waiting(agent.business_id)
        return {"visiter_id": visiter_id, "state": "in_black_list"}

    async def unblack(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/unblack`: take the visitor off the blacklist (state `complete`: it
        may write or be assigned again). Raises `ChatError` 1 (409) not blacklisted,
        2 (409) changed meanwhile; 403/404 as `_queue_for`."""
        _, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] != "in_black_list":
            raise ChatError(1, "this visitor is not blacklisted", 409)
        if not await self.store.change_queue(visiter_id, agent.business_id,
                                             queue["service_id"], "in_black_list",
                                             state="complete"):
            raise ChatError(2, "the conversation changed meanwhile; reload", 409)
        return {"visiter_id": visiter_id, "state": "complete"}
