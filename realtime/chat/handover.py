"""A conversation changes hands: waiting visitors given to agents with room
(`assign_waiting`), a claim from the waiting line, a transfer to a colleague (with a note
for it), and the agent who goes offline or is deleted handing its visitors over. Each
hand-over is written first, then told: the transcript line, the visitor's window, both
agents' consoles.
"""
from __future__ import annotations

from typing import Any

from store import NotFound

from . import channels
from .assignment import Assignment, pick_agent
from .conversations import visitor_event
from .errors import ChatError
from .values import Agent, Handed

#: Longest transfer note for the receiving agent (characters).
MAX_TRANSFER_NOTE = 500


class Handover(Assignment):
    """Assigning the waiting, claims, transfers and the agent who leaves."""

    async def assign_waiting(self, business_id: str,
                             business: dict[str, Any] | None = None) -> int:
        """Run whenever an agent may have become available (came online, set itself
        available, a place freed under the cap, a waiting visitor left): under `auto`, give
        waiting visitors (oldest first) to online agents with room (`pick_agent`), up to the
        cap. The decision runs under `Store.assignment` (the business's lock in the
        database), so two triggers at once, in one process or two, never over-assign; each
        hand-over is also the same conditional UPDATE as a claim, so it never takes a
        visitor an agent just claimed.

        Stranded visitors (`store.conversations`: their agent went offline and nobody could take
        over then, their window is open) are served too, in the same first-come order
        (`qid`), unless the presence tracker has not settled their agent yet
        (`agent_settling`): under `auto` each goes to an agent with room as when its agent
        leaves (`_hand_over`, reason "agent_left": a `transferred` line, `cu{channel}`
        `cu_notice`, `ud{id}` `on_notice`, `kefu{id}` `handover`); under `claim`, while any
        agent is online, back to the waiting line (an `agent_left` line with `then`
        "queue", `all{business_id}` `on_notice`). What the visitor wrote meanwhile stays in
        the conversation (the new agent reads it and its unread count).

        Then (both rules) every visitor still waiting is told its place, `cu{channel}`
        `queue` `{position}` (0 when nobody is online; `publish_positions`).
        `business`: its `wolive_business` row when the caller has just read it. Returns
        how many were assigned or queued; pushes as `notice` does, plus
        `all{business_id}` `claimed`; each agent's greeting is stored as its first message
        for a visitor that was waiting (`_greet`)."""
        return await self._assign_waiting(business_id, business, publish=True)

    async def _assign_waiting(self, business_id: str, business: dict[str, Any] | None,
                              publish: bool) -> int:
        """`assign_waiting`; `publish` False: tell the waiting their places only when some
        were assigned (a visitor's own `notice` answers its place itself)."""
        if business is None:
            try:
                business = await self.store.get_business(business_id)
            except NotFound:
                return 0
        if business["state"] == "close":
            return 0
        done = await self._assign_decision(business_id,
                                           auto=business["distribution_rule"] != "claim")
        if done:
            await self._hand_out(business_id, done)
        elif publish:
            await self.publish_positions(business_id)
        return len(done)

    async def _hand_out(self, business_id: str, done: list[Handed]) -> None:
        """Tell a committed hand-over (`[(visiter_id, service_id, previous)]`, see `Handed`):
        a waiting visitor's new agent greets it (`_greet`) and is announced (`_announce`);
        a stranded one is handed over from its offline agent (`_hand_over`) or, under
        `claim`, told it waits again; then everyone still waiting learns their place
        (`publish_positions`)."""
        for taken, chosen, previous in done:
            visitor = await self.store.get_visiter(taken, business_id)
            if not previous:
                card = await self._agent_card(chosen)
                await self._greet(visitor, business_id, chosen, card)
                await self._announce(visitor, business_id, chosen, 0, card, "assigned")
            elif chosen:
                await self._hand_over(visitor, business_id, previous,
                                      await self._agent_card(chosen), "", "agent_left")
            else:
                try:
                    name = (await self.store.get_service(previous))["nick_name"]
                except NotFound:
                    name = ""
                await self.system_line(visitor, business_id, previous, "agent_left",
                                       {"name": name, "then": "queue"})
                self.hub.trigger(channels.business(business_id), "on_notice",
                                 visitor_event(visitor))
        await self.publish_positions(business_id)

    async def agent_available(self, service_id: int) -> int:
        """An agent became available (the presence tracker wrote it online; wired in
        wolive.py): waiting visitors of its business are served at once
        (`assign_waiting`). Returns how many were assigned."""
        try:
            row = await self.store.get_service(service_id)
        except NotFound:
            return 0
        if row["state"] != "online":
            return 0
        return await self.assign_waiting(str(row["business_id"]))

    async def leave_waiting(self, visiter_id: str, business_id: str, reason: str) -> bool:
        """Take a visitor out of the waiting line: its window closed (`reason` "left":
        the presence tracker saw its channel vacated, after the grace) or it left a
        message ("message"). Pushes `all{business_id}` `claimed` `{visiter_id,
        service_id: 0, nick_name: "", reason}` (consoles drop it from the queue) and the
        others' new places (`publish_positions`). True when it was waiting."""
        if not await self.store.leave_waiting(visiter_id, business_id,
                                              missed=reason == "message"):
            return False
        self._gone(business_id, visiter_id, 0, reason)
        await self.publish_positions(business_id)
        return True

    async def claim(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/get`: take a waiting visitor, atomically: of any number of agents
        exactly one wins (docs/api.md, "Console API"). One conditional UPDATE decides; the
        winner's visitor gets `cu{channel}` `cu_notice` (the agent and its greeting), the
        winner's consoles `ud{id}` `on_notice`, the business's agents `all{business_id}`
        `claimed` `{visiter_id, service_id, nick_name, reason}`; those still waiting their new
        places (`publish_positions`). Returns the conversation entry. The winner's greeting
        is stored as its first message (`_greet`).

        Raises `ChatError`: 2 (409) already claimed / no longer waiting, 4 (409)
        blacklisted, 404 unknown visitor or not queued."""
        try:
            visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        except NotFound:
            raise ChatError(1, "no such visitor in your business", 404) from None
        queue = await self.store.get_queue(visiter_id, agent.business_id)
        if queue is None:
            raise ChatError(1, "this visitor is not waiting / 该访客不在排队中", 404)
        if queue["state"] == "in_black_list":
            raise ChatError(4, "this visitor is blacklisted / 该访客已被拉黑", 409)
        if not await self.store.claim_waiting(visiter_id, agent.business_id, agent.service_id):
            raise ChatError(2, "already claimed / 已被认领", 409)
        await self.store.note_service_activity(agent.service_id, assigned=True)
        card = await self._agent_card(agent.service_id)
        await self._greet(visitor, agent.business_id, agent.service_id, card)
        await self._announce(visitor, agent.business_id, agent.service_id, 0, card, "claimed")
        await self.publish_positions(agent.business_id)
        return await self._entry(visiter_id, agent.business_id)

    async def transfer(self, agent: Agent, visiter_id: str, to_service_id: int,
                       note: str = "") -> dict[str, Any]:
        """`/admin/set/transfer` (WoLive's later `getswitch`): hand an open conversation to
        another online agent of the same business. Pushes `ud{new}` `on_notice`,
        `cu{channel}` `cu_notice` (the new agent), and the old agent's `kefu{old}`
        `getswitch` `{visiter_id, service_id, nick_name, reason}` so its console drops it
        (`all{business_id}` `claimed` when the visitor was waiting); see `_hand_over` for
        the `transferred` line in the transcript and the receiving agent's `handover`, which
        alone carries `note` (at most `MAX_TRANSFER_NOTE` characters, never sent to the
        visitor).

        Raises `ChatError`: 1 (400) note too long, 1 (400) to the same agent, 1 (404) no
        such agent in the business, 1 (409) not an open conversation, 3 (409) the agent is
        offline or away, 2 (409) the conversation changed meanwhile; 403/404 as
        `_queue_for`."""
        note = self.check_note(note)
        visitor, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] != "normal":
            raise ChatError(1, f"not an open conversation ({queue['state']})", 409)
        try:
            target = await self.store.get_service(to_service_id)
        except NotFound:
            target = None
        if target is None or target["business_id"] != agent.business_id:
            raise ChatError(1, "no such agent in your business / 没有该客服", 404)
        if to_service_id == queue["service_id"]:
            raise ChatError(1, "the visitor already talks to that agent", 400)
        if target["state"] != "online":
            raise ChatError(3, "that agent is offline / 该客服不在线", 409)
        if await self.store.service_status(to_service_id) == "away":
            raise ChatError(3, "that agent is away / 该客服暂时离开", 409)
        # The move and its lines together (as `close`).
        async with self.order.hold(agent.business_id, visiter_id):
            if not await self.store.change_queue(visiter_id, agent.business_id,
                                                 queue["service_id"], "normal",
                                                 service_id=to_service_id):
                raise ChatError(2, "the conversation changed meanwhile; reload", 409)
            await self.store.note_service_activity(to_service_id, assigned=True)
            card = await self._agent_card(to_service_id)
            await self._hand_over(visitor, agent.business_id, queue["service_id"], card,
                                  note, "transferred")
        await self.assign_waiting(agent.business_id)
        return {"visiter_id": visiter_id, "service_id": to_service_id,
                "nick_name": card["nick_name"]}

    @staticmethod
    def check_note(note: str) -> str:
        """A transfer note, stripped. Raises `ChatError` 1 (400) over `MAX_TRANSFER_NOTE`."""
        note = (note or "").strip()
        if len(note) > MAX_TRANSFER_NOTE:
            raise ChatError(1, f"note is over {MAX_TRANSFER_NOTE} characters", 400)
        return note

    async def _hand_over(self, visitor: dict[str, Any], business_id: str, previous: int,
                         card: dict[str, Any], note: str, reason: str) -> None:
        """Tell everyone a conversation moved from agent `previous` (0: it was waiting) to
        `card`'s agent, after the queue row was written: a system line `transferred` `{from,
        to}` (the agents' nick names; `taken_over` `{from, to}` when `reason` is
        "agent_left"; `transferred_waiting` `{to}` for a waiting visitor)
        in the transcript, pushed to the visitor and both agents; then `_announce` (reason
        `reason`); then `kefu{new}` `handover` `{visiter_id, visiter_name, from_service_id,
        from_nick_name, note, reason}` for the receiving console's notice, badge and sound
        (only there: `note` is for that agent). A `note` is also kept in the transcript for
        the agents only: a "note" line `transfer_note` `{from, to, note}`, pushed to the
        receiving agent (its console shows it after a reload too)."""
        old_name = ""
        if previous:
            try:
                old_name = (await self.store.get_service(previous))["nick_name"]
            except NotFound:
                pass
        chosen = int(card["service_id"])
        if previous:
            # Nobody transferred anything when the agent left: the next one took over.
            key = "taken_over" if reason == "agent_left" else "transferred"
            await self.system_line(visitor, business_id, chosen, key,
                                   {"from": old_name, "to": card["nick_name"]},
                                   agents=(previous,))
        else:  # a waiting visitor, handed to an agent by a manager
            await self.system_line(visitor, business_id, chosen, "transferred_waiting",
                                   {"to": card["nick_name"]})
        if note:
            await self.system_line(visitor, business_id, chosen, "transfer_note",
                                   {"from": old_name, "to": card["nick_name"], "note": note},
                                   agents_only=True)
        await self._announce(visitor, business_id, chosen, previous, card, reason)
        self.hub.trigger(channels.agent(chosen), "handover", {
            "visiter_id": visitor["visiter_id"], "visiter_name": visitor["visiter_name"],
            "from_service_id": previous, "from_nick_name": old_name, "note": note,
            "reason": reason})

    async def agent_left(self, service_id: int) -> int:
        """The presence tracker's hook: agent `service_id` went offline (after its grace).
        For each of its open conversations (`wolive_queue` `normal` with its id) whose
        visitor is online, a system line `agent_left` `{name, then}` tells the visitor, and:

        - `auto` (business open): the conversation moves to another online agent with room
          (`pick_agent`), as a transfer does (`_hand_over`, reason "agent_left"); `then`
          "moved". Nobody with room: it stays with the agent, `then` "contact" (the
          visitor window offers the contact form, `leave_contact`).
        - `claim`: it goes back to the waiting queue (`service_id` 0; its place is by its
          first arrival, `qid`), `all{business_id}` `on_notice`; `then` "queue", or
          "contact" when no agent of the business is online.

        A conversation changed meanwhile (claimed, closed, moved) is left alone; an agent
        already back online changes nothing. Returns how many conversations were told."""
        try:
            agent = await self.store.get_service(service_id)
            business = await self.store.get_business(agent["business_id"])
        except NotFound:
            return 0
        if agent["state"] == "online":
            return 0
        business_id = agent["business_id"]
        claim = business["distribution_rule"] == "claim"
        auto = not claim and business["state"] != "close"
        told = 0
        for conv in await self.store.conversations(service_id):
            if not conv.online:
                continue
            vid = conv.visiter_id
            chosen: int | None = None
            async with self._lock(business_id):
                others = [r for r in await self.store.online_services_with_load(business_id)
                          if r["service_id"] != service_id]
                if auto:
                    chosen = pick_agent(others, self.max_conversations_per_agent)
                    if chosen is not None and not await self.store.change_queue(
                            vid, business_id, service_id, "normal", service_id=chosen):
                        continue
                elif claim and not await self.store.change_queue(
                        vid, business_id, service_id, "normal", service_id=0):
                    continue
            try:
                visitor = await self.store.get_visiter(vid, business_id)
            except NotFound:
                continue
            then = "moved" if chosen else ("queue" if claim and others else "contact")
            await self.system_line(visitor, business_id, service_id, "agent_left",
                                   {"name": agent["nick_name"], "then": then})
            told += 1
            if chosen:
                await self.store.note_service_activity(chosen, assigned=True)
                await self._hand_over(visitor, business_id, service_id,
                                      await self._agent_card(chosen), "", "agent_left")
            elif claim:
                self.hub.trigger(channels.business(business_id), "on_notice",
                                 visitor_event(visitor))
        # The waiting learn their places again (those moved back to the queue joined it),
        # or, the last agent gone, that nobody is online.
        await self.publish_positions(business_id)
        return told

    async def agent_deleted(self, agent: dict[str, Any], released: list[dict[str, Any]]
                            ) -> int:
        """A manager deleted `agent` (its `wolive_service` row, now gone) and its open
        conversations went back to the waiting line in the same transaction (`released`:
        `Store.delete_service`'s visitors). Its visitors are handled as when an agent goes
        offline (`agent_left`): each whose window is open is told by a system line
        `agent_left` `{name, then}` (`then` "queue": it waits for the next agent, or
        "contact" when no agent of the business is online: the window offers the contact
        form); each is announced on `all{business_id}` `on_notice` (consoles list it to
        claim); then `assign_waiting` (under `auto` online agents with room take them:
        `cu{channel}` `cu_notice`; the rest learn their place). Returns how many were
        told."""
        business_id = str(agent["business_id"])
        if not released:
            return 0
        anyone = bool(await self.store.online_services_with_load(business_id))
        told = 0
        for visitor in released:
            if visitor["state"] == "online":
                await self.system_line(visitor, business_id, int(agent["service_id"]),
                                       "agent_left", {"name": agent["nick_name"],
                                                      "then": "queue" if anyone else "contact"})
                told += 1
            self.hub.trigger(channels.business(business_id), "on_notice", visitor_event(visitor))
        await self.assign_waiting(business_id)
        return told
