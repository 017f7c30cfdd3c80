"""SQL for conversation history (WoLive document, "查看历史消息Api").

Reads `wolive_chats` joined with `wolive_visiter` and `wolive_service`; every query is bound
to one business, and to one agent when the caller says so. Times are `wolive_chats.timestamp`
(unix seconds, the document's int column).
"""
from __future__ import annotations

from sqlalchemy import and_, func, select

from . import schema as t
from .base import Row, StoreBase


class HistoryStore(StoreBase):
    """Who an agent talked with, and what was said (see module docstring)."""

    async def services_by_nick(self, business_id: str, nick_name: str) -> list[Row]:
        """The business's agents called `nick_name` (nick names need not be unique):
        `[{service_id, nick_name, level}]`."""
        sv = t.service
        return await self._fetch_all(
            select(sv.c.service_id, sv.c.nick_name, sv.c.level, sv.c.business_id)
            .where(and_(sv.c.business_id == business_id, sv.c.nick_name == nick_name))
            .order_by(sv.c.service_id))

    async def visitors_of_service(self, business_id: str, service_id: int, offset: int,
                                  limit: int) -> tuple[list[Row], int]:
        """One page of the visitors agent `service_id` exchanged messages with in
        `business_id`, most recent conversation first, and how many there are in all.

        Each row: the visitor's `visiter_id, visiter_name, avatar, channel, state, ip,
        from_url, timestamp` (last visit) plus `last_time` (unix s of the last message) and
        `messages` (how many messages with this agent)."""
        c, v = t.chats, t.visiter
        mine = and_(c.c.service_id == service_id, c.c.business_id == business_id)
        last_time = func.max(c.c.timestamp).label("last_time")
        stmt = (select(c.c.visiter_id, last_time, func.count().label("messages"))
                .where(mine).group_by(c.c.visiter_id)
                .order_by(last_time.desc(), c.c.visiter_id).offset(offset).limit(limit))
        async with self.read_engine.connect() as conn:
            page = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
            total = int((await conn.execute(select(func.count(c.c.visiter_id.distinct()))
                                            .where(mine))).scalar() or 0)
            people: dict[str, Row] = {}
            if page:
                for r in (await conn.execute(
                        select(v.c.visiter_id, v.c.visiter_name, v.c.avatar, v.c.channel,
                               v.c.state, v.c.ip, v.c.from_url, v.c.timestamp)
                        .where(and_(v.c.business_id == business_id,
                                    v.c.visiter_id.in_([p["visiter_id"] for p in page])))
                        )).mappings():
                    people[r["visiter_id"]] = dict(r)
        out = []
        for p in page:
            row = people.get(p["visiter_id"], {
                "visiter_id": p["visiter_id"], "visiter_name": "", "avatar": "",
                "channel": "", "state": "offline", "ip": "", "from_url": "", "timestamp": None})
            row.update(last_time=int(p["last_time"] or 0), messages=int(p["messages"]))
            out.append(row)
        return out, total

    async def has_chatted(self, business_id: str, visiter_id: str, service_id: int) -> bool:
        """True when agent `service_id` exchanged at least one message with the visitor."""
        c = t.chats
        row = await self._fetch_one(select(c.c.cid).where(and_(
            c.c.business_id == business_id, c.c.visiter_id == visiter_id,
            c.c.service_id == service_id)).limit(1))
        return row is not None

    async def chats_between(self, business_id: str, visiter_id: str, since_s: int,
                            until_s: int, offset: int, limit: int,
                            service_id: int | None = None) -> tuple[list[Row], int]:
        """One page of the visitor's messages with `since_s <= timestamp <= until_s` (unix
        seconds, both inclusive), oldest first, and how many there are in all; only those
        with agent `service_id` when it is given. Each row is the `wolive_chats` row plus
        the agent's `nick_name`."""
        c, sv = t.chats, t.service
        cond = [c.c.business_id == business_id, c.c.visiter_id == visiter_id,
                c.c.timestamp >= since_s, c.c.timestamp <= until_s]
        if service_id is not None:
            cond.append(c.c.service_id == service_id)
        where = and_(*cond)
        stmt = (select(c, sv.c.nick_name).outerjoin(sv, sv.c.service_id == c.c.service_id)
                .where(where).order_by(c.c.timestamp, c.c.cid).offset(offset).limit(limit))
        async with self.read_engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
            total = int((await conn.execute(select(func.count()).select_from(c)
                                            .where(where))).scalar() or 0)
        return rows, total
