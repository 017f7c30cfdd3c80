"""SQL the agent workbench needs beyond the WoLive tables: the visitor profile and read state.

`wolive_visiter_info` is ours (not in the WoLive document): one row per visitor with what the
console's right column shows and edits — the name / phone / note an agent wrote, the browser's
User-Agent and referrer, first and last visit and how many visits. It is created by
`metadata.create_all` at start-up (no migration: a new table, nothing to alter), so an existing
WoLive database simply gains it.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (Column, Index, Integer, String, Table, Text, UniqueConstraint, and_,
                        bindparam, case, func, insert, select, update)

from . import schema as t
from .base import Row, StoreBase
from .prepared import Prepared
from .upsert import upsert

#: A page load this long (seconds) after the previous one counts as a new visit.
VISIT_GAP_S = 30 * 60
MAX_USER_AGENT = 512
MAX_REFERRER = 1024
_TABLE_OPTIONS: dict[str, Any] = dict(t._MYSQL)

visiter_info = Table(
    "wolive_visiter_info", t.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("visiter_id", String(200), nullable=False),
    Column("business_id", String(100), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("tel", String(64), nullable=False, server_default=""),
    Column("note", Text, nullable=True),
    Column("user_agent", String(MAX_USER_AGENT), nullable=False, server_default=""),
    Column("referrer", String(MAX_REFERRER), nullable=False, server_default=""),
    Column("first_visit", Integer, nullable=False, server_default="0"),
    Column("last_visit", Integer, nullable=False, server_default="0"),
    Column("visits", Integer, nullable=False, server_default="0"),
    UniqueConstraint("visiter_id", "business_id", name="visiter_info_id"),
    Index("visiter_info_business", "business_id"),
    **_TABLE_OPTIONS,
)

#: The fields an agent may edit, with their longest length.
EDITABLE = {"name": 255, "tel": 64, "note": 2000}


def _note_visit(user_agent: bool, referrer: bool) -> Prepared:
    """`note_visit`'s one statement (no read first, no savepoint), with or without a new
    user agent and referrer. `visits` is set before `last_visit`: MySQL's assignments see
    the values set before them."""
    def build(dialect: str) -> Any:
        vi = visiter_info
        now: Any = bindparam("now")
        fresh: dict[str, Any] = {name: bindparam(name) for name, given in (
            ("user_agent", user_agent), ("referrer", referrer)) if given}
        gap = case((now - func.coalesce(vi.c.last_visit, 0) > VISIT_GAP_S, 1), else_=0)
        return upsert(
            dialect, vi,
            dict(visiter_id=bindparam("visiter_id"), business_id=bindparam("business_id"),
                 first_visit=now, last_visit=now, visits=1, note="", **fresh),
            ["visiter_id", "business_id"],
            [("visits", vi.c.visits + gap), ("last_visit", now), *fresh.items()])
    return Prepared(build)


#: `note_visit`'s statement by (user agent given, referrer given), compiled once.
NOTE_VISIT = {(ua, ref): _note_visit(ua, ref) for ua in (False, True) for ref in (False, True)}


class WorkbenchStore(StoreBase):
    """Visitor profiles and read marks (see the module docstring)."""

    async def note_visit(self, visiter_id: str, business_id: str, user_agent: str,
                         referrer: str, now: int | None = None) -> None:
        """Record the chat window opening: the UA and referrer (when given), last visit, and
        one more visit when the last was over `VISIT_GAP_S` ago."""
        now = int(now if now is not None else time.time())
        values: dict[str, Any] = dict(visiter_id=visiter_id, business_id=business_id, now=now)
        if user_agent:
            values["user_agent"] = user_agent[:MAX_USER_AGENT]
        if referrer:
            values["referrer"] = referrer[:MAX_REFERRER]
        async with self._writing() as conn:
            await self._run(conn, NOTE_VISIT[bool(user_agent), bool(referrer)], **values)
    async def visitor_info(self, visiter_id: str, business_id: str) -> Row | None:
        return await self._fetch_one(select(visiter_info).where(and_(
            visiter_info.c.visiter_id == visiter_id,
            visiter_info.c.business_id == business_id)))

    async def set_visitor_info(self, visiter_id: str, business_id: str,
                               **values: str) -> Row:
        """Write the agent-editable fields (`EDITABLE`); creates the row when missing."""
        vi = visiter_info
        values = {k: v for k, v in values.items() if k in EDITABLE}
        key = and_(vi.c.visiter_id == visiter_id, vi.c.business_id == business_id)
        async with self.engine.begin() as conn:
            res = await conn.execute(update(vi).where(key).values(**values))
            if not res.rowcount and not await self._one(conn, select(vi.c.id).where(key)):
                base = {"note": ""}
                base.update(values)
                await conn.execute(insert(vi).values(visiter_id=visiter_id,
                                                     business_id=business_id, **base))
            return await self._one(conn, select(vi).where(key)) or {}

    # ---- read state -------------------------------------------------------------------

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
