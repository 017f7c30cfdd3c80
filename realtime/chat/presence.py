"""Who is online, written to the database from channel occupancy.

An agent is online while any console tab holds `kefu{service_id}`; a visitor while its
window holds `cu{channel}` (docs/api.md, "Channels and events"). On a change the tracker
writes `wolive_service.state` / `wolive_visiter.state` and pushes `geton` / `logout`: to
`se{service_id}` for an agent, to the visitor's agent's `kefu{service_id}` for a visitor.

The writes are batched: one writer task takes every change of a loop turn and writes them in
one transaction for agents and one for visitors (`Store.set_service_states`,
`Store.set_visiter_states`), so a connect storm of thousands of sockets holds one pooled
connection, not one per socket. On SQLite that writer and the listeners take turns
(`Store.background_turn`: one SQLite writer, so they queue on an asyncio lock, not in the pool
or for SQLite's lock), and requests keep the rest of the pool.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Optional

from store import Store, Unavailable

from .channels import AGENT, VISITOR, agent, agent_state, parse
from ..pusher.adapter import run_inline
from ..pusher.hub import Hub

log = logging.getLogger("wolive.presence")

#: A channel vacated for less than this is not an offline/online flap: a page reload
#: re-subscribes well within it (Pusher likewise delays `channel_vacated` a few seconds).
VACATE_GRACE_S = 3.0

#: A presence write (or listener) that found the database unavailable is tried again after
#: this, doubling up to RETRY_MAX_S (seconds): a write until it lands (with the newest wanted
#: state), a listener while the state it is about still holds.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 5.0


def _tracked(channel: str) -> str | None:
    """`AGENT` for an agent's `kefu{service_id}`, `VISITOR` for a visitor's `cu{channel}`
    (`realtime.chat.channels`), else None: only their holders are tracked."""
    named = parse(channel)
    return named.kind if named is not None and named.kind in (AGENT, VISITOR) else None


def _id(channel: str) -> Any:
    """The service_id (int) or visitor channel a tracked channel names."""
    named = parse(channel)
    assert named is not None
    return named.id


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
        # Channels whose wanted state may differ from the written one; the one task that
        # writes them (`_flush`), and `apply`'s waiters for each channel's write.
        self._dirty: set[str] = set()
        self._flusher: Optional[asyncio.Task[None]] = None
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        # Per channel, the task running its written changes' listeners, in order.
        self._hooks: dict[str, asyncio.Task[None]] = {}
        # Channels `expect_back` waits for: counted online (so not coming back is a change
        # to offline) until they come back or their time is up.
        self._expected: set[str] = set()
        # `_vacated`'s occupancy questions to an adapter that is not inline, until answered.
        self._checks: set[asyncio.Task[None]] = set()
        #: With several nodes: what this node last wrote is not the whole story (another
        #: node may have written since), so every decided change is written, and checked
        #: against the cluster after it landed (`_verify`): two nodes' writes may land in
        #: either order.
        self.shared = False
        #: Awaited after an agent was written online: listener(service_id). wolive.py
        #: wires `Chat.agent_available` here (waiting visitors are served at once).
        self.agent_online_listeners: list[Callable[[int], Awaitable[object]]] = []
        #: Awaited after an agent was written offline: listener(service_id). wolive.py wires
        #: `Chat.agent_left` here (its visitors are told, their conversations handed over).
        self.agent_offline_listeners: list[Callable[[int], Awaitable[object]]] = []
        #: Awaited after a visitor was written offline: listener(visiter_id, business_id).
        #: wolive.py wires `Chat.leave_waiting` here (a closed window stops waiting).
        self.visitor_offline_listeners: list[Callable[[str, str], Awaitable[object]]] = []
        hub.adapter.add_occupancy_listener(self.on_occupancy)

    def on_occupancy(self, app_id: str, channel: str, occupied: bool) -> None:
        if app_id != self.hub.default_app.id:
            return
        if not _tracked(channel):
            return
        timer = self._timers.pop(channel, None)
        if timer:
            timer.cancel()
        if occupied:
            if channel in self._expected:  # came back: written online like any arrival
                self._expected.discard(channel)
                self._online.discard(channel)
            self._set(channel, True)
        else:
            loop = asyncio.get_running_loop()
            self._timers[channel] = loop.call_later(self.grace_s, self._vacated, channel)

    def expect_back(self, channels: list[str], within_s: float) -> None:
        """Holders that should come back (at start-up: the windows of visitors who were
        waiting and the consoles of agents who were online when the server stopped): each
        channel not occupied within `within_s` seconds is written offline as if it had
        just been vacated, so its listeners run (a waiting visitor whose window never came
        back leaves the line; an agent who never came back is handled by `agent_left`).
        Until then the holder is `settling`."""
        loop = asyncio.get_running_loop()
        for channel in channels:
            if not _tracked(channel) or \
                    channel in self._timers or self._occupied_now(channel):
                continue
            self._expected.add(channel)
            self._online.add(channel)
            self._timers[channel] = loop.call_later(within_s, self._vacated, channel)

    def settling(self, channel: str) -> bool:
        """Whether `channel`'s holder's state is not settled yet: expected back after a
        start (`expect_back`), inside its vacate grace, a change not written yet, or the
        listeners of its last written change (e.g. `agent_left`) still running. What the
        database says of it may be about to change, or be acted on already."""
        return (channel in self._expected or channel in self._timers
                or channel in self._want or channel in self._hooks)

    async def apply(self, channel: str, online: bool) -> bool:
        """Set `channel`'s holder online or offline now, as told from outside this hub (an
        external Pusher server's webhook to `/admin/event`); waits for the write. Same
        writes and pushes as local occupancy, and no write when nothing changes. Returns
        False (doing nothing) for a channel that is neither `kefu{id}` nor a visitor's."""
        if not _tracked(channel):
            return False
        timer = self._timers.pop(channel, None)
        if timer:
            timer.cancel()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        self._set(channel, online)
        await asyncio.shield(waiter)
        hooks = self._hooks.get(channel)
        if hooks is not None:
            await asyncio.wait([hooks])
        return True

    def _occupied_now(self, channel: str) -> bool:
        """Whether `channel` is held, when the adapter can say so at once (in-process);
        False otherwise (the timer's `_vacated` asks again when it fires)."""
        return self.hub.adapter.inline and run_inline(self.hub.occupied(channel))

    def _vacated(self, channel: str) -> None:
        self._timers.pop(channel, None)
        self._expected.discard(channel)
        if self.hub.adapter.inline:
            if not run_inline(self.hub.occupied(channel)):
                self._set(channel, False)
            return

        async def check() -> None:
            if not await self.hub.occupied(channel) and channel not in self._timers:
                self._set(channel, False)
        self._spawn(check())

    def _set(self, channel: str, online: bool) -> None:
        self._want[channel] = online
        self._dirty.add(channel)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        """The one writer: every loop turn's changes go out as one batch (one transaction
        for agents, one for visitors, taking `Store.background_turn`), so a connect storm
        holds one pooled connection, not one per socket, and an online and an offline
        write of a channel can never land in the wrong order. A batch that found the
        database unavailable is tried again after RETRY_FIRST_S, doubling up to
        RETRY_MAX_S, with the newest wanted states, until it lands."""
        retry_s = RETRY_FIRST_S
        try:
            while self._dirty:
                await asyncio.sleep(0)  # this loop turn's arrivals join the batch
                batch = {ch: want for ch in self._dirty
                         if (want := self._want.get(ch)) is not None
                         and (self.shared or want != (ch in self._online))}
                idle = self._dirty - batch.keys()
                self._dirty = set()
                self._settle(idle)
                agents = {ch: w for ch, w in batch.items() if _tracked(ch) == AGENT}
                visitors = {ch: w for ch, w in batch.items() if ch not in agents}
                failed = False
                for part, write in ((agents, self._write_agents),
                                    (visitors, self._write_visitors)):
                    if not part:
                        continue
                    try:
                        async with self.store.background_turn():
                            await write(part)
                    except Unavailable:
                        # Outage or SQLite contention (the store logged it): the states
                        # must not stay wrong, so try again with the newest wanted ones.
                        self._dirty.update(part)
                        failed = True
                    except Exception:
                        log.exception("presence write failed for %d channels (%s, ...)",
                                      len(part), next(iter(part)))
                        self._settle(part.keys())
                    else:
                        self._settle(part.keys())
                        if self.shared:
                            for channel, online in part.items():
                                self._spawn(self._verify(channel, online))
                if failed:
                    await asyncio.sleep(retry_s)
                    retry_s = min(retry_s * 2, RETRY_MAX_S)
                else:
                    retry_s = RETRY_FIRST_S
        finally:
            self._flusher = None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _verify(self, channel: str, online: bool) -> None:
        """After writing `online` for `channel` (several nodes): if the cluster now says
        otherwise, another node's change may have landed first, so make it right: held
        now → written online again; held by nobody → offline after the grace, as after
        any vacate (unless a change is already on its way)."""
        try:
            held = await self.hub.occupied(channel)
        except Exception as exc:  # the next decision corrects it; say so
            log.warning("presence: could not check %s after writing it (%s)", channel, exc)
            return
        if held and not online and channel not in self._want:
            self._set(channel, True)
        elif online and not held and channel not in self._timers \
                and channel not in self._want:
            self._timers[channel] = asyncio.get_running_loop().call_later(
                self.grace_s, self._vacated, channel)

    def _settle(self, channels: Iterable[str]) -> None:
        """These channels are written (or need nothing, or were given up on): forget what
        they wanted unless they want something new already, and wake `apply`'s waiters."""
        for ch in channels:
            if ch in self._dirty:
                continue
            self._want.pop(ch, None)
            for waiter in self._waiters.pop(ch, ()):
                if not waiter.done():
                    waiter.set_result(None)

    def _mark(self, channel: str, online: bool) -> None:
        if online:
            self._online.add(channel)
        else:
            self._online.discard(channel)

    async def _write_agents(self, part: dict[str, bool]) -> None:
        await self.store.set_service_states({
            _id(ch): "online" if want else "offline"
            for ch, want in part.items()})
        for channel, online in part.items():
            self._mark(channel, online)
            service_id = _id(channel)
            state, event = ("online", "geton") if online else ("offline", "logout")
            self.hub.trigger(agent_state(service_id), event, {"service_id": service_id,
                                                              "state": state})
            listeners = self.agent_online_listeners if online \
                else self.agent_offline_listeners
            self._then(channel, online, [(listener, (service_id,)) for listener in listeners])

    async def _write_visitors(self, part: dict[str, bool]) -> None:
        rows = await self.store.set_visiter_states({
            _id(ch): "online" if want else "offline"
            for ch, want in part.items()})
        for channel, online in part.items():
            self._mark(channel, online)
            row = rows.get(_id(channel))
            if row is None:  # no such visitor
                continue
            state, event = ("online", "geton") if online else ("offline", "logout")
            if row["service_id"]:
                self.hub.trigger(agent(row["service_id"]), event, {
                    "visiter_id": row["visiter_id"], "channel": row["channel"],
                    "state": state})
            if not online:
                self._then(channel, online, [
                    (gone, (row["visiter_id"], row["business_id"]))
                    for gone in self.visitor_offline_listeners])

    def _then(self, channel: str, online: bool,
              calls: list[tuple[Callable[..., Awaitable[object]], tuple[object, ...]]]) -> None:
        """Run a written change's listeners in a task of their own, after the channel's
        earlier listeners (so `agent_left` never overtakes the `agent_available` before
        it), without holding up the next batch."""
        if not calls:
            return
        before = self._hooks.get(channel)
        task = asyncio.ensure_future(self._run_hooks(before, channel, online, calls))
        self._hooks[channel] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._hooks.get(channel) is t:
                del self._hooks[channel]
        task.add_done_callback(done)

    async def _run_hooks(self, before: Optional[asyncio.Task[None]], channel: str,
                         online: bool,
                         calls: list[tuple[Callable[..., Awaitable[object]],
                                           tuple[object, ...]]]) -> None:
        if before is not None:
            await asyncio.wait([before])
        for listener, args in calls:
            await self._tell(channel, online, listener, *args)

    async def _tell(self, channel: str, online: bool,
                    listener: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run one listener in the store's background turn. One that found the database
        unavailable is tried again (RETRY_FIRST_S doubling up to RETRY_MAX_S) while the
        channel's written state is still the one it is about; any other failure is logged
        and stops neither the others nor the tracker (the state column is written)."""
        retry_s = RETRY_FIRST_S
        while True:
            try:
                async with self.store.background_turn():
                    await listener(*args)
                return
            except Unavailable:
                if (channel in self._online) != online:
                    return  # changed again: that change's listeners run instead
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, RETRY_MAX_S)
                if (channel in self._online) != online:
                    return
            except Exception:
                log.exception("presence listener %r failed for %r", listener, args,
                              extra={"channel": channel})
                return

    async def drain(self, timeout_s: Optional[float] = 5.0) -> None:
        """Cancel pending grace timers and wait for writes in flight (shutdown)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for check in list(self._checks):  # several nodes: the survivors decide now
            check.cancel()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        # The writes first: they start listeners.
        for tasks in ([self._flusher] if self._flusher else [], None):
            tasks = tasks if tasks is not None else list(self._hooks.values())
            if tasks:
                await asyncio.wait(tasks, timeout=None if deadline is None
                                   else max(0.0, deadline - loop.time()))
            for task in tasks:  # still retrying against a database that is gone
                task.cancel()
