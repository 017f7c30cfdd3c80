"""SQL for the visitor-side tabs (`wolive_tablist`, WoLive's table): a business's tabs of
content shown beside the visitor's chat.

Every row is read and written within its business: each method that takes an id also
takes the `business_id` it must belong to, so a caller cannot reach another business's
rows by id. Values arrive already validated and sanitised (`realtime.content`); this
module only stores them. Every write is committed before the method returns.
"""
from __future__ import annotations

from sqlalchemy import and_, insert, select, update

from . import schema as t
from .base import Row, StoreBase
from .errors import NotFound


class TabStore(StoreBase):
    """A business's visitor-side tabs (see the module docstring)."""

    async def count_tabs(self, business_id: str) -> int:
        return await self._count(t.tablist, t.tablist.c.business_id == business_id)

    async def add_tab(self, business_id: str, title: str, content: str,
                      content_read: str) -> Row:
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(t.tablist).values(
                business_id=business_id, title=title, content=content,
                content_read=content_read))
            return await self._one(conn, select(t.tablist).where(
                t.tablist.c.tid == self._inserted_id(res))) or {}

    async def update_tab(self, business_id: str, tid: int, title: str, content: str,
                         content_read: str) -> Row:
        """Raises `NotFound` when `tid` is not a tab of `business_id`."""
        key = and_(t.tablist.c.tid == tid, t.tablist.c.business_id == business_id)
        async with self.engine.begin() as conn:
            row = await self._one(conn, select(t.tablist.c.tid).where(key))
            if row is None:
                raise NotFound(f"tab {tid}")
            await conn.execute(update(t.tablist).where(key).values(
                title=title, content=content, content_read=content_read))
            return await self._one(conn, select(t.tablist).where(key)) or {}

    async def list_tabs(self, business_id: str, limit: int) -> list[Row]:
        """The business's tabs, in the order they were made."""
        return await self._fetch_all(select(t.tablist).where(
            t.tablist.c.business_id == business_id).order_by(t.tablist.c.tid).limit(limit))

    async def delete_tab(self, business_id: str, tid: int) -> None:
        """Raises `NotFound` when `tid` is not a tab of `business_id`."""
        await self._delete(t.tablist, and_(t.tablist.c.tid == tid,
                                           t.tablist.c.business_id == business_id),
                           f"tab {tid}")
