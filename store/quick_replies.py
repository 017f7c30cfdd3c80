"""SQL for quick replies (canned responses): an agent's own ones and a business's shared ones.

`wolive_quick_reply` is ours (not one of WoLive's). A row belongs to one business;
`service_id` is the agent who owns it, or `SHARED` (0) for the business's shared ones. It
is created by `metadata.create_all` at start-up (a new table, nothing to alter; recorded as
schema migration 9, `_v9_quick_replies`), so an existing database simply gains it on SQLite
and MySQL/MariaDB alike.

Rules (who may touch which row, lengths, how many) are the use cases'
(`realtime.chat.quick_replies`); this module only reads and writes, each method in its own
transaction, and raises `NotFound` / `Conflict`.
"""
from __future__ import annotations

import time
from typing import Sequence

from sqlalchemy import (Column, Index, Integer, String, Table, and_, delete, func, insert,
                        or_, select, update)

from . import schema as t
from .base import Row, StoreBase
from .errors import Conflict, NotFound

#: `service_id` of a business's shared quick replies (no agent has id 0).
SHARED = 0
#: Column sizes (characters); the use cases' limits are at most these.
TITLE_COLUMN_CHARS = 64
CONTENT_COLUMN_CHARS = 2000

quick_reply = Table(
    "wolive_quick_reply", t.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("business_id", String(100), nullable=False),
    Column("service_id", Integer, nullable=False, server_default="0"),
    Column("title", String(TITLE_COLUMN_CHARS), nullable=False, server_default=""),
    Column("content", String(CONTENT_COLUMN_CHARS), nullable=False),
    Column("sort", Integer, nullable=False, server_default="0"),
    Column("created_at", Integer, nullable=False, server_default="0"),
    Column("updated_at", Integer, nullable=False, server_default="0"),
    Index("quick_reply_owner", "business_id", "service_id", "sort"),
    **t.MYSQL_TABLE_OPTIONS,
)

_ORDER = (quick_reply.c.sort, quick_reply.c.id)


class QuickReplyStore(StoreBase):
    """Quick replies (see the module docstring). Rows are dicts with the table's columns."""

    async def quick_replies(self, business_id: str, service_id: int) -> list[Row]:
        """The business's shared rows, then the agent's own, each in `sort` order."""
        q = quick_reply
        rows = await self._fetch_all(select(q).where(and_(
            q.c.business_id == business_id,
            or_(q.c.service_id == SHARED, q.c.service_id == service_id))).order_by(*_ORDER))
        return sorted(rows, key=lambda r: 0 if r["service_id"] == SHARED else 1)

    async def quick_reply(self, business_id: str, reply_id: int) -> Row:
        """One row of the business; `NotFound` when there is none with that id there."""
        q = quick_reply
        row = await self._fetch_one(select(q).where(and_(q.c.id == reply_id,
                                                         q.c.business_id == business_id)))
        if row is None:
            raise NotFound(f"quick reply {reply_id}")
        return row

    async def add_quick_replies(self, business_id: str, service_id: int,
                                items: Sequence[tuple[str, str]], cap: int,
                                now: int | None = None) -> list[Row]:
        """Append `items` (`(title, content)` pairs) to one owner's list (`service_id`, or
        `SHARED`), after its last. All or nothing: `Conflict` (nothing written) when the
        owner would then have more than `cap` rows. Returns the new rows in order."""
        q = quick_reply
        now = int(now if now is not None else time.time())
        owner = and_(q.c.business_id == business_id, q.c.service_id == service_id)
        async with self.engine.begin() as conn:
            count, top = (await conn.execute(
                select(func.count(), func.max(q.c.sort)).where(owner))).one()
            if int(count or 0) + len(items) > cap:
                raise Conflict(f"at most {cap} quick replies")
            ids = []
            sort = int(top or 0)
            for title, content in items:
                sort += 1
                res = await conn.execute(insert(q).values(
                    business_id=business_id, service_id=service_id, title=title,
                    content=content, sort=sort, created_at=now, updated_at=now))
                ids.append(self._inserted_id(res))
            if not ids:
                return []
            rows = (await conn.execute(select(q).where(q.c.id.in_(ids)).order_by(*_ORDER))
                    ).mappings().all()
            return [dict(r) for r in rows]

    async def update_quick_reply(self, business_id: str, reply_id: int,
                                 values: dict[str, str], now: int | None = None) -> Row:
        """Change `title` and/or `content` of one row of the business; `NotFound` else."""
        q = quick_reply
        values = {k: v for k, v in values.items() if k in ("title", "content")}
        now = int(now if now is not None else time.time())
        key = and_(q.c.id == reply_id, q.c.business_id == business_id)
        async with self.engine.begin() as conn:
            row = await self._one(conn, select(q).where(key))
            if row is None:
                raise NotFound(f"quick reply {reply_id}")
            await conn.execute(update(q).where(key).values(updated_at=now, **values))
            return await self._one(conn, select(q).where(key)) or {}

    async def delete_quick_reply(self, business_id: str, reply_id: int) -> None:
        """Delete one row of the business; `NotFound` when there is none."""
        q = quick_reply
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(q).where(and_(q.c.id == reply_id,
                                                          q.c.business_id == business_id)))
            if not res.rowcount:
                raise NotFound(f"quick reply {reply_id}")

    async def reorder_quick_replies(self, business_id: str, service_id: int,
                                    ids: Sequence[int]) -> list[Row]:
        """Give one owner's rows the order of `ids`, which must name each of them exactly
        once (`Conflict` otherwise, nothing written). Returns the rows in the new order."""
        q = quick_reply
        owner = and_(q.c.business_id == business_id, q.c.service_id == service_id)
        async with self.engine.begin() as conn:
            have = {int(r[0]) for r in (await conn.execute(select(q.c.id).where(owner))).all()}
            if len(ids) != len(have) or set(ids) != have:
                raise Conflict("ids must name every quick reply of the list once")
            for n, rid in enumerate(ids, start=1):
                await conn.execute(update(q).where(and_(owner, q.c.id == rid)).values(sort=n))
            rows = (await conn.execute(select(q).where(owner).order_by(*_ORDER))).mappings()
            return [dict(r) for r in rows.all()]
