"""Waiting visitors: the assignment lock, who waits (with their channels), leaving the line.

A waiting visitor is a `wolive_queue` row with `service_id = 0` and `state = normal`, in the
order the rows were made (`qid`): code 2 of `/admin/event/notice`, and since issue 9 code 3
too (nobody online) while the visitor's window is open.

A *stranded* visitor is one whose open conversation (`normal`) belongs to an agent who is
offline while the visitor's window is open (`wolive_visiter.state` online): its agent left
and nobody could take over then. It is served like a waiting visitor when someone can
(`realtime.chat.Chat.assign_waiting`).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import and_, bindparam, delete, exists, func, select, update

from . import schema as t
from .base import StoreBase
from .prepared import Prepared
from .reports import track


#: The business's waiting visitors, first come first (`unserved`), compiled once.
WAITING = Prepared(lambda _d: select(t.queue.c.qid, t.queue.c.visiter_id).where(and_(
    t.queue.c.business_id == bindparam("business_id"), t.queue.c.service_id == 0,
    t.queue.c.state == "normal")).order_by(t.queue.c.qid).limit(bindparam("limit")))


class WaitingStore(StoreBase):
    """SQL for waiting visitors; mixed into `store.repo.Store`."""

    @asynccontextmanager
    async def assignment(self, business_id: str) -> AsyncIterator[None]:
        """One assignment decision for `business_id` at a time, across every process on
        the database: a transaction that holds the business's lock until the block ends,
        then commits (rolls back on an exception). Inside the block, this task's store
        calls run in that transaction (`StoreBase._writing` / `_reading`), so what they
        read (who is online, their load, who waits) cannot change under them.

        MariaDB/MySQL: `SELECT ... FOR UPDATE` on the `wolive_business` row, in READ
        COMMITTED so each read sees what the previous holder committed. SQLite: the
        transaction begins IMMEDIATE (store.repo), which serialises every writer of the
        file. Re-entrant within a task. Push events after the block, or inside it through
        `on_commit` (run once it committed)."""
        if self._held() is not None:
            yield
            return
        async with self.unit() as conn:
            if self.dialect == "mysql":
                await conn.execute(select(t.business.c.wid).where(
                    t.business.c.business_id == business_id).with_for_update())
            yield

    async def unserved(self, business_id: str, stranded: bool = False, limit: int = 200
                       ) -> list[tuple[str, int]]:
        """The business's open conversations nobody serves, first come first (`qid`):
        `(visiter_id, 0)` for each waiting visitor and, with `stranded`, `(visiter_id,
        service_id)` for each stranded one (module docstring; `service_id` is its offline
        agent). At most `limit` of each kind."""
        q, s, v = t.queue, t.service, t.visiter
        async with self._reading() as conn:
            rows = [(int(r["qid"]), str(r["visiter_id"]), 0) for r in (await self._run(
                conn, WAITING, business_id=business_id, limit=limit)).rows]
            if stranded:
                # From the business's offline agents to their open conversations: the
                # queue's `se` index, never the business's whole history.
                rows += [(int(r[0]), str(r[1]), int(r[2])) for r in await conn.execute(
                    select(q.c.qid, q.c.visiter_id, q.c.service_id)
                    .select_from(s.join(q, q.c.service_id == s.c.service_id)
                                 .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                                               v.c.business_id == q.c.business_id)))
                    .where(and_(s.c.business_id == business_id, s.c.state == "offline",
                                q.c.business_id == business_id, q.c.state == "normal",
                                v.c.state == "online"))
                    .order_by(q.c.qid).limit(limit))]
                rows.sort()
        return [(vid, sid) for _qid, vid, sid in rows]

    async def take_stranded(self, visiter_id: str, business_id: str, from_service_id: int,
                            to_service_id: int) -> bool:
        """Move a stranded conversation from its offline agent `from_service_id` to
        `to_service_id` (0: the waiting line), atomically: one conditional UPDATE that
        writes only while the conversation is still open with that agent and the agent is
        still not online. True when it was moved."""
        q, s = t.queue, t.service
        back = exists().where(and_(s.c.service_id == from_service_id, s.c.state == "online"))
        async with self._writing() as conn:
            res = await conn.execute(update(q).where(and_(
                q.c.visiter_id == visiter_id, q.c.business_id == business_id,
                q.c.service_id == from_service_id, q.c.state == "normal", ~back))
                .values(service_id=to_service_id, timestamp=func.current_timestamp()))
            if res.rowcount == 1 and to_service_id:
                await track(self, conn, visiter_id, business_id, to_service_id, "normal")
            return res.rowcount == 1

    async def waiting_channels(self, business_id: str, limit: int = 200
                               ) -> list[tuple[str, str]]:
        """`(visiter_id, channel)` of the business's waiting visitors, first come first
        (the order of `waiting_position`): whom to tell their place."""
        q, v = t.queue, t.visiter
        async with self._reading() as conn:
            res = await conn.execute(
                select(q.c.visiter_id, v.c.channel)
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(and_(q.c.business_id == business_id, q.c.service_id == 0,
                            q.c.state == "normal"))
                .order_by(q.c.qid).limit(limit))
            return [(str(r[0]), str(r[1])) for r in res]

    async def waiting_visitor_channels(self, limit: int = 10000) -> list[str]:
        """The `channel` of every waiting visitor of every business (at start-up: whose
        windows must come back, see `PresenceTracker.expect_back`)."""
        q, v = t.queue, t.visiter
        async with self._reading() as conn:
            res = await conn.execute(
                select(v.c.channel)
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(and_(q.c.service_id == 0, q.c.state == "normal"))
                .order_by(q.c.qid).limit(limit))
            return [str(r[0]) for r in res]

    async def live_counts(self) -> tuple[int, int]:
        """(visitors waiting, agents online) over every business: two COUNTs on indexed
        columns, for the metrics (`realtime.metrics`)."""
        q, s = t.queue, t.service
        async with self._reading() as conn:
            waiting = (await conn.execute(select(func.count()).select_from(q).where(
                and_(q.c.service_id == 0, q.c.state == "normal")))).scalar()
            online = (await conn.execute(select(func.count()).select_from(s).where(
                s.c.state == "online"))).scalar()
        return int(waiting or 0), int(online or 0)

    async def leave_waiting(self, visiter_id: str, business_id: str,
                            missed: bool = False) -> bool:
        """Take a waiting visitor out of the line (its queue row goes; its messages stay).
        A conditional DELETE: a visitor an agent took meanwhile stays with that agent.
        Its conversation ends (store.reports; `missed`: it left a message). True when it
        was waiting."""
        q = t.queue
        async with self._writing() as conn:
            res = await conn.execute(delete(q).where(and_(
                q.c.visiter_id == visiter_id, q.c.business_id == business_id,
                q.c.service_id == 0, q.c.state == "normal")))
            if res.rowcount:
                await track(self, conn, visiter_id, business_id, None, "gone", missed=missed)
            return bool(res.rowcount)
