"""SQL for presence: the online / offline state of agents and visitors (`wolive_service.state`,
`wolive_visiter.state`), one at a time, in batches, and all reset at start-up.

The presence tracker (`realtime.chat.presence`) writes `wolive_service.state` and
`wolive_visiter.state` whenever a socket comes or goes; a connect storm makes thousands of
those at once. Each batch here is one transaction, and on SQLite the batches (and the
presence hooks that write, see `background_turn`) take turns on one asyncio lock, so they
hold at most one pooled connection and one place in the queue for SQLite's single writer:
requests keep the rest of the pool.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import and_, select, update

from . import schema as t
from .base import Row, StoreBase

#: Ids per `IN (...)` list: well under SQLite's 32,766 host parameters and MySQL's packet.
CHUNK = 500

STATES = ("online", "offline")


K = TypeVar("K", str, int)


def _chunks(items: Sequence[K]) -> list[Sequence[K]]:
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


def _check(states: dict[str, str] | dict[int, str]) -> None:
    bad = {s for s in states.values() if s not in STATES}
    if bad:
        raise ValueError(f"state must be online or offline, not {sorted(bad)!r}")


class PresenceStore(StoreBase):
    """Online / offline state writes, and the turn background writers take on SQLite."""

    _background_lock: asyncio.Lock | None = None

    @asynccontextmanager
    async def background_turn(self) -> AsyncIterator[None]:
        """Hold this while doing background writes (presence and its hooks): on SQLite one
        holder at a time (FIFO), so they queue here, not in the pool nor for SQLite's write
        lock; on MySQL/MariaDB (row locks, many writers) it holds nothing."""
        if self.dialect != "sqlite":
            yield
            return
        if self._background_lock is None:
            self._background_lock = asyncio.Lock()
        async with self._background_lock:
            yield

    async def set_service_state(self, service_id: int, state: str) -> bool:
        """Write `wolive_service.state`; True when the row changed."""
        async with self.engine.begin() as conn:
            res = await conn.execute(update(t.service).where(and_(
                t.service.c.service_id == service_id, t.service.c.state != state))
                .values(state=state))
            return bool(res.rowcount)

    async def reset_presence(self) -> list[int]:
        """Mark everyone offline: run at start-up, when no socket can be open yet. Returns
        the `service_id`s of the agents that were online (whose consoles should come
        back, see `PresenceTracker.expect_back`)."""
        async with self.engine.begin() as conn:
            were = (await conn.execute(select(t.service.c.service_id).where(
                t.service.c.state == "online").order_by(t.service.c.service_id))).scalars().all()
            await conn.execute(update(t.service).where(t.service.c.state == "online")
                               .values(state="offline"))
            await conn.execute(update(t.visiter).where(t.visiter.c.state == "online")
                               .values(state="offline"))
        return [int(sid) for sid in were]

    async def set_visiter_state(self, channel: str, state: str) -> Row | None:
        """Write `wolive_visiter.state` by channel; returns the visitor (None if unknown)."""
        async with self.engine.begin() as conn:
            await conn.execute(update(t.visiter).where(t.visiter.c.channel == channel)
                               .values(state=state))
            return await self._one(conn, select(t.visiter).where(t.visiter.c.channel == channel))

    async def set_service_states(self, states: dict[int, str]) -> list[int]:
        """Write `wolive_service.state` for many agents in one transaction: `states` maps
        service_id → "online" | "offline". Returns the service_ids whose row changed.
        Raises `ValueError` for another state, `Unavailable` when the database is."""
        _check(states)
        changed: list[int] = []
        if not states:
            return changed
        s = t.service
        async with self._writing() as conn:
            for state in STATES:
                ids = sorted(k for k, v in states.items() if v == state)
                for chunk in _chunks(ids):
                    res = await conn.execute(
                        select(s.c.service_id).where(and_(s.c.service_id.in_(chunk),
                                                          s.c.state != state)))
                    now = [int(r[0]) for r in res.all()]
                    if now:
                        await conn.execute(update(s).where(s.c.service_id.in_(now))
                                           .values(state=state))
                        changed += now
        return changed

    async def set_visiter_states(self, states: dict[str, str]) -> dict[str, Row]:
        """Write `wolive_visiter.state` for many visitors in one transaction, by channel:
        `states` maps channel → "online" | "offline". Returns, by channel, each known
        visitor's `{visiter_id, business_id, channel, state, service_id}` (`service_id`:
        its agent in `wolive_queue`, 0 while waiting, None without a queue row); unknown
        channels are left out. Raises `ValueError` for another state, `Unavailable` when
        the database is."""
        _check(states)
        rows: dict[str, Row] = {}
        if not states:
            return rows
        v, q = t.visiter, t.queue
        async with self._writing() as conn:
            for state in STATES:
                channels = sorted(k for k, s in states.items() if s == state)
                for chunk in _chunks(channels):
                    await conn.execute(update(v).where(v.c.channel.in_(chunk))
                                       .values(state=state))
            for chunk in _chunks(sorted(states)):
                res = await conn.execute(
                    select(v.c.visiter_id, v.c.business_id, v.c.channel, v.c.state,
                           q.c.service_id)
                    .select_from(v.outerjoin(q, and_(q.c.visiter_id == v.c.visiter_id,
                                                     q.c.business_id == v.c.business_id)))
                    .where(v.c.channel.in_(chunk)))
                for r in res.mappings().all():
                    rows[r["channel"]] = dict(r)
        return rows
