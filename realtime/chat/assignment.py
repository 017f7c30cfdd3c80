"""Who gets a visitor: `pick_agent` (the fewest open conversations, then idle longest, never
over the per-agent cap or away), and the decision that gives waiting and stranded visitors to
agents with room, one decision at a time per business (`Assignment._lock` in this process,
`Store.assignment` across processes). Telling the visitors of it is `handover`'s.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from . import channels
from .conversations import Conversations
from .values import Handed


def pick_agent(online: list[dict[str, Any]], cap: int = 0) -> int | None:
    """Auto-assignment's choice among online agents `[{service_id, load, idle_since_ms,
    away?}]`: the fewest open conversations, ties to the one idle longest (smallest
    `idle_since_ms`), then the lowest id; agents at `cap` (> 0) and agents `away` are passed
    over. None when all are full or away.
    (The original WoLive counted queue rows ever assigned; this counts current load.)"""
    free = [r for r in online if not r.get("away") and (not cap or r["load"] < cap)]
    if not free:
        return None
    return int(min(free, key=lambda r: (r["load"], r["idle_since_ms"], r["service_id"]))
               ["service_id"])


class Assignment(Conversations):
    """The assignment decision and the waiting line's places."""

    def _lock(self, business_id: str) -> asyncio.Lock:
        """This process's contenders for a business queue here before they take the
        database lock (`Store.assignment`, which alone makes the decision safe across
        processes), so they do not each hold a pooled connection while waiting."""
        lock = self._assign_locks.get(business_id)
        if lock is None:
            lock = self._assign_locks[business_id] = asyncio.Lock()
        return lock

    async def _assign_decision(self, business_id: str, auto: bool) -> list[Handed]:
        """The decision of `assign_waiting`, committed (see `Handed`)."""
        # Who waits is read under the lock too: a visitor a notice is queueing right now
        # (it saw every agent full) is seen here once that notice commits, so a place
        # freed meanwhile is not left empty.
        async with self._lock(business_id), self.store.assignment(business_id):
            return await self._decide_waiting(business_id, stranded=True, auto=auto)

    async def _decide_waiting(self, business_id: str, stranded: bool = False,
                              auto: bool = True) -> list[Handed]:
        """`_assign_decision`'s work; the caller holds the business's assignment lock
        (`_lock` and `Store.assignment`). `stranded`: serve stranded visitors too (see
        `assign_waiting`); `auto` False (the `claim` rule): only put those back in the
        waiting line. Returns what was handed (`Handed`)."""
        done: list[Handed] = []
        unserved = [(vid, previous) for vid, previous in
                    await self.store.unserved(business_id, stranded=stranded)
                    if not (previous and self.agent_settling(previous))]
        if not unserved:  # the usual case: nobody to hand over
            return done
        online = await self.store.online_services_with_load(business_id)
        if not online:
            return done
        for waiting_id, previous in unserved:
            if not auto:
                if previous and await self.store.take_stranded(waiting_id, business_id,
                                                               previous, 0):
                    done.append((waiting_id, 0, previous))
                continue
            chosen = pick_agent(online, self.max_conversations_per_agent)
            if chosen is None:
                break
            if previous:
                if not await self.store.take_stranded(waiting_id, business_id, previous,
                                                      chosen):
                    continue
            elif not await self.store.claim_waiting(waiting_id, business_id, chosen):
                continue
            await self.store.note_service_activity(chosen, assigned=True)
            for r in online:
                if r["service_id"] == chosen:
                    r["load"] += 1
                    r["idle_since_ms"] = int(time.time() * 1000)
            done.append((waiting_id, chosen, previous))
        return done

    async def publish_positions(self, business_id: str) -> int:
        """Tell every waiting visitor of the business its place: `cu{channel}` `queue`
        `{position}` (1-based, first come first) while at least one agent is online;
        `{position: 0}` to all of them when nobody is (the last agent went offline: the
        windows show "nobody online", not a place in a line nobody serves). Returns how
        many were told."""
        anyone = bool(await self.store.online_services_with_load(business_id))
        rows = await self.store.waiting_channels(business_id)
        for n, (_vid, channel) in enumerate(rows, 1):
            self.hub.trigger(channels.visitor(channel), "queue", {"position": n if anyone else 0})
        return len(rows)
