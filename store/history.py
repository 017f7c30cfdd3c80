"""SQL for conversation history (WoLive's "查看历史消息Api").

Reads `wolive_chats` joined with `wolive_visiter` and `wolive_service`; every query is bound
to one business, and to one agent when the caller says so. Times are `wolive_chats.timestamp`
(unix seconds, WoLive's int column).
"""
from __future__ import annotations

from sqlalchemy import and_, func, or_, select

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
        async with self.slow_read_engine.connect() as conn:
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
        async with self.slow_read_engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
            total = int((await conn.execute(select(func.count()).select_from(c)
                                            .where(where))).scalar() or 0)
        return rows, total

    async def search_conversations(self, business_id: str, since: int, until: int,
                                   service_id: int, text: str, who: str, offset: int,
                                   limit: int) -> tuple[list[Row], int]:
        """One page of the visitors whose messages in `business_id` between `since` and
        `until` (unix s, inclusive) match — `text` within a message, `who` within the
        visitor's name or id, `service_id` (0: any) the agent — most recent first, and how
        many there are in all.

        Each row: `visiter_id, visiter_name, avatar, channel, state, last_time, messages`
        (matching messages), `last_content, last_direction, last_type, nick_name` (the last
        matching message and its agent)."""
        c, v, sv = t.chats, t.visiter, t.service
        cond = [c.c.business_id == business_id, c.c.timestamp >= since, c.c.timestamp <= until]
        if service_id:
            cond.append(c.c.service_id == service_id)
        if text:
            cond.append(c.c.content.like(_like(text), escape="\\"))
        if who:
            cond.append(c.c.visiter_id.in_(select(v.c.visiter_id).where(and_(
                v.c.business_id == business_id,
                or_(v.c.visiter_name.like(_like(who), escape="\\"),
                    v.c.visiter_id.like(_like(who), escape="\\"))))))
        where = and_(*cond)
        last_time = func.max(c.c.timestamp).label("last_time")
        stmt = (select(c.c.visiter_id, last_time, func.count().label("messages"),
                       func.max(c.c.cid).label("last_cid"))
                .where(where).group_by(c.c.visiter_id)
                .order_by(last_time.desc(), c.c.visiter_id).offset(offset).limit(limit))
        async with self.slow_read_engine.connect() as conn:
            found = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
            total = int((await conn.execute(
                select(func.count(c.c.visiter_id.distinct())).where(where))).scalar() or 0)
            people: dict[str, Row] = {}
            last: dict[int, Row] = {}
            if found:
                ids = [f["visiter_id"] for f in found]
                for r in (await conn.execute(
                        select(v.c.visiter_id, v.c.visiter_name, v.c.avatar, v.c.channel,
                               v.c.state).where(and_(v.c.business_id == business_id,
                                                     v.c.visiter_id.in_(ids))))).mappings():
                    people[r["visiter_id"]] = dict(r)
                for r in (await conn.execute(
                        select(c.c.cid, c.c.content, c.c.direction, c.c.msg_type, sv.c.nick_name)
                        .outerjoin(sv, sv.c.service_id == c.c.service_id)
                        .where(c.c.cid.in_([f["last_cid"] for f in found])))).mappings():
                    last[r["cid"]] = dict(r)
        rows = []
        for f in found:
            row = people.get(f["visiter_id"]) or {
                "visiter_id": f["visiter_id"], "visiter_name": "", "avatar": "", "channel": "",
                "state": "offline"}
            m = last.get(f["last_cid"], {})
            row.update(last_time=int(f["last_time"] or 0), messages=int(f["messages"]),
                       last_content=m.get("content", ""), last_direction=m.get("direction"),
                       last_type=m.get("msg_type") or "text", nick_name=m.get("nick_name") or "")
            rows.append(row)
        return rows, total


def _like(text: str) -> str:
    """`%text%` for LIKE, with `\\`, `%` and `_` taken literally (ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
