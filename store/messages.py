"""SQL for chat messages (`wolive_chats`): storing a message, reading a conversation's
messages, unread counts and read marks.

`add_message` is the chat path's transaction: the visitor and its queue row read together,
the message stored, the replying agent's activity and the conversation's first reply noted
(`store.agents`, `store.reports`), all committed together.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from . import schema as t
from .agents import NOTE_ACTIVE
from .base import Row, StoreBase
from .prepared import Prepared
from .reports import FIRST_REPLY


def _visitor_and_queue(dialect: str) -> Any:
    """`add_message`'s read: the visitor and its queue row, one statement (`FOR UPDATE` on
    MySQL/MariaDB, so a blacklisting cannot slip in before the insert)."""
    v, q = t.visiter, t.queue
    stmt = (select(v, q.c.qid.label("q_qid"), q.c.service_id.label("q_service_id"),
                   q.c.state.label("q_state"), q.c.timestamp.label("q_timestamp"))
            .select_from(v.outerjoin(q, and_(q.c.visiter_id == v.c.visiter_id,
                                             q.c.business_id == v.c.business_id)))
            .where(and_(v.c.visiter_id == bindparam("visiter_id"),
                        v.c.business_id == bindparam("business_id"))))
    return stmt.with_for_update() if dialect == "mysql" else stmt


#: The chat path's statements, compiled once (store.prepared).
VISITOR_AND_QUEUE = Prepared(_visitor_and_queue)
ADD_CHAT = Prepared(lambda _d: insert(t.chats).values(**{name: bindparam(name) for name in (
    "visiter_id", "service_id", "business_id", "content", "direction", "state", "msg_type",
    "timestamp")}))


class MessageStore(StoreBase):
    """Messages of a conversation, their unread counts and read marks."""

    async def add_chat(self, visiter_id: str, service_id: int, business_id: str, content: str,
                       direction: str, timestamp: int | None = None,
                       msg_type: str = "text", state: str = "unread") -> Row:
        """Store one message (committed on return). Returns the row with its `cid`.

        `msg_type` is "text" (content is plain text), "image" or "file" (content is the
        stored file's URL path; a file's original name travels after a newline), "system"
        (a line the server writes: JSON `{key, vars}`, see `schema.CHAT_MSG_TYPES`) or
        "note" (such a line for the agents only)."""
        values = dict(visiter_id=visiter_id, service_id=service_id, business_id=business_id,
                      content=content, direction=direction, state=state,
                      msg_type=msg_type,
                      timestamp=int(timestamp if timestamp is not None else time.time()))
        async with self._writing() as conn:
            ran = await self._run(conn, ADD_CHAT, **values)
            if ran.lastrowid is None:
                raise RuntimeError("INSERT returned no primary key")
            values["cid"] = int(ran.lastrowid)
        return values

    async def add_message(self, visiter_id: str, business_id: str, content: str,
                          direction: str, decide: Callable[[Row | None, Row | None],
                                                           int | None],
                          msg_type: str = "text", active_service_id: int = 0
                          ) -> tuple[Row | None, Row | None, Row | None]:
        """A message of the chat path in one transaction: read the visitor
        (`wolive_visiter`) and its queue row together (one statement; on MySQL/MariaDB with
        `FOR UPDATE`, so a blacklisting cannot slip in between), let `decide(visitor,
        queue)` (None when absent) say to which agent the message belongs (its
        `service_id`), then store it as `add_chat` does and, with `active_service_id`, note
        that agent's reply (`note_service_activity(active=True)`); all committed together.

        `decide` returns None to write nothing, or raises (e.g. a refusal) to roll back.
        Returns `(visitor, queue, chat)`: `chat` as `add_chat` returns it, None when
        nothing was written."""
        async with self._writing() as conn:
            found = (await self._run(conn, VISITOR_AND_QUEUE, visiter_id=visiter_id,
                                     business_id=business_id)).rows
            row = found[0] if found else None
            visitor = queue = None
            if row is not None:
                visitor = {k: val for k, val in row.items() if not k.startswith("q_")}
                if row["q_qid"] is not None:
                    queue = {"qid": row["q_qid"], "visiter_id": visiter_id,
                             "service_id": row["q_service_id"], "business_id": business_id,
                             "state": row["q_state"], "timestamp": row["q_timestamp"]}
            service_id = decide(visitor, queue)
            if service_id is None:
                return visitor, queue, None
            values = dict(visiter_id=visiter_id, service_id=service_id,
                          business_id=business_id, content=content, direction=direction,
                          state="unread", msg_type=msg_type, timestamp=int(time.time()))
            ran = await self._run(conn, ADD_CHAT, **values)
            if ran.lastrowid is None:
                raise RuntimeError("INSERT returned no primary key")
            values["cid"] = int(ran.lastrowid)
            if active_service_id:
                await self._run(conn, NOTE_ACTIVE, service_id=active_service_id,
                                now=int(time.time() * 1000))
                # The conversation's first agent reply (store.reports), once.
                await self._run(conn, FIRST_REPLY, visiter_id=visiter_id,
                                business_id=business_id, now=values["timestamp"])
        return visitor, queue, values

    async def chats_of(self, visiter_id: str, business_id: str, before_cid: int = 0,
                       limit: int = 50, after_cid: int = -1,
                       agent_lines: bool = True) -> list[Row]:
        """A conversation's messages, oldest first; the `limit` newest before `before_cid`,
        or with `after_cid` (0 or more: a page's cursor, 0 when it has seen nothing) the
        `limit` oldest after it (what a reconnecting page missed); -1: no cursor.
        `agent_lines=False` (the visitor's reads): without the agents-only "note" lines."""
        c = t.chats
        cond = [c.c.visiter_id == visiter_id, c.c.business_id == business_id]
        if not agent_lines:
            cond.append(c.c.msg_type != "note")
        if before_cid:
            cond.append(c.c.cid < before_cid)
        if after_cid >= 0:
            cond.append(c.c.cid > after_cid)
            return await self._fetch_all(select(c).where(and_(*cond))
                                         .order_by(c.c.cid.asc()).limit(limit))
        rows = await self._fetch_all(select(c).where(and_(*cond))
                                     .order_by(c.c.cid.desc()).limit(limit))
        rows.reverse()
        return rows

    async def mark_read(self, visiter_id: str, business_id: str, direction: str) -> int:
        """Mark the conversation's unread messages going `direction` read; returns how many."""
        c = t.chats
        async with self.engine.begin() as conn:
            res = await conn.execute(update(c).where(and_(
                c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.direction == direction, c.c.state == "unread")).values(state="readed"))
            return int(res.rowcount or 0)

    async def unread_count(self, visiter_id: str, business_id: str,
                           direction: str = "to_service") -> int:
        """Unread messages of one conversation going `direction` (`wolive_chats.state`)."""
        c = t.chats
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(c).where(and_(
                c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.direction == direction, c.c.state == "unread")))).scalar() or 0)

    async def last_cid(self, visiter_id: str, business_id: str, direction: str,
                       state: str | None = None) -> int:
        """The newest message's cid of one conversation going `direction` (0: none);
        with `state`, the newest in that state."""
        c = t.chats
        cond = [c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.direction == direction]
        if state:
            cond.append(c.c.state == state)
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(select(func.max(c.c.cid)).where(and_(*cond))))
                       .scalar() or 0)

    async def mark_read_upto(self, visiter_id: str, business_id: str, direction: str,
                             cid: int) -> int:
        """Mark the conversation's unread messages going `direction` with cid ≤ `cid` read;
        returns how many."""
        c = t.chats
        async with self.engine.begin() as conn:
            res = await conn.execute(update(c).where(and_(
                c.c.visiter_id == visiter_id, c.c.business_id == business_id,
                c.c.direction == direction, c.c.state == "unread", c.c.cid <= cid))
                .values(state="readed"))
            return int(res.rowcount or 0)
