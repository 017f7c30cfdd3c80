"""SQL for the managers' reports: `wolive_conversation` (ours, migration 13).

One row per conversation: a visitor of a business from the moment it gets an open queue row
(`wolive_queue.state = normal`: assigned to an agent, or waiting) until that row ends
(`complete`, blacklisted, or the waiting visitor left / left a message). Times are unix
seconds:

- `started_at`: the visitor got its open queue row (arrival, a reopened conversation);
- `assigned_at`: an agent first had it (at once under `auto`, or when claimed / handed out);
- `first_reply_at`: the first agent message after that (any agent of the business);
- `ended_at`: closed, blacklisted, or the visitor stopped waiting (`missed` 1 when it left a
  message instead: nobody answered it);
- `service_id`: the agent who has it now (the last one, after transfers); 0 while nobody had;
- `visitor_messages`, `agent_messages`: counted once, when it ends (NULL while open).

Rows are written by `track` inside the transactions that already change the queue row (no
transaction of their own), and `first_reply_at` by one conditional UPDATE in the agent
reply's own transaction (`FIRST_REPLY`). The report reads (`ReportStore`) are indexed range
scans on (`business_id`, `started_at`) or (`business_id`, `service_id`, `started_at`); the
medians and p90s are computed in Python from those rows (realtime/chat/reports.py).
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (Column, case, Index, Integer, SmallInteger, String, Table, and_, bindparam,
                        func, insert, select, update)

from . import schema as t
from .base import Row, StoreBase
from .prepared import Prepared
from .ratings import rating


conversation = Table(
    "wolive_conversation", t.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("business_id", String(100), nullable=False),
    Column("visiter_id", String(200), nullable=False),
    Column("service_id", Integer, nullable=False, server_default="0"),
    Column("started_at", Integer, nullable=False),
    Column("assigned_at", Integer, nullable=True),
    Column("first_reply_at", Integer, nullable=True),
    Column("ended_at", Integer, nullable=True),
    Column("missed", SmallInteger, nullable=False, server_default="0"),
    Column("visitor_messages", Integer, nullable=True),
    Column("agent_messages", Integer, nullable=True),
    Index("conv_business_time", "business_id", "started_at"),
    Index("conv_agent_time", "business_id", "service_id", "started_at"),
    # The visitor's open conversation (`track`, `FIRST_REPLY`).
    Index("conv_visitor", "visiter_id", "business_id", "ended_at"),
    **t.MYSQL_TABLE_OPTIONS,
)

#: The agent reply's conditional UPDATE (run in `Store.add_message`'s transaction): the open
#: conversation's first reply, once. Matches no row after the first reply.
FIRST_REPLY = Prepared(lambda _d: update(conversation).where(and_(
    conversation.c.visiter_id == bindparam("visiter_id"),
    conversation.c.business_id == bindparam("business_id"),
    conversation.c.ended_at.is_(None), conversation.c.first_reply_at.is_(None)))
    .values(first_reply_at=bindparam("now")))


def _open(visiter_id: str, business_id: str) -> Any:
    c = conversation
    return and_(c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.ended_at.is_(None))


#: `track`'s statements on the assignment path, compiled once (store.prepared).
OPEN_CONVERSATION = Prepared(lambda _d: select(
    conversation.c.id, conversation.c.service_id, conversation.c.assigned_at,
    conversation.c.started_at).where(and_(
        conversation.c.visiter_id == bindparam("visiter_id"),
        conversation.c.business_id == bindparam("business_id"),
        conversation.c.ended_at.is_(None))).order_by(conversation.c.id.desc()).limit(1))
START_CONVERSATION = Prepared(lambda _d: insert(conversation).values(
    business_id=bindparam("business_id"), visiter_id=bindparam("visiter_id"),
    service_id=bindparam("service_id"), started_at=bindparam("now"),
    assigned_at=bindparam("assigned_at"), missed=0))
ASSIGN_CONVERSATION = Prepared(lambda _d: update(conversation).where(
    conversation.c.id == bindparam("id")).values(
    service_id=bindparam("service_id"),
    assigned_at=func.coalesce(conversation.c.assigned_at, bindparam("now"))))


async def track(store: StoreBase, conn: Any, visiter_id: str, business_id: str,
                service_id: int | None, state: str, missed: bool = False,
                now: int | None = None) -> None:
    """The visitor's queue row was just written in `conn`'s transaction: now `state`
    ("normal", "complete", "in_black_list", or "gone": the row was deleted) with
    `service_id` (None: unchanged). Starts, assigns or ends its `wolive_conversation` row
    accordingly, in the same transaction: one indexed SELECT, at most one write."""
    c = conversation
    now = int(now if now is not None else time.time())
    key = dict(visiter_id=visiter_id, business_id=business_id)
    found = (await store._run(conn, OPEN_CONVERSATION, **key)).rows
    if state == "normal":
        sid = int(service_id or 0)
        if not found:
            await store._run(conn, START_CONVERSATION, **key, service_id=sid, now=now,
                             assigned_at=now if sid else None)
        elif sid and (sid != found[0]["service_id"] or found[0]["assigned_at"] is None):
            await store._run(conn, ASSIGN_CONVERSATION, id=found[0]["id"], service_id=sid,
                             now=now)
        return
    if not found:
        return
    row = found[0]
    ch = t.chats
    counts = (await conn.execute(
        select(func.sum(case((ch.c.direction == "to_service", 1), else_=0)),
               func.sum(case((ch.c.direction == "to_visiter", 1), else_=0)))
        .where(and_(ch.c.visiter_id == visiter_id, ch.c.business_id == business_id,
                    ch.c.timestamp >= row["started_at"],
                    ch.c.msg_type.in_(("text", "image", "file")))))).first()
    values = {"ended_at": now, "missed": 1 if missed else 0,
              "visitor_messages": int(counts[0] or 0) if counts else 0,
              "agent_messages": int(counts[1] or 0) if counts else 0}
    if (service_id is not None and service_id != row["service_id"]
            and row["assigned_at"] is not None):
        values["service_id"] = int(service_id)
    await conn.execute(update(c).where(c.c.id == row["id"]).values(**values))


class ReportStore(StoreBase):
    """The reports' reads (see the module docstring)."""

    async def report_rows(self, business_id: str | None, since_s: int, until_s: int,
                          service_id: int | None = None) -> list[tuple[int, ...]]:
        """Conversations started with `since_s <= started_at < until_s` of the business
        (every business when None), only agent `service_id`'s when given, as tuples
        `(service_id, started_at, wait, reply, duration, missed, messages)`: `wait`,
        `reply`, `duration` the seconds from the start to `assigned_at`, `first_reply_at`,
        `ended_at` (None where not set), `messages` both directions (0 while open). One
        indexed range scan; the differences are computed by the database."""
        c = conversation
        cond = [c.c.started_at >= since_s, c.c.started_at < until_s]
        if business_id is not None:
            cond.append(c.c.business_id == business_id)
        if service_id is not None:
            cond.append(c.c.service_id == service_id)
        stmt = select(c.c.service_id, c.c.started_at,
                      (c.c.assigned_at - c.c.started_at).label("wait"),
                      (c.c.first_reply_at - c.c.started_at).label("reply"),
                      (c.c.ended_at - c.c.started_at).label("duration"), c.c.missed,
                      (func.coalesce(c.c.visitor_messages, 0)
                       + func.coalesce(c.c.agent_messages, 0)).label("messages")
                      ).where(and_(*cond))
        async with self.slow_read_engine.connect() as conn:
            res = await conn.execute(stmt)
            return [tuple(r) for r in res.all()]

    async def report_ratings(self, business_id: str | None, since_s: int, until_s: int,
                             service_id: int | None = None) -> list[Row]:
        """Ratings given with `since_s <= timestamp < until_s`: `{service_id, timestamp,
        score}`."""
        r = rating
        cond = [r.c.timestamp >= since_s, r.c.timestamp < until_s]
        if business_id is not None:
            cond.append(r.c.business_id == business_id)
        if service_id is not None:
            cond.append(r.c.service_id == service_id)
        async with self.slow_read_engine.connect() as conn:
            res = await conn.execute(select(r.c.service_id, r.c.timestamp, r.c.score)
                                     .where(and_(*cond)))
            return [{"service_id": int(a), "timestamp": int(b), "score": int(s)}
                    for a, b, s in res.all()]

    async def agent_names(self, business_id: str | None) -> dict[int, Row]:
        """`{service_id: {nick_name, business_id}}` of the business's agents (all when
        None)."""
        s = t.service
        stmt = select(s.c.service_id, s.c.nick_name, s.c.business_id)
        if business_id is not None:
            stmt = stmt.where(s.c.business_id == business_id)
        rows = await self._fetch_all(stmt)
        return {int(r["service_id"]): r for r in rows}
