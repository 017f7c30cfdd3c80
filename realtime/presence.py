"""Who is online, written straight to the database from channel occupancy.

An agent is online while any console tab holds `kefu{service_id}`; a visitor while its
window holds `cu{channel}` (WOLIVE-NOTES, "Online / offline"). On a change the tracker
writes `wolive_service.state` / `wolive_visiter.state` and pushes `geton` / `logout`: to
`se{service_id}` for an agent, to the visitor's agent's `kefu{service_id}` for a visitor.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Optional

from store import Store

from .hub import Hub

log = logging.getLogger("wolive.presence")

#: A channel vacated for less than this is not an offline/online flap: a page reload
#: re-subscribes well within it (PUSHER-COMPAT, "Webhooks": vacated held ~3 s).
VACATE_GRACE_S = 3.0

AGENT_CHANNEL = re.compile(r"^kefu(\d{1,10})$")
VISITOR_CHANNEL = re.compile(r"^cu(v[0-9a-f]{40})$")


class PresenceTracker:
    """Listens to the hub's adapter and keeps the state columns true."""

    def __init__(self, store: Store, hub: Hub, grace_s: float = VACATE_GRACE_S) -> None:
        self.store = store
        self.hub = hub
        self.grace_s = grace_s
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._want: dict[str, bool] = {}
        # Channels last written online; absent means offline (start-up writes everyone
        # offline), so a reload inside the grace writes and pushes nothing.
        self._online: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        hub.adapter.add_occupancy_listener(self.on_occupancy)

    def on_occupancy(self, app_id: str, channel: str, occupied: bool) -> None:
        if app_id != self.hub.default_app.id:
            return
        if not (AGENT_CHANNEL.match(channel) or VISITOR_CHANNEL.match(channel)):
            return
        timer = self._timers.pop(channel, None)
        if timer:
            timer.cancel()
        if occupied:
            self._set(channel, True)
        else:
            loop = asyncio.get_running_loop()
            self._timers[channel] = loop.call_later(self.grace_s, self._vacated, channel)

    async def apply(self, channel: str, online: bool) -> bool:
        """Set `channel`'s holder online or offline now, as told from outside this hub (an
        external Pusher server's webhook to `/admin/event`); waits for the write. Same
        writes and pushes as local occupancy, and no write when nothing changes. Returns
        False (doing nothing) for a channel that is neither `kefu{id}` nor a visitor's."""
        if not (AGENT_CHANNEL.match(channel) or VISITOR_CHANNEL.match(channel)):
            return False
        timer = self._timers.pop(channel, None)
        if timer:
            timer.cancel()
        self._set(channel, online)
        task = self._tasks.get(channel)
        if task is not None:
            await asyncio.shield(task)
        return True

    def _vacated(self, channel: str) -> None:
        self._timers.pop(channel, None)
        if not self.hub.occupied(channel):
            self._set(channel, False)

    def _set(self, channel: str, online: bool) -> None:
        self._want[channel] = online
        if channel not in self._tasks:
            self._tasks[channel] = asyncio.ensure_future(self._apply(channel))

    async def _apply(self, channel: str) -> None:
        """Write the wanted state until it stops changing; one writer per channel, so an
        online and an offline write can never land in the wrong order."""
        try:
            while True:
                want = self._want[channel]
                if want != (channel in self._online):
                    try:
                        await self._write(channel, want)
                    except Exception:
                        log.exception("presence write failed for %s", channel)
                    else:
                        if want:
                            self._online.add(channel)
                        else:
                            self._online.discard(channel)
                if self._want.get(channel) == want:
                    break
        finally:
            self._tasks.pop(channel, None)
            self._want.pop(channel, None)

    async def _write(self, channel: str, online: bool) -> None:
        state = "online" if online else "offline"
        event = "geton" if online else "logout"
        m = AGENT_CHANNEL.match(channel)
        if m:
            service_id = int(m.group(1))
            await self.store.set_service_state(service_id, state)
            self.hub.trigger(f"se{service_id}", event, {"service_id": service_id,
                                                        "state": state})
            return
        m = VISITOR_CHANNEL.match(channel)
        if m:
            row = await self.store.set_visiter_state(m.group(1), state)
            if row is None:
                return
            queue = await self.store.get_queue(row["visiter_id"], row["business_id"])
            if queue and queue["service_id"]:
                self.hub.trigger(f"kefu{queue['service_id']}", event, {
                    "visiter_id": row["visiter_id"], "channel": row["channel"],
                    "state": state})

    async def drain(self, timeout_s: Optional[float] = 5.0) -> None:
        """Cancel pending grace timers and wait for writes in flight (shutdown)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=timeout_s)
