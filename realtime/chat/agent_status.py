"""An agent's explicit status, `available` or `away`, and the channel names every console
page receives in its boot data.

Two different things say whether an agent takes chats:

- *online / offline* (`wolive_service.state`): whether any console page of the agent holds
  `kefu{service_id}` (`realtime.chat.presence`); nobody sets it by hand.
- *available / away* (`wolive_service_status`): what the agent chose in the top bar. An away
  agent keeps its open conversations and can still be reached by them, but the auto rule
  gives it nobody new (`realtime.chat.assignment.pick_agent`) and it is no transfer target.

A change is pushed, after it is stored, as event `status` with data `{service_id, status,
state}` to `ud{service_id}` (the agent's own consoles, every tab), `all{business_id}` (the
colleagues' consoles: transfer lists) and `se{service_id}` (the agent's visitors' windows;
WoLive's `geton` / `logout` keep meaning online / offline there).
"""
from __future__ import annotations

from typing import Any

from store import NotFound, Store

from . import channels
from .errors import ChatError
from .facade import Chat
from .values import Agent
from ..pusher.hub import Hub

#: The statuses an agent may set.
STATUSES = ("available", "away")
#: The event that carries a status change.
STATUS_EVENT = "status"


def agent_channels(service_id: int, business_id: str) -> dict[str, str]:
    """The channels an agent's console pages use, by role: `presence` (`kefu{id}`: held
    while a page is open, so the agent is online), `own` (`ud{id}`: the agent's own events,
    e.g. `status`), `team` (`presence-business-{business_id}`: online colleagues) and
    `business` (`all{business_id}`: the business's queue and colleagues' `status`)."""
    return channels.agent_console(service_id, business_id)


class AgentStatus:
    """Reads and sets agents' `available` / `away` status."""

    def __init__(self, store: Store, hub: Hub, chat: Chat) -> None:
        self.store = store
        self.hub = hub
        self.chat = chat

    async def boot(self, agent: Agent) -> dict[str, Any]:
        """What a console page needs to keep the agent online and show its status:
        `{channels: agent_channels(...), status, away: [service_id of the business's away
        agents]}`."""
        return {"channels": agent_channels(agent.service_id, agent.business_id),
                "status": await self.store.service_status(agent.service_id),
                "away": await self.store.away_services(agent.business_id)}

    async def set(self, agent: Agent, status: str) -> dict[str, Any]:
        """Set the agent's own status. Returns `{service_id, status, state, changed}`
        (`state`: online/offline; `changed`: False when it already was `status`). Pushes
        `status` (module docstring) when it changed; setting `available` then gives the
        business's waiting visitors to agents with room (`Chat.assign_waiting`).
        Raises `ChatError` 1 (400) for a status not in `STATUSES`, 1 (404) when the agent
        is gone."""
        if status not in STATUSES:
            raise ChatError(1, "status must be available or away / 状态只能是 available 或 away",
                            400)
        try:
            changed = await self.store.set_service_status(agent.service_id, status)
            row = await self.store.get_service(agent.service_id)
        except NotFound:
            raise ChatError(1, "no such agent / 没有该客服", 404) from None
        data = {"service_id": agent.service_id, "status": status, "state": row["state"]}
        if changed:
            names = agent_channels(agent.service_id, agent.business_id)
            self.hub.trigger(names["own"], STATUS_EVENT, data)
            self.hub.trigger(names["business"], STATUS_EVENT, data)
            self.hub.trigger(channels.agent_state(agent.service_id), STATUS_EVENT, data)
        if changed and status == "available":
            await self.chat.assign_waiting(agent.business_id)
        return {**data, "changed": changed}
